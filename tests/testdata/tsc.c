/* tsc: prints the time stamp counter twice (rdtsc through the compiler
 * intrinsic); under --record both come from the virtual counter, the
 * same on every run (emulator/ucwin TestVirtualTSCGuest).
 * Build: x86_64-w64-mingw32-gcc -O0 -o tsc.exe tsc.c */
#include <stdio.h>
#include <x86intrin.h>

int main(void)
{
	unsigned long long a = __rdtsc();
	unsigned long long b = __rdtsc();
	printf("%llu %llu\n", a, b);
	return 0;
}
