/* corrupt: a global is corrupted deep in a chain of calls, between two
 * lines of output; the time-travel tests watch it at the end and go back
 * to the store (tests/timetravel_test.go, emulator/ucwin). A Windows API
 * call (GetTickCount) sits in the chain, for reverse-next over it.
 * Build: x86_64-w64-mingw32-gcc -O0 -g -o corrupt.exe corrupt.c */
#include <stdio.h>
#include <windows.h>

volatile int guard = 42;
volatile int counter;

__attribute__((noinline)) static void corrupt(int v)
{
	counter += v;
	guard = v * 3; /* the corrupting store */
	counter++;
}

__attribute__((noinline)) static void middle(int v)
{
	DWORD t = GetTickCount();
	counter += (int)(t & 1);
	corrupt(v + 1);
	counter--;
}

__attribute__((noinline)) static void outer(int v)
{
	int i;
	for (i = 0; i < 3; i++)
		counter += i;
	middle(v * 2);
}

int main(void)
{
	printf("before: guard=%d\n", guard);
	outer(6);
	printf("after: guard=%d\n", guard);
	return guard == 42 ? 0 : 1;
}
