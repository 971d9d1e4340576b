/*
 * rare.S: functions with the unwind codes compilers do not emit, as
 * clang-assembled .seh_* directives (GNU as rejects .seh_startchained).
 * Each sets its nonvolatile registers to recognisable values before it
 * calls the next, so a reference walk checks restored values too.
 *
 *   rare_entry (chained) -> rare_v2 -> rare_r13 -> rare_far -> rare_machframe -> capture
 *
 * Build: clang --target=x86_64-w64-mingw32 -c rare.S -o rare.o
 */
	.text

/* Chained unwind info, two levels, written by hand: clang's
 * .seh_startchained gives the parent entry the whole procedure, overlapping
 * the chained entry, and which one a binary search finds then depends on
 * the table. Here the regions are disjoint:
 *
 *   [rare_entry, .Lchild1)      parent: push rbx; sub rsp,0x20
 *   [.Lchild1, .Lchild2)        chained to parent: push rdi
 *   [.Lchild2, .Lpops)          chained to child1: sub rsp,0x28 (the call is here)
 *   [.Lpops, .Ltail)            chained to child1, no codes: add rsp,0x28; pop rdi
 *   [.Ltail, .Lend)             chained to parent, no codes: the parent's epilog
 */
	.globl rare_entry
	.def rare_entry; .scl 2; .type 32; .endef
rare_entry:
	push %rbx
	sub $0x20, %rsp
	mov $0xb0b0b0b0, %ebx
.Lchild1:
	push %rdi
.Lchild2:
	sub $0x28, %rsp
	mov $0xd1d1d1d1, %edi
	call rare_v2
	nop	/* keeps the return address inside this region for RtlVirtualUnwind */
.Lpops:
	add $0x28, %rsp
	pop %rdi
.Ltail:
	nop
	add $0x20, %rsp
	pop %rbx
	ret
.Lend:

	.section .xdata,"dr"
	.p2align 2
.Lxparent:
	.byte 0x01, 0x05, 0x02, 0x00	/* v1, prolog 5, 2 slots */
	.byte 0x05, 0x32		/* @5: UWOP_ALLOC_SMALL 0x20 */
	.byte 0x01, 0x30		/* @1: UWOP_PUSH_NONVOL rbx */
.Lxchild1:
	.byte 0x21, 0x01, 0x01, 0x00	/* v1 | UNW_FLAG_CHAININFO, prolog 1, 1 slot */
	.byte 0x01, 0x70		/* @1: UWOP_PUSH_NONVOL rdi */
	.byte 0x00, 0x00		/* padding */
	.rva rare_entry, .Lchild1, .Lxparent
.Lxchild2:
	.byte 0x21, 0x04, 0x01, 0x00	/* v1 | UNW_FLAG_CHAININFO, prolog 4, 1 slot */
	.byte 0x04, 0x42		/* @4: UWOP_ALLOC_SMALL 0x28 */
	.byte 0x00, 0x00		/* padding */
	.rva .Lchild1, .Lchild2, .Lxchild1
.Lxpops:
	.byte 0x21, 0x00, 0x00, 0x00	/* v1 | UNW_FLAG_CHAININFO, no codes */
	.rva .Lchild1, .Lchild2, .Lxchild1
.Lxtail:
	.byte 0x21, 0x00, 0x00, 0x00	/* v1 | UNW_FLAG_CHAININFO, no codes */
	.rva rare_entry, .Lchild1, .Lxparent

	.section .pdata,"dr"
	.p2align 2
	.rva rare_entry, .Lchild1, .Lxparent
	.rva .Lchild1, .Lchild2, .Lxchild1
	.rva .Lchild2, .Lpops, .Lxchild2
	.rva .Lpops, .Ltail, .Lxpops
	.rva .Ltail, .Lend, .Lxtail

	.text

/* Version 2 unwind info, written by hand (no assembler emits it): the
 * UWOP_EPILOG codes describe the epilog at the end of the function, whose
 * region is the pops and the ret; the add rsp before them is outside it. */
	.globl rare_v2
	.def rare_v2; .scl 2; .type 32; .endef
