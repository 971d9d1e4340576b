// Package check cross-checks the two kinds of unwind data a MinGW-built
// PE image carries, .pdata (Windows x64 unwind codes, read by package
// unwind with RtlVirtualUnwind's semantics) and DWARF call frame
// information (.debug_frame or .eh_frame, read by package unwind/dwarf),
// at every instruction of every function that has both. It is what
// `rspstub check-unwind FILE...` runs.
//
// # What is compared
//
// For each RUNTIME_FUNCTION that an FDE overlaps, the function is decoded
// from its first byte with golang.org/x/arch/x86/x86asm (stopping at the
// first byte that is not an instruction: data or padding in code, counted
// in Result.DecodeStops), and at each instruction start covered by an FDE
// both unwinders take one step from the same symbolic state:
//
//	register r (rax..r15)  = centre(r) = (r+1)<<48 | 1<<47
//	xmm i                  = a sentinel outside every region
//	memory                 = the image at its preferred base (code bytes,
//	                         UNWIND_INFO), and in the register regions each
//	                         read returns its own address with bit 63 set
//
// Every value a step computes then decodes back to "r+offset" and every
// register restored from the stack to "[r+offset]", the slot it came from
// (Sym). The .pdata side is Unwinder.VirtualUnwind for the entry
// RtlLookupFunctionEntry would pick, with epilog detection on (the PC is
// the innermost frame's); the CFI side is FDE.RowAt and dwarf.Step with
// the Windows preserved set. Compared are
//
//   - the CFA: the caller's RSP after the step (.pdata's final RSP, CFI's
//     CFA), which is RSP at the call plus 8;
//   - the return address slot;
//   - each callee-saved register, rbx, rbp, rsi, rdi, r12-r15 and
//     xmm6-xmm15: restored from the same slot, or unchanged on both sides.
//     CFI's "same value" and an unspecified preserved register agree with
//     .pdata's "not restored": .pdata restores only what was saved.
//
// A position agrees when all of these do. Each disagreeing position gets
// one category (CFA first, then the return address, then registers; for
// registers the first unexplained kind wins), and the first N are kept as
// examples with the instruction and what each side said.
//
// # The third opinion: the instruction bytes
//
// The two sides may base the CFA on different registers: in a function
// with a frame register (UWOP_SET_FPREG), CFI says rbp+N from the moment
// the frame register is set, while .pdata uses RSP in the prolog and in
// an epilog it emulates forward from "add rsp"; both are right when the
// numbers agree. A small forward data-flow pass over the decoded
// instructions (track.go) knows, for each register at each instruction,
// whether it holds "CFA+k", a constant, or something unknown: RSP is CFA-8
// at the entry; push, pop, add/sub/lea/mov on registers, leave, calls
// (which keep RSP; RAX survives a call so that "mov eax, N; call
// ___chkstk_ms; sub rsp, rax" is followed), jumps and conditional jumps
// inside the function are followed, joins of different values are
// unknown. Instructions reached by no branch get the state of the
// function's indirect jump (a switch table). With it two symbolic values
// on different bases are compared numerically, and when the sides
// disagree it tells which one the bytes support. A function part that
// starts inside a frame (a chained entry, GCC's .cold partition whose
// unwind codes sit at offset 0) starts from the CFA both sides give at
// its first byte when they agree, and from CFA-8 otherwise, so the
// tracker is never seeded from one side alone.
//
// # Where the two legitimately differ
//
// Each category says whether it is explained (a known, legitimate
// difference or a known producer bug) and why. The unexplained ones are
// real bugs somewhere: in the image's unwind data, in package unwind or
// unwind/dwarf, or in this package.
//
//   - unreachable-padding (explained): alignment nops and int3 after a
//     function's last ret that no path reaches. .pdata covers them with the
//     body's rules, CFI with whatever row followed the epilog (rsp+8 after
//     a "remember_state; def_cfa rsp,8; ret; restore_state" that restores
//     only at the next label). Neither answer is ever used.
//   - cfi-epilog-stale (explained): inside an epilog .pdata recognises by
//     its code (Windows does not need epilog unwind data), the bytes agree
//     with .pdata and the CFI row is still the body's: the producer wrote
//     no CFI for that epilog.
//   - cfi-epilog-gcc-frame-pop (explained, a producer bug): GCC 12 for SEH
//     targets, in functions with a frame register, writes a wrong rsp
//     offset into the CFI row after the epilog's "pop rbp" (so at the
//     final ret or tail jmp): e.g. "rsp-40" where the bytes and .pdata say
//     rsp+8. The row before the pop is right. Recognised only in exactly
//     that shape; any other wrong epilog row is cfi-epilog-wrong.
//   - pdata-epilog-unrecognised (explained): the bytes agree with CFI; the
//     code at the PC releases the frame, but not in a form the Windows
//     rule accepts (binutils' delay-load thunk ends in "jmp rax" without
//     REX.W), so Windows itself unwinds that instruction as the body.
//   - pdata-jmp-out-taken-as-epilog (explained): a jmp from the body into
//     another part of the same function that has its own unchained
//     RUNTIME_FUNCTION (GCC's hot/cold partitioning, and back): the
//     Windows rule takes any jmp out of the function for a tail call.
//     Windows unwinds that one instruction wrongly too.
//   - pdata-setfp-before-alloc (explained, a producer bug): the UNWIND_INFO
//     sets the frame register before later pushes or the allocation ("push
//     rbp; mov rbp, rsp; push rdi; ...; sub rsp, N", GCC for a function
//     that calls setjmp, e.g. Wine's glu32 gluTessEndPolygon). The Windows
//     prolog rules want UWOP_SET_FPREG after them: the establisher frame is
//     then the frame register, yet the UWOP_SAVE_XMM128 offsets were
//     written relative to RSP after the allocation. Windows (and package
//     unwind, faithfully) restores xmm6-xmm13 from the wrong slots; CFI
//     names the slots the prolog's movups instructions really write, which
//     the check confirms from the bytes before choosing this category.
//   - reg-save-timing (explained): in a prolog or an epilog, one side
//     already (or still) restores a register from its slot and the other
//     takes it as live. Prologs and epilogs only move registers between
//     themselves and the stack, so both give the caller's value. Typical:
//     GCC writes one CFI row after a run of movaps saves of xmm6-15 while
//     each UWOP_SAVE_XMM128 has its own CodeOffset.
//   - reg-register-rule (explained): CFI keeps a register in another
//     register; .pdata cannot express that.
//   - reg-cfi-unknown (explained): CFI says a callee-saved register is
//     undefined; .pdata's "not restored" means unchanged.
//   - cfa-expression (explained): CFI computes the CFA with a DWARF
//     expression (GCC's stack realignment, DRAP); not comparable.
//   - cfi-prolog, pdata-prolog, cfi-body, pdata-body, both-wrong: the
//     bytes side with one (or neither) of the two; cfa-undetermined: the
//     CFAs differ and the tracker cannot tell; ra-slot, reg-slot,
//     reg-pdata-only, reg-cfi-only: the CFAs agree but a slot differs, or
//     one side restores a register in the body that the other leaves live;
//     pdata-error, cfi-error: a step failed; panic: checking the function
//     panicked on corrupt input (recovered per function). All unexplained.
//
// Prolog instruction boundaries need no special case: a UWOP code's
// CodeOffset is the offset of the end of its instruction, and CFI's
// advance_loc moves to the same place, so both describe the state before
// each instruction; where they do not (the xmm saves above) the category
// says so.
//
// Ranges: only instruction starts inside both the .pdata entry and some
// FDE are compared; starts inside the entry but outside every FDE are
// counted in PdataOnlyPositions (FDEs end at the last instruction,
// entries often include the padding). An FDE whose CIE names another
// column as the return address (binutils' delay-load thunks say 32, which
// is xmm15 in the x86-64 numbering) is read with that column as the
// return address, and xmm15 is not compared there.
//
// x86asm reports a 32-bit displacement as an unsigned number
// (0xffffff60 for -0xa0); the tracker sign-extends it.
//
// # Deliberately out of scope
//
// Code with CFI but no .pdata entry (libgcc's ___chkstk_ms when it has
// CFI) and entries without an FDE are not compared: there is nothing to
// compare with. Clang's mingw target writes no DWARF CFI for its own code
// (only the CRT objects carry .debug_frame), so its images compare only
// the CRT. The tracker does not model memory, so a register restored
// from a slot by a mov (not a pop) is not checked against the bytes.
//
// # Measured
//
// Over all 694 PE files of Debian 12's libwine (x86_64-windows: 545 .dll,
// 103 .exe and the rest), rspstub check-unwind runs without error and
// compares 11,753,600 positions in 175,983 functions that have both:
// 11,602,987 agree (98.72%), and every one of the 150,613 disagreements
// falls in an explained category. By category, with the side that is
// right: unreachable-padding 132,326 (neither: no path reaches it);
// reg-save-timing 17,396 (both); pdata-epilog-unrecognised 194,
// pdata-jmp-out-taken-as-epilog 183 and pdata-setfp-before-alloc 446
// (CFI, as the instruction bytes show); cfi-epilog-gcc-frame-pop 68
// (.pdata). The .dll files alone: 11,140,719 positions, 98.70% agree.
//
// Libraries never print: Check returns a Result, the command formats it.
package check
