/* recurse: recurse(n) calls itself down to recurse(0), which calls
 * leaf(): a break in leaf() stops under DEPTH+1 recurse frames (10,000
 * calls of itself by default), for backtrace benchmarks (tests/perf).
 * Build: x86_64-w64-mingw32-gcc -O2 -g -o recurse.exe recurse.c
 * Usage: recurse.exe [DEPTH] */
#include <stdio.h>
#include <stdlib.h>

volatile int sink;

__attribute__((noinline)) void leaf(int n)
{
	sink = n;
}

__attribute__((noinline)) int recurse(int n)
{
	/* pad is read after the call: the call cannot become a jump (no
	 * tail call, no loop), so each level keeps its own frame. */
	volatile int pad = n;
	if (n == 0)
		leaf(pad);
	else
		recurse(n - 1);
	return pad;
}

int main(int argc, char **argv)
{
	int depth = argc > 1 ? atoi(argv[1]) : 10000;
	printf("%d\n", recurse(depth));
	return 0;
}
