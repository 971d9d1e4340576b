/* nullwrite: writes through a NULL pointer; the stub must stop with
 * SIGSEGV at the exact faulting instruction (the mov in poke). */
#include <stdio.h>

__attribute__((noinline)) void poke(volatile int *p, int v)
{
	*p = v;
}

int main(void)
{
	printf("about to fault\n");
	poke((volatile int *)0, 42);
	printf("not reached\n");
	return 0;
}
