/* The synthesized DLLs' native functions (guest/native.go): each checked
   against what it must agree with. Prints one line per check.
   x86_64-w64-mingw32-gcc -O1 native.c */
#include <stdio.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>
#include <winternl.h>

int main(void)
{
	TEB *teb = NtCurrentTeb();
	SetLastError(0xBEEF);
	printf("lasterror %#lx teb %#lx\n", GetLastError(), *(DWORD *)((char *)teb + 0x68));
	char buf[8];
	GetEnvironmentVariableA("NO_SUCH_VARIABLE", buf, sizeof buf); /* Go sets 203 */
	printf("after a failed Go API %lu\n", GetLastError());
	printf("pid %d tid %d\n", GetCurrentProcessId() == (DWORD)(ULONG_PTR)teb->Reserved1[8],
	       GetCurrentThreadId() == (DWORD)(ULONG_PTR)teb->Reserved1[9]);
	printf("pseudo %d %d\n", GetCurrentProcess() == (HANDLE)-1, GetCurrentThread() == (HANDLE)-2);
	HANDLE heap = GetProcessHeap();
	char *p = HeapAlloc(heap, HEAP_ZERO_MEMORY, 32);
	printf("heap %d alloc %d\n", heap == ((void **)teb->ProcessEnvironmentBlock)[6], p != NULL && p[31] == 0);
	printf("strlen %zu %zu %zu wcslen %zu %zu\n", strlen(""), strlen("a"), strlen("hello, world"),
	       wcslen(L""), wcslen(L"wide\x263a"));
	DWORD t0 = GetTickCount();
	ULONGLONG t64 = GetTickCount64();
	unsigned long spins = 0;
	while (GetTickCount() - t0 < 30 && spins < 4000000000UL)
		spins++;
	DWORD t1 = GetTickCount();
	printf("tick moved %d agree %d\n", t1 - t0 >= 30 && t1 - t0 < 5000, (DWORD)t64 - t0 < 5);
	return 0;
}
