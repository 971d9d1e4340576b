// A data fault the fault decoder cannot place from the state alone: two
// loads through rbx with rbx moved in between, the second one faulting.
// At the fault rbx holds the faulting address, so the first load
// evaluates to it too. Under --record the Unicorn backend replays the
// block and stops at the second load (the symbol second_load).
#include <stdio.h>

static char buf[64];

int main(void)
{
	printf("before\n");
	fflush(stdout);
	__asm__ volatile(
		"lea %0, %%rbx\n\t"
		"movabs $0x7ff000000000, %%rcx\n\t"
		"mov (%%rbx), %%rax\n\t"
		"add %%rcx, %%rbx\n\t"
		".globl second_load\n"
		"second_load:\n\t"
		"mov (%%rbx), %%rdx\n\t"
		:
		: "m"(buf)
		: "rax", "rbx", "rcx", "rdx", "memory");
	printf("not reached\n");
	return 0;
}
