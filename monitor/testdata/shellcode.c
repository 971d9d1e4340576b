/* shellcode: a position-independent routine copied into VirtualAlloc'd
 * memory and called from there, as unpackers, injected code and JIT
 * compilers do. The routine has no .pdata and no CFI: it lies outside
 * every module. It calls puts through the pointer it is given, after
 * storing a decoy in its own frame: a return address of main (it follows
 * a direct call to decoy_source), the kind of stale value a stack scan
 * must not take for the routine's caller.
 *
 * argv[1] picks the routine:
 *   frameless  no frame pointer: rbp still holds inner's
 *   rbpframe   push rbp; mov rbp, rsp
 * Build: x86_64-w64-mingw32-gcc -O0 -g -o shellcode.exe shellcode.c (or -O2) */
#include <windows.h>
#include <stdio.h>
#include <string.h>

typedef int (*routine_fn)(int (*put)(const char *), const char *msg, unsigned long long decoy);

/* routine(put, msg, decoy), Windows x64 calling convention. */
static const unsigned char frameless[] = {
	0x48, 0x83, 0xec, 0x38,       /* sub  rsp, 0x38                               */
	0x4c, 0x89, 0x44, 0x24, 0x20, /* mov  [rsp+0x20], r8   ; the decoy            */
	0x48, 0x89, 0xc8,             /* mov  rax, rcx         ; put                  */
	0x48, 0x89, 0xd1,             /* mov  rcx, rdx         ; msg                  */
	0xff, 0xd0,                   /* call rax              ; puts(msg)            */
	0x48, 0x83, 0xc4, 0x38,       /* add  rsp, 0x38                               */
	0xc3,                         /* ret                                          */
};

static const unsigned char rbpframe[] = {
	0x55,                         /* push rbp                                     */
	0x48, 0x89, 0xe5,             /* mov  rbp, rsp                                */
	0x48, 0x83, 0xec, 0x30,       /* sub  rsp, 0x30                               */
	0x4c, 0x89, 0x45, 0xf0,       /* mov  [rbp-0x10], r8   ; the decoy            */
	0x48, 0x89, 0xc8,             /* mov  rax, rcx         ; put                  */
	0x48, 0x89, 0xd1,             /* mov  rcx, rdx         ; msg                  */
	0xff, 0xd0,                   /* call rax              ; puts(msg)            */
	0xc9,                         /* leave                                        */
	0xc3,                         /* ret                                          */
};

/* Returns its own return address: a place in main right after a direct call. */
__attribute__((noinline)) unsigned long long decoy_source(void)
{
	return (unsigned long long)__builtin_return_address(0);
}

__attribute__((noinline)) int inner(routine_fn fn, unsigned long long decoy)
{
	int r = fn(puts, "hello from shellcode", decoy);
	return r + 1; /* keeps the call from becoming a tail jump */
}

int main(int argc, char **argv)
{
	const unsigned char *code = frameless;
	size_t size = sizeof frameless;
	if (argc > 1 && strcmp(argv[1], "rbpframe") == 0) {
		code = rbpframe;
		size = sizeof rbpframe;
	}
	void *mem = VirtualAlloc(NULL, 4096, MEM_COMMIT | MEM_RESERVE, PAGE_EXECUTE_READWRITE);
	if (mem == NULL)
		return 3;
	memcpy(mem, code, size);
	unsigned long long decoy = decoy_source();
	int r = inner((routine_fn)mem, decoy);
	fprintf(stderr, "routine returned %d\n", r);
	return r > 0 ? 0 : 1;
}
