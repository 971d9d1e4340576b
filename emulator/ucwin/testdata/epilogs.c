/* epilogs: functions with .pdata (GNU as .seh_* directives) whose epilogs
 * end in the forms Windows' epilog detection accepts besides ret:
 *   tail_rel32: add rsp; pop rbx; jmp rel32 to another function
 *   tail_rel8:  add rsp; pop rbx; jmp rel8 to another function
 *   tail_ind:   add rsp; pop rbx; jmp qword ptr [rip+slot] (ff 25)
 *   rep_ret:    add rsp; pop rbx; rep ret
 * Stepped instruction by instruction with the shadow call stack, the
 * unwinder must agree inside each epilog. */
#include <stdio.h>

volatile int hits;

__attribute__((noinline)) void target(void)
{
	hits++;
}

void (*volatile target_slot)(void) = target;

__asm__(
	".text\n"
	".globl tail_rel32\n"
	".def tail_rel32; .scl 2; .type 32; .endef\n"
	".seh_proc tail_rel32\n"
	"tail_rel32:\n"
	"	pushq %rbx\n"
	"	.seh_pushreg %rbx\n"
	"	subq $32, %rsp\n"
	"	.seh_stackalloc 32\n"
	"	.seh_endprologue\n"
	"	movl $0x5151, %ebx\n"
	"	call target\n"
	"	addq $32, %rsp\n"
	"	popq %rbx\n"
	"	.byte 0xe9\n" /* jmp rel32, spelled out so it is not shortened */
	"	.long target - (. + 4)\n"
	".seh_endproc\n"

	".globl tail_rel8\n"
	".def tail_rel8; .scl 2; .type 32; .endef\n"
	".seh_proc tail_rel8\n"
	"tail_rel8:\n"
	"	pushq %rbx\n"
	"	.seh_pushreg %rbx\n"
	"	subq $32, %rsp\n"
	"	.seh_stackalloc 32\n"
	"	.seh_endprologue\n"
	"	movl $0x5454, %ebx\n"
	"	call near_target\n"
	"	addq $32, %rsp\n"
	"	popq %rbx\n"
	"	.byte 0xeb, near_target - (. + 1)\n" /* jmp rel8 */
	".seh_endproc\n"
	"near_target:\n" /* a leaf right after: in reach of rel8 */
	"	incl hits(%rip)\n"
	"	ret\n"

	".globl tail_ind\n"
	".def tail_ind; .scl 2; .type 32; .endef\n"
	".seh_proc tail_ind\n"
	"tail_ind:\n"
	"	pushq %rbx\n"
	"	.seh_pushreg %rbx\n"
	"	subq $32, %rsp\n"
	"	.seh_stackalloc 32\n"
	"	.seh_endprologue\n"
	"	movl $0x5252, %ebx\n"
	"	call target\n"
	"	addq $32, %rsp\n"
	"	popq %rbx\n"
	"	jmp *target_slot(%rip)\n"
	".seh_endproc\n"

	".globl rep_ret\n"
	".def rep_ret; .scl 2; .type 32; .endef\n"
	".seh_proc rep_ret\n"
	"rep_ret:\n"
	"	pushq %rbx\n"
	"	.seh_pushreg %rbx\n"
	"	subq $32, %rsp\n"
	"	.seh_stackalloc 32\n"
	"	.seh_endprologue\n"
	"	movl $0x5353, %ebx\n"
	"	call target\n"
	"	addq $32, %rsp\n"
	"	popq %rbx\n"
	"	rep ret\n"
	".seh_endproc\n");

void tail_rel32(void);
void tail_rel8(void);
void tail_ind(void);
void rep_ret(void);

int main(void)
{
	tail_rel32();
	tail_rel8();
	tail_ind();
	rep_ret();
	printf("hits %d\n", hits);
	return hits;
}
