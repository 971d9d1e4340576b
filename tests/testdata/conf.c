/* conf: the conformance program. The same source builds for Windows
 * (x86_64-w64-mingw32-gcc -O0 -g) and for Linux (gcc -O0 -g), so that
 * a debugger session against rspstub can be compared line by line with
 * the same session against gdbserver or lldb-server.
 *
 * Markers the tests use (keep them on their lines):
 *   LINE_STEP   a line that holds the global label `midline` in its
 *               middle: a breakpoint there is inside the line's range
 *   LINE_LOOP   the body of the loop that `cond` counts through
 *   LINE_CALL   main's call of stepped()
 *   LINE_PRINT  main's printf, after buffer holds "hello"
 * Usage: conf [N]  (N iterations of the counting loop, default 3) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

volatile int counter;
volatile int total;
char buffer[64];

__attribute__((noinline)) int square(int x)
{
	return x * x;
}

__attribute__((noinline)) int add(int a, int b)
{
	return a + b;
}

/* Walked by `next`, `step` and `until` with a breakpoint on `midline`. */
__attribute__((noinline)) int stepped(int x)
{
	int y = 0;
	for (int i = 0; i < 3; i++) {
		y += x * 3; __asm__ volatile("nop\n\t.globl midline\nmidline:\n\tnop"); y += i; /* LINE_STEP */
	}
	return y;
}

/* A loop for conditional breakpoints: `break count if i == N-1`. */
__attribute__((noinline)) void count(int i)
{
	total += i; /* LINE_LOOP */
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 3;
	counter = stepped(2); /* LINE_CALL */
	for (int i = 0; i < n; i++)
		count(i);
	strcpy(buffer, "hello");
	printf("conf: counter %d total %d %s\n", counter, total, buffer); /* LINE_PRINT */
	fflush(stdout);
	return (counter + square(2)) & 0x7f;
}
