/* Exercises the Win32 and CRT functions rspstub implements.
   x86_64-w64-mingw32-gcc -O1 -o apis.exe apis.c */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static __thread int tls_counter = 5;
static int order;
static void ex1(void) { printf("atexit 1 (order %d)\n", ++order); }
static void ex2(void) { printf("atexit 2 (order %d)\n", ++order); }

int main(int argc, char **argv) {
	/* VirtualAlloc / VirtualQuery / VirtualProtect / VirtualFree */
	char *mem = VirtualAlloc(NULL, 0x3000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	MEMORY_BASIC_INFORMATION mbi;
	SIZE_T q = VirtualQuery(mem + 0x1000, &mbi, sizeof mbi);
	printf("valloc %s aligned=%d q=%d base_ok=%d size=%#zx state=%#lx prot=%#lx\n", mem ? "ok" : "fail",
	       ((ULONG_PTR)mem & 0xFFFF) == 0, (int)q, mbi.AllocationBase == mem, mbi.RegionSize, mbi.State, mbi.Protect);
	DWORD old;
	BOOL pr = VirtualProtect(mem, 0x1000, PAGE_READONLY, &old);
	VirtualQuery(mem, &mbi, sizeof mbi);
	printf("vprotect %d old=%#lx now=%#lx size=%#zx\n", pr, old, mbi.Protect, mbi.RegionSize);
	printf("vfree %d\n", VirtualFree(mem, 0, MEM_RELEASE));
	VirtualQuery(GetModuleHandleA(NULL), &mbi, sizeof mbi);
	printf("exe header type=%#lx prot=%#lx\n", mbi.Type, mbi.Protect);

	/* TLS: explicit slots and __thread */
	DWORD slot = TlsAlloc();
	TlsSetValue(slot, (void *)0x1234);
	printf("tls slot value %p thread var %d\n", TlsGetValue(slot), ++tls_counter);

	/* heap */
	HANDLE heap = GetProcessHeap();
	int *blk = HeapAlloc(heap, HEAP_ZERO_MEMORY, 64);
	blk = HeapReAlloc(heap, 0, blk, 128);
	printf("heap size %zu zero %d\n", HeapSize(heap, 0, blk), blk[3]);
	HeapFree(heap, 0, blk);
	char *s = calloc(4, 4);
	s = realloc(s, 100);
	strcpy(s, "Hello");
	strcat(s, ", heap");
	printf("%s %d %d %s\n", s, (int)strlen(s), strcmp(s, "Hello"), strchr(s, ',') ? "comma" : "none");
	free(s);

	/* environment, command line, module names */
	char buf[MAX_PATH];
	DWORD n = GetEnvironmentVariableA("GUESTVAR", buf, sizeof buf);
	printf("env GUESTVAR=%s (%lu) getenv=%s\n", n ? buf : "(unset)", n, getenv("GUESTVAR"));
	SetEnvironmentVariableA("NEWVAR", "set");
	n = GetEnvironmentVariableA("NEWVAR", buf, sizeof buf);
	char nv[16];
	strcpy(nv, buf);
	DWORD missing = GetEnvironmentVariableA("NOPE", buf, sizeof buf);
	DWORD err = GetLastError();
	printf("env NEWVAR=%s missing=%lu err=%lu\n", nv, missing, err);
	printf("cmdline %s\n", GetCommandLineA());
	printf("argv %d: %s|%s\n", argc, argv[0], argc > 1 ? argv[1] : "");
	GetModuleFileNameA(NULL, buf, sizeof buf);
	printf("module %s\n", buf);
	HMODULE k32 = GetModuleHandleA("KERNEL32.DLL");
	HMODULE h = NULL;
	GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
	                   (LPCSTR)GetProcAddress(k32, "Sleep"), &h);
	printf("kernel32 from address %d\n", h == k32);

	/* last error, ids, time */
	SetLastError(1234);
	printf("lasterror %lu pid %d tid %d\n", GetLastError(), GetCurrentProcessId() != 0, GetCurrentThreadId() != 0);
	LARGE_INTEGER f, c1, c2;
	QueryPerformanceFrequency(&f);
	QueryPerformanceCounter(&c1);
	Sleep(1);
	QueryPerformanceCounter(&c2);
	FILETIME ft;
	GetSystemTimeAsFileTime(&ft);
	printf("qpf %lld monotonic %d filetime>2020 %d\n", f.QuadPart, c2.QuadPart >= c1.QuadPart,
	       ((ULONGLONG)ft.dwHighDateTime << 32 | ft.dwLowDateTime) > 132223104000000000ULL);

	/* critical sections */
	CRITICAL_SECTION cs;
	InitializeCriticalSection(&cs);
	EnterCriticalSection(&cs);
	LeaveCriticalSection(&cs);
	DeleteCriticalSection(&cs);

	/* console output paths */
	DWORD w;
	WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), "WriteFile\n", 10, &w, NULL);
	WriteConsoleW(GetStdHandle(STD_OUTPUT_HANDLE), L"WriteConsoleW \x263A\n", 16, &w, NULL);
	WCHAR wide[32];
	int wn = MultiByteToWideChar(CP_UTF8, 0, "caf\xc3\xa9", -1, wide, 32);
	char back[32];
	int bn = WideCharToMultiByte(CP_UTF8, 0, wide, -1, back, sizeof back, NULL, NULL);
	printf("mb->wide %d wide->mb %d %s\n", wn, bn, back);
	char num[32];
	sprintf(num, "%08.3f|%-6s|", 3.14159, "ab");
	printf("sprintf %s strtol %ld atoi %d\n", num, strtol("0x1f", NULL, 0), atoi("  -17x"));

	atexit(ex1);
	atexit(ex2);
	exit(argc + 40);
}
