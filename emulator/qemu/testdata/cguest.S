/*
 * cguest.S: boot code for the C guest of cguest.c (the ELF --module
 * tests): a multiboot kernel that enters long mode, like guest.S, and
 * calls c_main, which never returns. Built at test time with
 *   gcc -c -o cguest-boot.o cguest.S
 *   gcc -c -ffreestanding -fno-pic -mno-red-zone -O2 -g -o cguest.o cguest.c
 *   ld -m elf_x86_64 -T guest.ld -o cguest64.elf cguest-boot.o cguest.o
 *   objcopy -O elf32-i386 cguest64.elf cguest.elf
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
	mov $boot_stack_top, %esp
	/* Identity-map the first 4 MiB: PML4[0] -> PDPT -> PD, two 2 MiB pages. */
	mov $boot_pdpt, %eax
	or $3, %eax
	mov %eax, boot_pml4
	mov $boot_pd, %eax
	or $3, %eax
	mov %eax, boot_pdpt
	movl $0x000083, boot_pd
	movl $0x200083, boot_pd+8
	mov $boot_pml4, %eax
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
	lgdt boot_gdt_ptr
	ljmp $0x08, $boot64

	.code64
boot64:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $boot_stack_top, %rsp
	xor %ebp, %ebp /* the end of the frame-pointer chain */
	call c_main
	cli
	hlt

	.section .rodata
	.align 8
boot_gdt:
	.quad 0
	.quad 0x00209A0000000000 /* 0x08: 64-bit code */
	.quad 0x0000920000000000 /* 0x10: data */
boot_gdt_ptr:
	.word boot_gdt_ptr - boot_gdt - 1
	.long boot_gdt

	.section .bss
	.align 4096
boot_pml4: .skip 4096
boot_pdpt: .skip 4096
boot_pd: .skip 4096
boot_stack: .skip 16384
boot_stack_top:
