/* chkstk: a function with a 20000-byte frame calls libgcc's ___chkstk_ms, which
 * has no .pdata entry and pushes rcx and rax before it returns.
 * Build: x86_64-w64-mingw32-gcc -O0 -g -o chkstk.exe chkstk.c */
#include <stdio.h>
#include <string.h>
__attribute__((noinline)) int big(int x) { char buf[20000]; memset(buf, x, sizeof buf); return buf[x] + buf[100]; }
int main(void) { printf("%d\n", big(3)); return 0; }
