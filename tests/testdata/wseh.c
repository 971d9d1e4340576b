/* SEH with a hardware fault, built by clang's msvc target without the
   MSVC runtime (own entry point; KERNEL32, ntdll's __C_specific_handler
   and the UCRT through mingw-w64's import libraries):
   clang --target=x86_64-pc-windows-msvc -fuse-ld=lld -nostdlib -O1
     -gdwarf -Wl,-debug:dwarf -Wl,-entry:start -Wl,-subsystem:console wseh.c
     /usr/x86_64-w64-mingw32/lib/{libkernel32,libntdll,libucrt}.a */
typedef unsigned long DWORD;
typedef char *va_list;
#define va_start(ap, last) __builtin_va_start(ap, last)
#define va_end(ap) __builtin_va_end(ap)
__declspec(dllimport) void __stdcall ExitProcess(unsigned);
__declspec(dllimport) void *__acrt_iob_func(unsigned);
__declspec(dllimport) int __stdio_common_vfprintf(unsigned long long, void *, const char *, void *, va_list);
int _fltused = 0;

static int pr(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	int r = __stdio_common_vfprintf(0, __acrt_iob_func(1), fmt, 0, ap);
	va_end(ap);
	return r;
}

__declspec(noinline) void poke(int *p) { *(volatile int *)p = 42; }
int *volatile nowhere;

__declspec(noinline) void handler_reached(void) { pr("in the __except block\n"); }

void start(void) {
	pr("before\n");
	__try {
		poke(nowhere);
		pr("after the fault (not reached)\n");
	} __except (1) {
		handler_reached();
	}
	pr("after\n");
	ExitProcess(7);
}