rare_v2:
	push %rbp
	push %rbx
	push %r12
	sub $0x20, %rsp
	mov $0x3333, %ebx
	mov $0x2222, %r12d
	call rare_r13
	nop
	add $0x20, %rsp
.Lv2epilog:
	pop %r12
	pop %rbx
	pop %rbp
	ret
.Lv2end:

	.section .xdata,"dr"
	.p2align 2
.Lxv2:
	.byte 0x02, 0x08, 0x06, 0x00	/* Version 2, prolog 8, 6 slots, no frame register */
	.byte 0x05, 0x16		/* UWOP_EPILOG: size 5, OpInfo 1: an epilog ends the function */
	.byte 0x00, 0x06		/* UWOP_EPILOG: offset 0, padding to an even count */
	.byte 0x08, 0x32		/* @8: UWOP_ALLOC_SMALL 0x20 */
	.byte 0x04, 0xc0		/* @4: UWOP_PUSH_NONVOL r12 */
	.byte 0x02, 0x30		/* @2: UWOP_PUSH_NONVOL rbx */
	.byte 0x01, 0x50		/* @1: UWOP_PUSH_NONVOL rbp */

	.section .pdata,"dr"
	.p2align 2
	.rva rare_v2, .Lv2end, .Lxv2

	.text

/* A frame pointer in r13 with FrameOffset 2 (0x20), and a dynamic
 * allocation below it: only r13 describes the frame. */
	.globl rare_r13
	.def rare_r13; .scl 2; .type 32; .endef
	.seh_proc rare_r13
rare_r13:
	push %r13
	.seh_pushreg %r13
	push %rsi
	.seh_pushreg %rsi
	sub $0x48, %rsp
	.seh_stackalloc 0x48
	lea 0x20(%rsp), %r13
	.seh_setframe %r13, 0x20
	.seh_endprologue
	mov $0x5151, %esi
	sub $0x100, %rsp
	call rare_far
	lea 0x28(%r13), %rsp
	pop %rsi
	pop %r13
	ret
	.seh_endproc

/* 32-bit UWOP_ALLOC_LARGE, UWOP_SAVE_NONVOL_FAR and UWOP_SAVE_XMM128_FAR:
 * a 1 MiB + 4 KiB frame, probed page by page with ___chkstk_ms. */
	.globl rare_far
	.def rare_far; .scl 2; .type 32; .endef
	.seh_proc rare_far
rare_far:
	push %rbp
	.seh_pushreg %rbp
	mov $0x101000, %eax
	call ___chkstk_ms
	sub %rax, %rsp
	.seh_stackalloc 0x101000
	mov %rbx, 0x80010(%rsp)
	.seh_savereg %rbx, 0x80010
	movaps %xmm6, 0x100020(%rsp)
	.seh_savexmm %xmm6, 0x100020
	mov %r12, 0x30(%rsp)
	.seh_savereg %r12, 0x30
	.seh_endprologue
	mov $0xfa4fa4, %ebx
	mov $0x1212, %r12d
	mov $0x6666, %eax
	movq %rax, %xmm6
	call rare_machframe
	mov 0x80010(%rsp), %rbx
	movaps 0x100020(%rsp), %xmm6
	mov 0x30(%rsp), %r12
	add $0x101000, %rsp
	pop %rbp
	ret
	.seh_endproc

/* UWOP_PUSH_MACHFRAME: the prolog turns its return address into an
 * interrupt-style frame (RIP, CS, EFLAGS, RSP, SS), so unwinding takes RIP
 * and RSP from it. */
	.globl rare_machframe
	.def rare_machframe; .scl 2; .type 32; .endef
	.seh_proc rare_machframe
rare_machframe:
	lea 8(%rsp), %rax
	mov (%rsp), %r10
	pushq $0x2b
	push %rax
	pushfq
	pushq $0x33
	push %r10
	.seh_pushframe
	sub $0x30, %rsp
	.seh_stackalloc 0x30
	.seh_endprologue
	mov $0x7e7e, %r14d
	call capture
	add $0x58, %rsp		/* 0x30 + the 40-byte machine frame */
	ret
	.seh_endproc
