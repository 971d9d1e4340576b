/* untranslatable: copies a routine into VirtualAlloc'd memory and calls
 * it. The routine holds 42 ff dd (call far rbp: ff /3 with a register
 * operand, #UD on a CPU), on which libunicorn 2.0.1's translator aborts
 * the process, in the same translation block as the instruction before it.
 * ready() gets the routine's address first, so that a debugger can put a
 * breakpoint in it. After the SIGILL the debugger moves RIP past the three
 * bytes and the routine returns 42. */
#include <stdio.h>
#include <string.h>
#include <windows.h>

static const unsigned char routine[] = {
	0xb8, 0x29, 0x00, 0x00, 0x00, /* +0: mov eax, 41 */
	0xff, 0xc0,                   /* +5: inc eax          <- breakpoint */
	0x42, 0xff, 0xdd,             /* +7: call far rbp     (untranslatable) */
	0xc3,                         /* +10: ret */
};

__attribute__((noinline)) void ready(void *code)
{
	printf("routine at %p\n", code);
}

int main(void)
{
	unsigned char *p = VirtualAlloc(0, 4096, MEM_COMMIT | MEM_RESERVE, PAGE_EXECUTE_READWRITE);
	int r;
	if (p == NULL)
		return 2;
	memcpy(p, routine, sizeof routine);
	ready(p);
	r = ((int (*)(void))p)();
	printf("routine returned %d\n", r);
	return r == 42 ? 0 : 1;
}
