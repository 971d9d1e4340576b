// Package monitor implements rspstub's monitor commands (GDB's
// "monitor ...", LLDB's "process plugin packet monitor ...", the qRcmd
// packet): backtraces as Windows computes them, frame contexts with the
// stack address of every saved register, argument recovery, modules,
// TEB/PEB, the memory map, decoded UNWIND_INFO and a check of the
// unwinder against an emulator's shadow call stack.
//
// The package knows no emulator. It sees the stopped thread through a
// small Target (registers, memory that reads like io.ReaderAt, the module
// list) and optional interfaces found by type assertion: TEBer,
// RegionLister, ShadowStacker, ModuleFiler. A command that needs one the
// backend lacks answers a clear error. emulator/ucwin adapts the Unicorn
// backend; a QEMU backend can adapt the same interfaces.
//
// # Frames
//
// bt walks with package unwind from the thread's registers: .pdata,
// then the module's DWARF CFI where .pdata has no entry or fails, then a
// bounded stack scan; -heuristics adds the RBP chain before the scan;
// -strict is RtlVirtualUnwind alone. A frame without any unwind data
// (shellcode in VirtualAlloc'd memory, JIT code) gets its caller from a
// validated return address only (see package unwind): from the shadow
// call stack when the backend keeps one (trust "shadow"), else the leaf
// rule, the RBP chain or the scan, checked against the memory map
// (RegionLister) for code outside modules; when none can be proven the
// walk ends there and says so. verify-unwind walks without the shadow
// stack, so that it checks the unwinder's own answer. Each frame is named module!symbol+0xoff with
// [file @ line] when known. For caller frames the symbol and line are
// looked up at the return address minus one, as the unwinder does, so a
// call that ends a function is attributed to it.
//
// # Symbols
//
// Per module, built on first use and cached by (name, base, size): the
// COFF symbol table and the DWARF line table and parameter lists of the
// module's file (ModuleFiler; internal/peimage, debug/dwarf), then the export
// table read from guest memory, which names synthesized DLLs and images
// without a file. Every count is bounded; a malformed file costs only its
// own symbols.
//
// A symbol names an address only inside its own function: within its
// size when the symbol table gives one (ELF), otherwise not past the
// start of the function .pdata says holds the address
// (unwind.Unwinder.FunctionStart), so a PC in an unnamed function (a
// static constructor whose symbol was stripped) reads module+0xRVA, not
// nearest_symbol+0x15a. The emulator's stub DLLs are exempt: each of
// their stubs is two functions under one name. C++ names are demangled
// for display (package internal/demangle; the raw name stays in
// Location.Symbol and JSON's "mangled"), and Resolve takes either form.
//
// ELF modules (a Linux program under qemu-user; recognised by the ELF
// magic at their base) are unwound with their CFI only, and named from
// the DWARF subprograms and .symtab of their file, the .symtab of the
// separate debug file found by GNU build ID when the file is stripped
// (DebugFiler; Debian's libc6-dbg), then .dynsym; without a file, from
// the dynamic symbol table in guest memory. See elfsyms.go.
//
// # Errors and output
//
// Commands write to the io.Writer they are given and never print
// elsewhere. What the user typed wrong is a *UsageError (errors.Is
// ErrUsage); other failures say what could not be read and where. Run
// recovers from a panic in any command and turns it into an error, so
// nothing a user types can bring the stub down.
//
// # In a client
//
// Remote adapts a connected RSP client (rsp.Client) to Target: registers
// by name, memory, the Windows library list and qGetTIBAddr. A Go program
// can then walk the stack of any stub's stopped thread itself, which is
// how package monitortest writes regression tests.
//
// # JSON
//
// bt -json and modules -json print one JSON object on one line. The
// schema is documented in README.md ("Monitor commands") and is stable:
// 64-bit values are "0x..." strings, and a field that is unknown is
// absent, never invented. rspstub run --json embeds the same frames.
package monitor
