/* clang's MSVC target without the MSVC runtime: our own entry point, KERNEL32
   directly and the UCRT through mingw-w64's api-ms-win-crt import library.
   clang --target=x86_64-pc-windows-msvc -fuse-ld=lld -nostdlib
     -fasynchronous-unwind-tables -Wl,-entry:start -Wl,-subsystem:console
     msvc.c -L/usr/x86_64-w64-mingw32/lib -lkernel32 -lucrt */
typedef unsigned long long u64;
typedef void *HANDLE;
typedef char *va_list;
#define va_start(ap, last) __builtin_va_start(ap, last)
#define va_end(ap) __builtin_va_end(ap)

__declspec(dllimport) HANDLE __stdcall GetStdHandle(unsigned long);
__declspec(dllimport) int __stdcall WriteFile(HANDLE, const void *, unsigned long, unsigned long *, void *);
__declspec(dllimport) void __stdcall ExitProcess(unsigned);
__declspec(dllimport) int puts(const char *);
__declspec(dllimport) void *malloc(u64);
__declspec(dllimport) void free(void *);
__declspec(dllimport) u64 strlen(const char *);
__declspec(dllimport) void *__acrt_iob_func(unsigned);
__declspec(dllimport) int __stdio_common_vfprintf(u64, void *, const char *, void *, va_list);
__declspec(dllimport) int __stdio_common_vsprintf(u64, char *, u64, const char *, void *, va_list);

int _fltused = 0;

static int my_printf(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	int r = __stdio_common_vfprintf(0, __acrt_iob_func(1), fmt, 0, ap);
	va_end(ap);
	return r;
}

static int my_snprintf(char *buf, u64 n, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	int r = __stdio_common_vsprintf(2, buf, n, fmt, 0, ap);
	va_end(ap);
	return r;
}

__declspec(noinline) int work(int x) {
	char buf[16];
	int n = my_snprintf(buf, sizeof buf, "%s-%d-%.2f", "truncated text", x, 1.5);
	my_printf("snprintf gave %d: \"%s\"\n", n, buf);
	my_printf("%e %g %p\n", 12345.678, 1e-5, (void *)0x1234);
	return x * 2;
}

void start(void) {
	unsigned long w;
	const char *msg = "WriteFile works\n";
	WriteFile(GetStdHandle((unsigned long)-11), msg, (unsigned long)strlen(msg), &w, 0);
	char *p = malloc(32);
	puts(p ? "malloc ok" : "malloc failed");
	free(p);
	ExitProcess(work(21));
}
