/* msvc_crt.h: what programs for clang's msvc target need in place of a
 * C runtime. Debian has no MSVC headers or libraries, so these programs
 * are built with -nostdlib and link mingw-w64's import libraries for
 * msvcrt.dll and kernel32.dll with lld-link; this header declares the
 * few functions they use and supplies the entry point. Include it from
 * exactly one file of a program. */
#include <stdarg.h>
#include <stddef.h>

typedef unsigned long DWORD;
typedef int BOOL;
typedef long LONG;
typedef unsigned int UINT;
typedef void *HANDLE;
typedef unsigned long long ULONG_PTR;

#define DECL __declspec(dllimport)
#define WINAPI __stdcall

DECL int printf(const char *, ...);
DECL int sprintf(char *, const char *, ...);
DECL int _snprintf(char *, size_t, const char *, ...);
DECL int puts(const char *);
DECL int fflush(void *);
DECL size_t strlen(const char *);
DECL int strcmp(const char *, const char *);
DECL char *strcpy(char *, const char *);
DECL void *memcpy(void *, const void *, size_t);
DECL void *memset(void *, int, size_t);
DECL int memcmp(const void *, const void *, size_t);
DECL void *malloc(size_t);
DECL void *realloc(void *, size_t);
DECL void free(void *);
DECL void qsort(void *, size_t, size_t, int (*)(const void *, const void *));
DECL void *bsearch(const void *, const void *, size_t, size_t, int (*)(const void *, const void *));
DECL double sqrt(double);
DECL double sin(double);
DECL double pow(double, double);
DECL __declspec(noreturn) void exit(int);
DECL int __getmainargs(int *, char ***, char ***, int, int *);
DECL ULONG_PTR _beginthreadex(void *, unsigned, unsigned(__stdcall *)(void *), void *, unsigned, unsigned *);

typedef struct {
	DWORD ExceptionCode;
	DWORD ExceptionFlags;
	void *ExceptionRecord;
	void *ExceptionAddress;
	DWORD NumberParameters;
	ULONG_PTR ExceptionInformation[15];
} EXCEPTION_RECORD;

typedef struct {
	EXCEPTION_RECORD *ExceptionRecord;
	void *ContextRecord;
} EXCEPTION_POINTERS;

#define EXCEPTION_EXECUTE_HANDLER 1
#define EXCEPTION_CONTINUE_SEARCH 0
#define EXCEPTION_CONTINUE_EXECUTION (-1)
#define INFINITE 0xffffffffu

typedef struct {
	void *DebugInfo;
	LONG LockCount;
	LONG RecursionCount;
	HANDLE OwningThread;
	HANDLE LockSemaphore;
	ULONG_PTR SpinCount;
} CRITICAL_SECTION;

DECL void WINAPI RaiseException(DWORD, DWORD, DWORD, const ULONG_PTR *);
DECL DWORD WINAPI GetLastError(void);
DECL void WINAPI SetLastError(DWORD);
DECL DWORD WINAPI WaitForSingleObject(HANDLE, DWORD);
DECL DWORD WINAPI WaitForMultipleObjects(DWORD, const HANDLE *, BOOL, DWORD);
DECL BOOL WINAPI GetExitCodeThread(HANDLE, DWORD *);
DECL BOOL WINAPI CloseHandle(HANDLE);
DECL void WINAPI Sleep(DWORD);
DECL void WINAPI InitializeCriticalSection(CRITICAL_SECTION *);
DECL void WINAPI EnterCriticalSection(CRITICAL_SECTION *);
DECL void WINAPI LeaveCriticalSection(CRITICAL_SECTION *);
DECL void WINAPI DeleteCriticalSection(CRITICAL_SECTION *);
DECL HANDLE WINAPI GetProcessHeap(void);
DECL void *WINAPI HeapAlloc(HANDLE, DWORD, size_t);
DECL BOOL WINAPI HeapFree(HANDLE, DWORD, void *);

/* Clang's msvc target refers to _fltused whenever floating point is
 * used; MSVC's CRT defines it. */
int _fltused = 0x9875;

int main(int argc, char **argv);

/* mainCRTStartup is the entry point (-Wl,-entry:mainCRTStartup): the
 * arguments come from msvcrt's __getmainargs, and exit flushes stdio. */
void mainCRTStartup(void) {
	int argc, startinfo = 0;
	char **argv, **envp;
	__getmainargs(&argc, &argv, &envp, 0, &startinfo);
	exit(main(argc, argv));
}
