/* cfionly: cfi_only() has DWARF CFI but no .pdata entry (hand-written
 * assembly with .cfi_* and no .seh_* directives): it pushes rbx and
 * rcx, so the Windows leaf rule is wrong inside it, and it calls back
 * into C. An unwinder needs the CFI fallback there. */
#include <stdio.h>

volatile int calls;

__attribute__((noinline)) void callback(void)
{
	calls++;
}

__asm__(
	".text\n"
	".globl cfi_only\n"
	"cfi_only:\n"
	"	.cfi_startproc\n"
	"	pushq %rbx\n"
	"	.cfi_adjust_cfa_offset 8\n"
	"	.cfi_rel_offset %rbx, 0\n"
	"	pushq %rcx\n"
	"	.cfi_adjust_cfa_offset 8\n"
	"	subq $32, %rsp\n"
	"	.cfi_adjust_cfa_offset 32\n"
	"	call callback\n"
	"	addq $32, %rsp\n"
	"	.cfi_adjust_cfa_offset -32\n"
	"	popq %rcx\n"
	"	.cfi_adjust_cfa_offset -8\n"
	"	popq %rbx\n"
	"	.cfi_adjust_cfa_offset -8\n"
	"	.cfi_restore %rbx\n"
	"	ret\n"
	"	.cfi_endproc\n");

void cfi_only(void);

int main(void)
{
	for (int i = 0; i < 3; i++)
		cfi_only();
	printf("calls %d\n", calls);
	return calls;
}
