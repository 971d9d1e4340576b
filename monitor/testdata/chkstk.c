/* chkstk: a function with a 20000-byte frame calls libgcc's ___chkstk_ms, which
 * has no .pdata entry and pushes rcx and rax before it returns. The frame is
 * passed to another function so that -O2 keeps it.
 * Build: x86_64-w64-mingw32-gcc -O0 -g -o chkstk.exe chkstk.c */
#include <stdio.h>
#include <string.h>
__attribute__((noinline)) int sum(const char *p, int n) { int s = 0; for (int i = 0; i < n; i += 4096) s += p[i]; return s; }
__attribute__((noinline)) int big(int x) { char buf[20000]; memset(buf, x, sizeof buf); return sum(buf, sizeof buf) + buf[100]; }
int main(void) { printf("%d\n", big(3)); return 0; }
