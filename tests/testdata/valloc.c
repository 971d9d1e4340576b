/* valloc: maps memory after the debugger connected (VirtualAlloc); gdb
 * must still be able to read it (no stale qXfer:memory-map). */
#include <stdio.h>
#include <windows.h>
volatile char *p;
__attribute__((noinline)) void stop_here(void) { printf("mapped\n"); }
int main(void) {
	p = VirtualAlloc(0, 1 << 20, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
	p[0] = 'h'; p[1] = 'i'; p[2] = 0;
	stop_here();
	return 0;
}
