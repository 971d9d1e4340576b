/*
 * guest.S: the qemu-system fixture, a multiboot kernel that enters long
 * mode and calls tick() forever. Built at test time with
 *   gcc -c -o guest.o guest.S
 *   ld -m elf_x86_64 -T guest.ld -o guest64.elf guest.o
 *   objcopy -O elf32-i386 guest64.elf guest.elf
 * and booted with qemu-system-x86_64 -kernel guest.elf.
 *
 * Paging identity-maps the first 4 MiB with two 2 MiB pages; everything
 * above 0x400000 is unmapped (the tests read across that edge).
 */
	.set MB_MAGIC, 0x1BADB002
	.set MB_FLAGS, 0x0
	.section .multiboot, "a"
	.align 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.section .text
	.code32
	.globl _start
_start:
	cli
	mov $stack_top, %esp
	/* PML4[0] -> PDPT, PDPT[0] -> PD, PD[0..1] = 2 MiB pages. */
	mov $pdpt, %eax
	or $3, %eax
	mov %eax, pml4
	mov $pd, %eax
	or $3, %eax
	mov %eax, pdpt
	movl $0x000083, pd
	movl $0x200083, pd+8
	mov $pml4, %eax
	mov %eax, %cr3
	mov %cr4, %eax
	or $0x20, %eax /* PAE */
	mov %eax, %cr4
	mov $0xC0000080, %ecx /* EFER */
	rdmsr
	or $0x100, %eax /* LME */
	wrmsr
	mov %cr0, %eax
	or $0x80000001, %eax /* PG | PE */
	mov %eax, %cr0
	lgdt gdt_ptr
	ljmp $0x08, $long_mode

	.code64
long_mode:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $stack_top, %rsp
	xor %ebx, %ebx
	.globl loop
loop:
	call tick
	inc %rbx
	jmp loop
	cli
	hlt

	.globl tick
tick:
	push %rbp
	mov %rsp, %rbp
	incq counter(%rip)
	mov counter(%rip), %rax
	pop %rbp
	ret

	.section .rodata
	.align 8
gdt:
	.quad 0
	.quad 0x00209A0000000000 /* 0x08: 64-bit code */
	.quad 0x0000920000000000 /* 0x10: data */
gdt_ptr:
	.word gdt_ptr - gdt - 1
	.long gdt

	.section .bss
	.align 4096
pml4:	.skip 4096
pdpt:	.skip 4096
pd:	.skip 4096
	.globl counter
counter: .skip 8
	.align 16
	.skip 8192
stack_top:
