/* spin: prints a line, then loops forever (Ctrl-C must stop it). */
#include <stdio.h>

volatile unsigned long long spins;

int main(void)
{
	printf("spinning\n");
	for (;;)
		spins++;
}
