/* chatty: prints numbered lines forever, so that a debugger's console
 * (O packets) is never idle while the guest runs; Ctrl-C must stop it. */
#include <stdio.h>

int main(void)
{
	for (unsigned long long i = 0;; i++) {
		printf("chatty line %llu: the quick brown fox jumps over the lazy dog\n", i);
		fflush(stdout);
	}
}
