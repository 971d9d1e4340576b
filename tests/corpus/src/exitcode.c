/* exitcode: atexit handlers run in reverse order and may print; the
 * process exits with the code given to exit(), from a nested call. */
#include <stdio.h>
#include <stdlib.h>

static void first(void) { printf("atexit: registered first, runs last\n"); }
static void second(void) { printf("atexit: registered second\n"); }
static void third(void) { printf("atexit: registered third, runs first\n"); }

static void leave(int code) {
	printf("leaving with %d\n", code);
	exit(code);
}

int main(int argc, char **argv) {
	(void)argv;
	atexit(first);
	atexit(second);
	atexit(third);
	leave(argc + 41);
	return 0;
}
