/* apiloop: API calls in a tight loop, for the API-call rate (tests/perf).
 * Build: x86_64-w64-mingw32-gcc -O2 -o apiloop.exe apiloop.c
 * Usage: apiloop.exe tick N   N calls of GetTickCount
 *        apiloop.exe mix N    N rounds of a mix of cheap calls: process id,
 *                             tick count, strlen, last error, malloc/free */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "tick";
	long n = argc > 2 ? atol(argv[2]) : 1000000;
	volatile unsigned long sum = 0;
	if (strcmp(mode, "tick") == 0) {
		for (long i = 0; i < n; i++)
			sum += GetTickCount();
	} else {
		static char text[] = "a string of some length";
		for (long i = 0; i < n; i++) {
			sum += GetCurrentProcessId();
			sum += GetTickCount();
			sum += strlen(text);
			SetLastError((DWORD)i);
			sum += GetLastError();
			char *p = malloc(32);
			p[0] = (char)i;
			sum += p[0];
			free(p);
		}
	}
	printf("%s %ld calls %lu\n", mode, n, sum & 1);
	return 0;
}
