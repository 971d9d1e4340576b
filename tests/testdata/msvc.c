/* msvc: a freestanding program for clang's msvc target (there are no MSVC
 * headers or libraries on Debian: it links mingw-w64's kernel32 import
 * library with lld-link). Exits with d(4) = 5. */
typedef void *HANDLE;
typedef unsigned long DWORD;
__declspec(dllimport) HANDLE __stdcall GetStdHandle(DWORD);
__declspec(dllimport) int __stdcall WriteFile(HANDLE, const void *, DWORD, DWORD *, void *);
__declspec(dllimport) void __stdcall ExitProcess(unsigned);
int _fltused;
static DWORD len(const char *s) { DWORD n = 0; while (s[n]) n++; return n; }
__declspec(noinline) int d(int x) { DWORD w; const char *m = "d: hello from msvc\n"; WriteFile(GetStdHandle((DWORD)-11), m, len(m), &w, 0); return x + 1; }
void start(void) { ExitProcess(d(4)); }
