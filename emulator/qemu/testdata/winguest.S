/*
 * winguest.S: the Windows-shaped qemu-system fixture. A multiboot kernel
 * that enters long mode, copies two PE32+ images built from winchain.c
 * (chain.exe, at 0x800000) and winthunk.c (kernel32.dll, at 0xa00000)
 * to their image bases, and runs kernel32!BaseThreadInitThunk(chain.exe
 * entry, phase) three times over:
 *
 *   phase 1  gs_base 0 (as at reset): no TEB, only an MZ scan or
 *            --module can name the code
 *   phase 2  gs_base 0x1800000, which the page tables do not map
 *   phase 3  gs_base = teb, forever (label good_loop); k_gs_base holds
 *            a KPCR-like block, as a kernel's would
 *
 * The TEB, PEB, PEB_LDR_DATA and the two LDR_DATA_TABLE_ENTRYs (with
 * UNICODE_STRING names) are data of this kernel; SizeOfImage is copied
 * from each image's header at run time. Built at test time, in a folder
 * that holds chain.exe and kernel32.dll, with
 *   gcc -c -o winguest.o winguest.S
 *   ld -m elf_x86_64 -T guest.ld -o winguest64.elf winguest.o
 *   objcopy -O elf32-i386 winguest64.elf winguest.elf
 *
 * Paging identity-maps the first 16 MiB with 2 MiB pages; everything
 * above 0x1000000 is unmapped. The code runs at CPL 0 (cs 0x08).
 */
	.set MB_MAGIC, 0x1BADB002
	.set MB_FLAGS, 0x0
	.set EXE_BASE, 0x800000
	.set K32_BASE, 0xa00000
	.set BAD_TEB, 0x1800000
	.set IA32_GS_BASE, 0xC0000101
	.set IA32_KERNEL_GS_BASE, 0xC0000102

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
	/* PML4[0] -> PDPT, PDPT[0] -> PD, PD[0..7] = 2 MiB pages. */
	mov $pdpt, %eax
	or $3, %eax
	mov %eax, pml4
	mov $pd, %eax
	or $3, %eax
	mov %eax, pdpt
	mov $pd, %edi
	mov $0x83, %eax
	mov $8, %ecx
1:	mov %eax, (%edi)
	add $0x200000, %eax
	add $8, %edi
	loop 1b
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
	/* Copy the images: file layout = memory layout (see winchain.c). */
	lea exe_image(%rip), %rsi
	mov $EXE_BASE, %edi
	mov $(exe_image_end - exe_image), %ecx
	rep movsb
	lea k32_image(%rip), %rsi
	mov $K32_BASE, %edi
	mov $(k32_image_end - k32_image), %ecx
	rep movsb
	/* LDR entries' SizeOfImage from the headers (e_lfanew + 0x50). */
	mov EXE_BASE+0x3c, %eax
	mov EXE_BASE+0x50(%rax), %eax
	mov %eax, ent_exe+0x40
	mov K32_BASE+0x3c, %eax
	mov K32_BASE+0x50(%rax), %eax
	mov %eax, ent_k32+0x40

	.globl phase1
phase1:
	mov $1, %edx
	call run_thread

	mov $IA32_GS_BASE, %ecx
	mov $BAD_TEB, %eax
	xor %edx, %edx
	wrmsr
	.globl phase2
phase2:
	mov $2, %edx
	call run_thread

	mov $IA32_KERNEL_GS_BASE, %ecx
	mov $kpcr, %eax
	xor %edx, %edx
	wrmsr
	mov $IA32_GS_BASE, %ecx
	mov $teb, %eax
	xor %edx, %edx
	wrmsr
	.globl good_loop
good_loop:
	mov $3, %edx
	call run_thread
	jmp good_loop

/* run_thread: kernel32!BaseThreadInitThunk(chain.exe entry, edx) by the
 * images' AddressOfEntryPoint (e_lfanew + 0x28), Windows x64 ABI. */
