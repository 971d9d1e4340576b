/* C structured exception handling with clang's MSVC target, using
   msvcrt.dll's __C_specific_handler through mingw-w64's import library:
   clang --target=x86_64-pc-windows-msvc -fuse-ld=lld -nostdlib
     -Wl,-entry:start -Wl,-subsystem:console seh.c libkernel32.a libmsvcrt.a */
typedef unsigned long DWORD;
typedef struct { DWORD ExceptionCode; } EXCEPTION_RECORD;
typedef struct { EXCEPTION_RECORD *ExceptionRecord; void *ContextRecord; } EXCEPTION_POINTERS;
__declspec(dllimport) void __stdcall RaiseException(DWORD, DWORD, DWORD, const unsigned long long *);
__declspec(dllimport) void __stdcall ExitProcess(unsigned);
__declspec(dllimport) int puts(const char *);
int _fltused = 0;
void *_exception_info(void);

static int seen;
static int filter(EXCEPTION_POINTERS *ep) {
	seen = ep->ExceptionRecord->ExceptionCode == 0xE0000001;
	return 1;
}

__declspec(noinline) void deep(void) {
	__try {
		RaiseException(0xE0000001, 0, 0, 0);
		puts("not reached");
	} __finally {
		puts("finally during unwind");
	}
}

void start(void) {
	__try {
		puts("body");
	} __finally {
		puts("finally normal");
	}
	__try {
		deep();
	} __except (filter((EXCEPTION_POINTERS *)_exception_info())) {
		puts(seen ? "caught 0xE0000001" : "caught wrong code");
	}
	__try {
		RaiseException(0xE0000002, 0, 0, 0);
	} __except (1) {
		puts("constant filter");
	}
	ExitProcess(5);
}
