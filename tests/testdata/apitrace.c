/* apitrace: a few API calls with known arguments and results, for the
 * API trace, catch points and coverage tests. */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) int work(int n)
{
	int s = 0;
	for (int i = 0; i < n; i++)
		s += (i & 1) ? i : -i;
	return s;
}

/* Never called: the coverage test checks it has no blocks. */
__attribute__((noinline)) int never_called(int x)
{
	return x * 3 + work(x);
}

int main(void)
{
	HANDLE h = GetStdHandle(STD_OUTPUT_HANDLE);
	DWORD done = 0;
	const char *msg = "traced line\n";
	WriteFile(h, msg, (DWORD)strlen(msg), &done, NULL);
	char *p = malloc(40);
	strcpy(p, "heap string");
	printf("pid %s %lu\n", p, GetCurrentProcessId() != 0 ? 1UL : 0UL);
	free(p);
	SetLastError(1234);
	int e = (int)GetLastError();
	return work(10) + (e == 1234 ? 2 : 0);
}
