/* demo: the seed scenario for rspstub. main -> a -> b -> c -> d, each
 * printing a line, plus a global that d writes (for watchpoints).
 * Build: x86_64-w64-mingw32-gcc -O0 -g -o demo.exe demo.c */
#include <stdio.h>

volatile int counter;
const char *greeting = "hello from the demo guest";

__attribute__((noinline)) int d(int x)
{
	counter = x * 2;
	printf("d: %d\n", x);
	return x + 4;
}

__attribute__((noinline)) int c(int x)
{
	printf("c: %d\n", x);
	return d(x + 1) + 1;
}

__attribute__((noinline)) int b(int x)
{
	printf("b: %d\n", x);
	return c(x + 1) + 1;
}

__attribute__((noinline)) int a(int x)
{
	printf("a: %d\n", x);
	return b(x + 1) + 1;
}

int main(int argc, char **argv)
{
	(void)argv;
	printf("main: %s\n", greeting);
	int r = a(argc);
	printf("main: result %d\n", r);
	return r;
}
