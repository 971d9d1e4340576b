// Package unwind is rspstub's Windows x64 unwinder: it turns the registers
// of a stopped thread into the call stack Windows itself would compute,
// frame by frame, at any instruction, reading everything from guest memory.
//
// The package is pure Go. It sees the guest through two things it owns: a
// Memory (ReadMemory with a short count for "readable up to here") and a
// Context (sixteen integer registers, RIP and XMM0-15, each with a known
// bit and the stack address it was restored from). The caller supplies the
// module list; the unwinder never depends on an emulator type.
//
// # Specification
//
// The format is Microsoft's "x64 exception handling" documentation
// (learn.microsoft.com/cpp/build/exception-handling-x64): RUNTIME_FUNCTION,
// UNWIND_INFO, UNWIND_CODE, chained unwind information. The algorithm is
// RtlVirtualUnwind as the Windows source implements it (minkernel
// ntos/rtl/amd64/exdsptch.c, published as "copied OS code" in the .NET
// runtime's out-of-process unwinder). Where the documentation and that code
// differ, we follow the code, because a backtrace must match what Windows
// does, not what it says.
//
// # Reading unwind data
//
// ReadImage reads the DOS and PE headers, the section table and the
// exception directory from guest memory, then the RUNTIME_FUNCTION table
// page by page. An unreadable or zeroed page (paged out, not yet touched)
// costs only its entries: they are marked missing, lookups binary-search
// the valid entries, and an address that falls in a gap is a leaf function
// only when no missing entry lies between its valid neighbours; otherwise
// the lookup reports ErrMissingUnwindData rather than guessing. Parsed
// images and decoded UNWIND_INFO are cached per module (Unwinder.Flush and
// SetModules invalidate).
//
// An indirect entry (UnwindData bit 0, RUNTIME_FUNCTION_INDIRECT) is
// resolved once, as RtlLookupFunctionEntry does; an indirect entry that
// points at another indirect entry is an error.
//
// # Decoding UNWIND_INFO
//
// DecodeUnwindInfo is our own decoder (saferwall/pe's gets FrameRegister,
// FrameOffset, UWOP_ALLOC_LARGE, UWOP_SAVE_NONVOL_FAR, version 2 epilog
// codes and chained info wrong, and panics on bad input). It is a cursor
// with a sticky error; it trusts no count: CountOfCodes is checked against
// the bytes present, and an operation whose extra slots run past
// CountOfCodes is an error (Windows would read the padding). Errors are
// *InfoError values carrying the RVA and offset; test the kind with
// errors.Is (ErrVersion, ErrUnknownOp, ErrCodeOverrun, ErrTruncated, ...).
//
// Operations are walked with the slot stride of the Windows unwinder:
// UWOP_ALLOC_LARGE takes 2 slots (16-bit size, scaled by 8) or, with any
// non-zero OpInfo, 3 (32-bit size, unscaled); UWOP_SAVE_NONVOL and
// UWOP_SAVE_XMM128 take 2 (offset scaled by 8 and 16); the _FAR forms take
// 3 and are not scaled; UWOP_EPILOG takes 2 and UWOP_SPARE_CODE 3, both
// without effect on the prolog. Versions other than 1 and 2 are rejected.
// Version 2 epilog descriptors are read separately, one slot each: the
// first UWOP_EPILOG gives the epilog size and, in OpInfo bit 0, whether an
// epilog ends the function; each following one gives an epilog's distance
// from the function end (CodeOffset | OpInfo<<8), 0 being padding.
//
// # One step (VirtualUnwind)
//
//   - Establisher frame: RSP when FrameRegister is 0. Otherwise the frame
//     register minus 16*FrameOffset when the PC is past the prolog or the
//     entry is chained; inside the prolog, only once the UWOP_SET_FPREG code
//     has executed (its CodeOffset <= the PC offset), else RSP. Save codes
//     are relative to the establisher frame, and chained parents share the
//     child's.
//   - Epilog, version 1: the code at the PC is read and matched exactly as
//     Windows does: an optional "add rsp, imm8/imm32" (48 83 c4 / 48 81 c4)
//     or "lea rsp, [fp+disp8/disp32]" whose base is the frame register; any
//     number of pops (58+r, with any REX prefix, REX.B selecting r8-r15);
//     an optional repne prefix; then ret (c3), ret imm16 (c2), rep ret
//     (f3 c3), a jmp rel8/rel32 (eb/e9) whose target is outside the function
//     (or its start, a recursive tail call) and not in another entry of the
//     same function, jmp [rip+disp32] (ff 25), or REX.W jmp r/m64
//     (48-4f ff /4). The epilog is then emulated forward and the return
//     popped.
//   - No epilog detection at all when the entry has no unwind codes
//     (Windows 10 1809 and later, in both versions), unless it is a chained
//     region: the codeless tail of a split function is where the parent's
//     epilog runs (Wine checks it at the parent's level too).
//   - Epilog, version 2: from the descriptors, without reading code. The pops not yet executed are the
//     UWOP_PUSH_NONVOL codes (one byte each, two for r8-r15); the add/lea
//     that precedes the pops is outside the epilog region.
//   - Otherwise the prolog is reversed: only codes whose CodeOffset is at or
//     below the PC offset; then each chained parent (at most ChainLimit) with
//     its own offset, which normally applies it in full. UWOP_PUSH_MACHFRAME
//     loads RIP and RSP from the machine frame (after the error code when
//     OpInfo is non-zero); else the return address is popped.
//   - A PC inside a module without an entry is a leaf: RIP = [RSP], RSP += 8.
//
// Every register restored from memory records the address it came from, so
// a frame's Context is also its KNONVOLATILE_CONTEXT_POINTERS. After a call
// step the volatile registers (rax, rcx, rdx, r8-r11, xmm0-5) become
// unknown; nonvolatile ones keep their value and save address until a
// frame restores them.
//
// # The walk
//
// Walk starts from frame 0 (trust "context") and labels each later frame
// with how it was found: "pdata", "leaf", "machframe", and for fallbacks
// "cfi", "frame-pointer", "scan" or "shadow". For caller frames the function is
// looked up at the return address minus one, so a call that is the last
// instruction of a function is attributed to that function, and epilog
// detection is skipped (a return address follows a call; Windows' own
// UNW_FLAG_NO_EPILOGUE). The prolog offset still uses the exact return
// address, so a call inside a prolog (__chkstk) is unwound correctly.
//
// The walk ends at a zero return address, or with a reason: frame limit
// (default 1024, never more than HardMaxFrames), a stack pointer that does
// not increase (machine frames may switch stacks, so they are checked for
// repeated (PC, SP) pairs instead), unreadable stack, a PC outside every
// module (the frame is still reported), missing or malformed unwind data,
// no provable return address (Validate). When .pdata cannot unwind a
// frame the configured fallbacks are tried in order: a CFIUnwinder (DWARF
// CFI plugs in here), the RBP chain, and a bounded stack scan; the last
// two accept only validated return addresses (below).
//
// # Frames without unwind data
//
// Code outside every module (shellcode copied into VirtualAlloc'd memory,
// JIT code) and module code with neither a .pdata entry nor CFI have
// nothing that says where their return address is. With
// WalkOptions.Validate the walk takes one only after checking it: the
// word must lie in executable code (a module's executable section, or a
// mapping CodeRegions reports) right after a call instruction, and a
// direct call must be able to have entered the frame. "Direct" covers
// call rel32 and call [rip+disp32] whose pointer is readable (an import
// address table slot); its target, followed through jmp thunks (four
// hops), must lie in the frame's function: the same .pdata function
// (chains followed), the same gap between entries and at or before the
// PC for a function without an entry, the same executable mapping
// outside modules. The target's own tail jumps (jmp rel, jmp [rip+x],
// decoded linearly over the target function, 4 KiB at most, two
// functions deep) count too: the CRT's _unlock_file ends in a jmp to
// msvcrt's _unlock. An indirect jump counts when it is REX.W jmp, the
// form the x64 ABI gives indirect tail calls (libgcc's
// _Unwind_DeleteException ends in one), and may reach anything; a plain
// jmp reg is a switch inside the function. A call through a register or
// computed memory is accepted as it is, and so is a return address into
// a Synthetic module (an emulator's API stubs call guest code back
// without a call instruction). Candidates, in order:
//
//  1. the emulator's shadow call stack (WalkOptions.Shadow; trust
//     "shadow"): the innermost call whose return-address slot is at or
//     above the frame's RSP, if its target reaches the frame's code and
//     the slot still holds the return address. A call emulated code made
//     without a call instruction (a callback) is not on the shadow stack;
//     the target check keeps the walk from skipping over it.
//  2. the Windows leaf rule, for code inside a module (trust "leaf");
//  3. the RBP chain: [RBP+8] when RBP lies above RSP (trust
//     "frame-pointer"), which restores RBP from [RBP];
//  4. a scan upward from RSP, ScanWords words (trust "scan"); a scanned
//     word outside every module must be in a CodeRegions mapping.
//
// The frame that was unwound keeps its nonvolatile registers for its
// caller, as the leaf rule assumes, except RBP when it points into that
// frame: then it is the frame's own frame pointer, restored from [RBP]
// when it sits right below the return address and unknown otherwise.
// When nothing validates the walk ends with StopUnproven (ErrUnproven):
// a frame is missing rather than invented. A stale return address the
// routine left in its own frame fails the target check when it follows
// a direct call; one that follows an indirect call cannot be told from
// a real one, which is why the shadow stack, when the emulator keeps
// one, comes first. A tail jump through a register without REX.W is not
// followed: a frame entered that way is unprovable without the shadow
// stack.
//
// With Validate, a return address that CFI gives for a function without
// a .pdata entry must lie in code right after a call (any call): Go's
// rt0_go has CFI that reads a stored argc as its return address. When
// it does not, the frame is treated as one without unwind data.
//
// Without Validate (RtlVirtualUnwind semantics, monitor's bt -strict)
// such a frame follows the leaf rule and a PC outside every module ends
// the walk. The fallbacks below (FramePointer, Scan) validate the same
// way whenever they run.
//
// A function without a .pdata entry is tried with the CFIUnwinder before
// the leaf rule (libgcc's ___chkstk_ms pushes and has no entry; package
// cfi carries built-in CFI for it, trust "cfi (builtin)").
// WalkOptions.Prefer chooses for code that has both: PreferAuto is the
// above, PreferPDATA never uses CFI where there is an entry (not even when
// .pdata fails), PreferCFI asks the CFIUnwinder first and uses .pdata
// only where it has no CFI for the PC.
//
// A Module whose Format is FormatELF (a Linux program's executable and
// shared objects, a kernel under QEMU system mode) has no .pdata: each of
// its frames is unwound by the CFIUnwinder (trust "cfi"), never parsed as
// a PE image; a PC its CFI does not cover ends the walk with ErrNoCFI
// (StopMissingData) unless the RBP chain or the scan is enabled. Without a
// section table the whole module counts as code for them, and a direct
// call is consistent with a callee at or after its target within 1 MiB
// (noRegionReach); the call-instruction check still applies.
//
// # How it is verified
//
//   - Table tests over hand-written UNWIND_INFO bytes, each byte annotated,
//     for every code, rule and peer bug below.
//   - Wine's 694 PE DLLs: every RUNTIME_FUNCTION decodes, and the decoding
//     equals llvm-readobj --unwind (a sample by default, all of them with
//     RSPSTUB_FULL_CORPUS=1).
//   - Programs built at test time from testdata (mingw gcc -O0/-O2, clang's
//     mingw and MSVC targets, clang-assembled .seh_* assembly and hand-built
//     .pdata/.xdata for chained, version 2, far-offset and machine-frame
//     codes) run under wine64, which provides two oracles: the program's own
//     RtlLookupFunctionEntry/RtlVirtualUnwind walk, which ours must equal
//     frame for frame and register for register over the saved stack bytes,
//     and a single-stepped run that records RtlVirtualUnwind's answer at
//     every instruction of every function with unwind data.
//   - Fuzz tests of the decoder, the image reader and the walk.
//
// Wine's unwinder is an oracle, not the specification: it uses the frame
// register before UWOP_SET_FPREG has run and does not treat a jmp out of
// the function as an epilog. The fixtures avoid those shapes, and the
// table tests pin the Windows behaviour.
//
// # Peer bugs this package avoids (each has a regression test)
//
//   - GDB's amd64-windows epilog reader tests 0xec (in al,dx) for jmp rel32
//     instead of 0xe9, misreads rep ret and ret imm16, numbers popped
//     registers op&0x0f (pop rbx would be r11), scales UWOP_SAVE_NONVOL_FAR
//     by 8, and negates UWOP_SAVE_XMM128 offsets.
//   - vminer assumes the frame register is RBP and uses it even before
//     UWOP_SET_FPREG has executed.
//   - LLDB ignores the RSP stored in a machine frame.
//
// # Deliberately unsupported or different
//
//   - SameFunction is evaluated inside the function's own image: Windows
//     compares RVAs across images when a jmp leaves the module, which can
//     only produce false "not an epilog" answers.
//   - UWOP_SET_FPREG with FrameRegister 0 is a decode error (Windows would
//     use RAX); so is an operation running past CountOfCodes.
//   - The UWOP_SET_FPREG_LARGE code of the .NET runtime's Unix unwinder is
//     not part of Windows and is rejected as an unknown operation.
//   - An epilog ending in ret imm16 is emulated as Windows does it: RSP
//     moves past the return address only (Wine also adds imm16).
//   - Memory must return original code bytes: a debugger's int3 patches
//     must be hidden from it, because the version 1 rule reads code.
//   - Language-specific handlers are reported (StepInfo.HandlerRVA) but
//     never run.
//   - Not thread-safe: one Unwinder per goroutine, or a lock around it.
package unwind
