// Package dwarf reads DWARF call frame information (CFI) and unwinds one
// x86-64 frame with it: the .eh_frame of ELF modules (and of PE modules
// that carry one), .eh_frame_hdr's search table, and the .debug_frame that
// MinGW images carry beside their .pdata.
//
// The package is pure Go and never sees an emulator: it takes section
// bytes with the address their first byte has in the target, so callers
// can feed sections read from a module file or copied out of guest memory,
// and it reads the stack through a Memory it owns (ReadMemory with a short
// count meaning "readable up to here", the same contract as the parent
// unwind package). Registers are in DWARF numbering (the psABI's: 0 rax,
// 1 rdx, 2 rcx, 3 rbx, 4 rsi, 5 rdi, 6 rbp, 7 rsp, 8-15 r8-r15, 16 the
// return address, 17-32 xmm0-15), each with a known bit.
//
// # Specifications
//
// DWARF 5 section 6.4 (call frame information) and 2.5 (expressions),
// which DWARF 4 matches for everything here; the Linux Standard Base Core
// 5.0 "Exception Frames" chapter for .eh_frame, its augmentations and
// pointer encodings, and .eh_frame_hdr; the System V x86-64 psABI for the
// register numbers and which registers are callee-saved. GCC's libgcc
// unwinder (unwind-dw2.c) and binutils' readelf are the de-facto
// references where the documents are silent; where we follow one of them
// the comment says so.
//
// # Layout
//
// Both sections are a sequence of entries, each a CIE (shared
// parameters) or an FDE (one address range):
//
//	length     u32, or 0xffffffff then u64 (64-bit DWARF)
//	id         offset-sized in .debug_frame, 4 bytes in .eh_frame (LSB)
//	           CIE: 0 in .eh_frame, all ones in .debug_frame
//	           FDE: .eh_frame: distance back from this field to its CIE
//	                .debug_frame: section offset of its CIE
//	CIE:  version (1, 3, 4) | augmentation string | [v4: address_size,
//	      segment_size] | code_align ULEB | data_align SLEB | return
//	      column (u8 in v1, ULEB after) | ['z': length, then per letter
//	      L: LSDA encoding, P: personality encoding + pointer, R: FDE
//	      encoding, S: signal frame] | initial instructions
//	FDE:  initial location | range | ['z': length, LSDA pointer] |
//	      instructions
//
// In .eh_frame the FDE addresses use the CIE's 'R' encoding (GCC and clang
// emit DW_EH_PE_pcrel|DW_EH_PE_sdata4, relative to the field's own
// address, which is why the load address matters); the range uses only
// the format nibble. In .debug_frame both are address_size bytes: MinGW
// writes absolute addresses relocated to the image base. A zero length
// terminates .eh_frame and is skipped as padding in .debug_frame. An
// unknown augmentation letter after 'z' ends augmentation parsing (the
// length lets us skip the rest, as libgcc does); an augmentation without
// 'z' other than GCC's old "eh" cannot be skipped and fails that CIE.
//
// Pointer encodings: absptr, uleb128, udata2/4/8, sleb128, sdata2/4/8,
// the signed absptr, applied pcrel (the field's address), textrel and
// datarel (Bases: .text, and .got for ELF; in .eh_frame_hdr datarel is
// the header's own address), funcrel (the FDE's start, for the LSDA) and
// aligned. DW_EH_PE_indirect is followed through Section.Mem when the
// caller gives one; otherwise an indirect FDE address is an error and an
// indirect personality or LSDA is returned as the address of its pointer
// with a flag set (unwinding needs neither). DW_EH_PE_omit means absent.
//
// # Decoding
//
// Decoders never panic and never trust a length: a cursor with a sticky
// error reads every field, counts are checked against the bytes left,
// and errors are *FormatError values carrying the section, the entry's
// offset and the offset of the failing field (test kinds with errors.Is:
// ErrLength, ErrVersion, ErrAugmentation, ErrEncoding, ErrCIEPointer...).
// Section.Walk decodes every entry and keeps going past an entry that
// fails, as long as its length can be trusted; NewTable sorts the FDEs
// for binary search and keeps the failures in Table.Errors. CIEs are
// decoded once and cached per Section.
//
// For an .eh_frame read from guest memory, decoding everything is
// wasteful: HdrFinder binary-searches .eh_frame_hdr's table in place and
// decodes only the one FDE (and its CIE) it names. The table is usable
// only with fixed-size encodings; any other makes it unsearchable and
// callers fall back to a Table, as libgcc does.
//
// # The CFA program interpreter
//
// FDE.RowAt runs the CIE's initial instructions, keeps that row as the
// initial row (what DW_CFA_restore returns to, whatever kind the rule
// there was), then runs the FDE's instructions until an advance would
// move past the PC. Every DW_CFA opcode of DWARF 5 is implemented, plus
// DW_CFA_GNU_args_size (recorded, irrelevant to unwinding),
// DW_CFA_GNU_negative_offset_extended and DW_CFA_MIPS_advance_loc8.
// Register rules are unspecified (never mentioned), undefined,
// same_value, offset(N), val_offset(N), register(R), expression(E) and
// val_expression(E); every factored offset, including DW_CFA_val_offset's
// and val_offset_sf's, is multiplied by the data alignment factor. The
// CFA rule is register+offset or an expression.
//
// DW_CFA_remember_state pushes a full copy of the row (CFA rule included,
// as libgcc, GDB and readelf do) on a stack bounded by MaxStateDepth; a
// Row is an array of rules, not a map, so a remembered state can never
// alias the current one. DW_CFA_def_cfa_register and _offset after a CFA
// expression switch back to register+offset form, keeping the other half
// of the rule the expression replaced, as libgcc and GDB do (delve leaves
// the expression in force: TestDefCFARegisterAfterExpression). Rules for register numbers at or above NumRegs are
// counted in Row.Untracked and otherwise ignored. A program runs at most
// MaxInstructions instructions; an unknown opcode (DW_CFA_GNU_window_save
// included: it has no x86 meaning) is a *ProgramError with its offset.
//
// # Expressions
//
// Eval implements the DWARF expression operations meaningful in CFI:
// literals and constants, DW_OP_addr, breg0-31/bregx, reg0-31/regx (the
// register's value, as libgcc and GDB read it), deref/deref_size, stack
// operations (dup, drop, over, pick, swap, rot), arithmetic and logic,
// comparisons (signed), skip/bra and nop. DW_OP_div is signed and
// DW_OP_mod unsigned, as in libgcc and GDB. The stack is an array of
// MaxExprStack entries and a run executes at most MaxExprSteps
// operations, so a backward branch cannot hang the stub. Operations the
// standard calls meaningless in CFI (DW_OP_call*, push_object_address,
// call_frame_cfa, fbreg without a frame base, TLS, pieces, implicit and
// stack values) fail with ErrOpNotAllowed.
//
// DW_CFA_expression and DW_CFA_val_expression evaluate with the CFA
// pushed first; DW_CFA_def_cfa_expression pushes nothing, and the value
// it computes is the CFA itself. Delve dereferences that value once more
// and does not scale DW_CFA_val_offset; TestDRAP (GCC's stack-realignment
// pattern, whose CFA expression is "breg6 -40; deref") and
// TestValOffsetIsScaled are the regression tests for both.
//
// # One unwind step
//
// Step applies a row to a frame's registers and returns the caller's,
// with the CFA and, for each register restored from memory, the address
// it was read from (Registers.Addr, Registers.Saved). XMM registers are
// read as 16 bytes. RSP, when unspecified, is the CFA (the x86-64
// convention that makes the CFA the caller's stack pointer before the
// call). Other unspecified registers keep their value when the caller's
// preserved set says they are callee-saved (SysVPreserved,
// WindowsPreserved) and become unknown otherwise. An undefined return
// address rule marks the outermost frame (Frame.End): _start and
// clone's child carry one. A CFA that cannot be computed or a return
// address that cannot be read is an error; any other register that fails
// is only reported unknown (Frame.Lost, Frame.LostErr), because a
// backtrace needs the PC and the CFA, not every register.
//
// The FDE of a caller frame is looked up at PC-1 (LookupPC): a return
// address may be the first byte of the next function when a call ends a
// noreturn function. The innermost frame and a frame that a signal
// interrupted use the PC itself: Frame.Signal reports that the FDE just
// used had the 'S' augmentation (a signal trampoline), so the next lookup
// must be exact.
//
// # Finding the sections
//
// ELFSections uses debug/elf (compressed .debug_frame included) and
// returns link-time addresses: a position-independent module loaded at a
// bias needs the bias added before decoding, because pc-relative
// pointers follow the load address. PESectionsAt reads only the headers,
// the COFF string table and the CFI sections: names longer than eight
// bytes, like ".debug_frame", are stored as "/123" (a decimal offset into
// the string table that follows the symbol table) or "//BASE64", and are
// resolved there. That table is not mapped in a loaded image, so a PE
// module's .debug_frame is found from its file, not from guest memory.
// Go's linker writes its DWARF compressed on Windows: a .zdebug_frame
// ("ZLIB", the size as 8 big-endian bytes, a zlib stream) is read as
// .debug_frame when there is no uncompressed one; the stated size is
// bounded by MaxZDebug and must be what the stream gives.
//
// ReadEHFrame does the same for an ELF module in guest memory: it reads
// the PT_GNU_EH_FRAME segment (.eh_frame_hdr), follows its eh_frame_ptr,
// and copies the readable prefix of the .eh_frame (whose size memory does
// not record; the zero terminator ends it), returning a HdrFinder that
// decodes FDEs on demand.
//
// # How it is checked
//
// Besides tables of annotated bytes, the tests build testdata/frames.c
// with gcc and x86_64-w64-mingw32-gcc at several optimisation levels and
// compare every row binutils prints (readelf --debug-dump=frames-interp,
// x86_64-w64-mingw32-objdump --dwarf=frames-interp) with RowAt at that
// address; the same is done for the system's libc.so.6 and four Wine
// DLLs, and all of Wine's PE modules' .debug_frame entries are decoded
// and interpreted. A static build is stopped in GDB at ten places
// (function entries, bodies after the prologue, a DRAP frame, a signal
// handler above glibc's __restore_rt) and walked with Unwind from GDB's
// registers and stack to _start's undefined return address; every
// frame's PC, stack pointer and callee-saved registers must equal GDB's.
// A fuzz test covers each decoder, the interpreter and the evaluator.
//
// Measured on Debian 12 (gcc-mingw-w64 12-win32): libgcc's _chkstk_ms.o
// carries no CFI at all, so ___chkstk_ms is covered by neither .pdata nor
// .debug_frame in linked images; a walker needs another rule there.
package dwarf
