/* syscalls: N system calls in a tight loop (NtQueryPerformanceCounter,
 * called through ntdll's thunk), for the wine userland's system-call rate
 * (tests/perf). Build: x86_64-w64-mingw32-gcc -O2 -o syscalls.exe syscalls.c
 * Usage: syscalls.exe N */
#include <stdio.h>
#include <stdlib.h>
#include <windows.h>

typedef LONG(NTAPI *qpc_fn)(LARGE_INTEGER *, LARGE_INTEGER *);

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	qpc_fn qpc = (qpc_fn)GetProcAddress(GetModuleHandleA("ntdll.dll"), "NtQueryPerformanceCounter");
	LARGE_INTEGER c, f;
	for (long i = 0; i < n; i++)
		qpc(&c, &f);
	printf("%ld calls\n", n);
	return 0;
}