run_thread:
	push %rbx
	sub $32, %rsp
	mov EXE_BASE+0x3c, %eax
	mov EXE_BASE+0x28(%rax), %ecx
	add $EXE_BASE, %rcx
	mov K32_BASE+0x3c, %eax
	mov K32_BASE+0x28(%rax), %eax
	add $K32_BASE, %rax
	call *%rax
	add $32, %rsp
	pop %rbx
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
	.align 16
exe_image:
	.incbin "chain.exe"
exe_image_end:
	.align 16
k32_image:
	.incbin "kernel32.dll"
k32_image_end:

/* UNICODE_STRING {Length, MaximumLength, pad, Buffer} for a .string16. */
.macro ustr name
	.short \name\()_end - \name - 2, \name\()_end - \name
	.long 0
	.quad \name
.endm

	.section .data
	.align 4096
	.globl teb
teb:
	.quad 0                 /* +0x00 ExceptionList */
	.quad stack_top         /* +0x08 StackBase */
	.quad stack_bottom      /* +0x10 StackLimit */
	.quad 0, 0, 0           /* +0x18 SubSystemTib, FiberData, ArbitraryUserPointer */
	.quad teb               /* +0x30 Self */
	.quad 0                 /* +0x38 EnvironmentPointer */
	.quad 0x10, 0x14        /* +0x40 ClientId (process 16, thread 20) */
	.quad 0, 0              /* +0x50 ActiveRpcHandle, ThreadLocalStoragePointer */
	.quad peb               /* +0x60 ProcessEnvironmentBlock */
	.long 0, 0              /* +0x68 LastErrorValue */

	.align 4096
	.globl peb
peb:
	.byte 0, 0, 1, 0        /* +0x00 ..., BeingDebugged */
	.long 0
	.quad -1                /* +0x08 Mutant */
	.quad EXE_BASE          /* +0x10 ImageBaseAddress */
	.quad ldr               /* +0x18 Ldr */
	.quad 0                 /* +0x20 ProcessParameters */
	.skip 0x300 - 0x28

	.align 16
	.globl ldr
ldr:
	.long 0x58, 1           /* +0x00 Length, Initialized */
	.quad 0                 /* +0x08 SsHandle */
	.quad ent_exe, ent_k32  /* +0x10 InLoadOrderModuleList */
	.quad ldr+0x20, ldr+0x20 /* +0x20 InMemoryOrderModuleList (empty) */
	.quad ldr+0x30, ldr+0x30 /* +0x30 InInitializationOrderModuleList (empty) */
	.skip 0x58 - 0x40

	.align 16
ent_exe:
	.quad ent_k32, ldr+0x10 /* +0x00 InLoadOrderLinks */
	.quad 0, 0, 0, 0        /* +0x10, +0x20 other links (unused) */
	.quad EXE_BASE          /* +0x30 DllBase */
	.quad 0                 /* +0x38 EntryPoint */
	.long 0, 0              /* +0x40 SizeOfImage (set at run time) */
	ustr exe_path           /* +0x48 FullDllName */
	ustr exe_name           /* +0x58 BaseDllName */
	.skip 0x120 - 0x68

	.align 16
ent_k32:
	.quad ldr+0x10, ent_exe
	.quad 0, 0, 0, 0
	.quad K32_BASE
	.quad 0
	.long 0, 0
	ustr k32_path
	ustr k32_name
	.skip 0x120 - 0x68

	.align 2
exe_path: .string16 "C:\\guest\\chain.exe"
exe_path_end:
exe_name: .string16 "chain.exe"
exe_name_end:
k32_path: .string16 "C:\\Windows\\System32\\kernel32.dll"
k32_path_end:
k32_name: .string16 "kernel32.dll"
k32_name_end:

	.align 64
kpcr:
	.quad 0, 0, 0
	.quad kpcr              /* +0x18 Self: a KPCR, not a TEB */
	.skip 0x100

	.section .bss
	.align 4096
pml4:	.skip 4096
pdpt:	.skip 4096
pd:	.skip 4096
	.align 16
stack_bottom:
	.skip 65536
stack_top:
