// Package guest is the Windows x64 guest model: it loads a real PE program
// into an emulator through the small Machine interface, synthesizes the
// system DLLs it needs as real PE32+ images, builds the TEB, PEB and loader
// structures with their real layouts, and implements the Win32 and C
// runtime functions a console program calls, in Go.
//
// # Layers
//
// Package guest/peload is the PE loader, pure: a file's bytes in, a checked
// image and its plan out (memory layout, relocation, sections and page
// permissions, imports, exports), read through internal/peimage. Package
// guest/process is the process layer both userlands share: the Machine,
// guest memory access, the TEB/PEB/loader structure offsets, the user
// address-space limits and the command line. This package, a userland
// above it, places and maps what the loader plans, builds the process
// (address space, TEB/PEB, loader lists, heap) and implements the
// synthesized Win32 and C runtime functions. Its exports are tables with
// one line per export, its name, arity and handler (ntdllExports and
// kernel32Exports in api_kernel32.go, crtExports in api_crt.go), their
// handlers grouped by subsystem in kernel32_*.go and crt_*.go. The Wine
// userland (guest/wine) runs beside it on the same process layer, with a
// system-call table instead of export tables.
//
// # Address space
//
// Nothing is mapped below 0x10000. Addresses (typical, all checked for
// collisions by a small allocator that records every mapping):
//
//	0x00100000          thread stack, 1 MiB, all committed (TEB StackLimit..StackBase)
//	0x00400000 or
//	0x140000000         the program at its preferred ImageBase (never rebased:
//	                    it is mapped first)
//	0x180000000+        real DLLs at their preferred base, or rebased from here
//	                    upwards (64 KiB aligned) when that is taken
//	0x3_0000_0000       PEB (one page), TEB (two pages) right after it
//	0x20_0000_0000      process heap arenas (1 MiB each, mapped on demand);
//	                    PEB_LDR_DATA, LDR_DATA_TABLE_ENTRYs, process parameters,
//	                    argv/environment strings and TLS blocks live here too
//	0x40_0000_0000      VirtualAlloc allocations
//	0x7FFB_0000_0000    synthesized system DLLs, 1 MiB apart, in load order:
//	                    ntdll.dll, KERNEL32.dll, KERNELBASE.dll, then msvcrt.dll,
//	                    ucrtbase.dll, api-ms-win-*.dll... as imported
//
// Images are mapped page-granular: each page gets the union of the
// permissions of the sections overlapping it; headers and gaps are read-only.
//
// # Synthesized DLLs and traps
//
// Each system DLL is generated (synth.go) as a complete PE32+ image whose
// file layout equals its memory layout: DOS and PE headers, .text, .data,
// .rdata (export directory with names, ordinals and forwarder strings, then
// UNWIND_INFO) and .pdata. ModuleImage serves those bytes to debuggers, so
// they parse and unwind the DLL like any other. Every exported function is
// a 16-byte stub with its own RUNTIME_FUNCTION:
//
//	+0  hlt           <- API entry, inside the DLL's trap range
//	+1  sub rsp,28h
//	+5  hlt           <- return address of guest callbacks (also trapped)
//	+6  add rsp,28h
//	+10 ret
//
// The stubs of a DLL form one range passed to Machine.AddTrapRange; the
// emulator's machine traps on a hlt there (unicorn.Machine.AddHaltTrapRange:
// no code hook, so an interrupt stops the guest at an exact instruction)
// and reports the stop on the hlt, before it ran. The integrator calls
// HandleTrap, which reads the arguments (RCX, RDX, R8, R9, then the stack above the
// home area), runs the Go implementation, and returns to the caller: RAX =
// result, RIP = [RSP], RSP += 8. A trap at +0 is before the prolog, so a
// .pdata unwinder treats the stub as a leaf there and the backtrace is
// exact. A function we do not implement still gets a stub (every name a
// loaded image imports is exported, plus 64 spare stubs per DLL for later
// LoadLibrary calls); calling it stops the guest with TrapResult.Unimplemented
// = "DLL!name" and RIP left at the entry, or returns 0 when
// Config.UnimplementedReturnsZero is set. GetProcAddress of an unknown name
// returns NULL, as on Windows.
//
// # Calling back into the guest
//
// APIs that call guest code (_initterm, _initterm_e, atexit/_onexit at
// exit, _execute_onexit_table, qsort, DllMain and TLS callbacks from
// LdrInitializeThunk and LoadLibrary) use continuation traps: the Go
// implementation asks for a guest call with a continuation; HandleTrap
// builds the frame the stub's prolog would have built (RSP = entry RSP -
// 0x30, return address = stub+4, arguments in registers, a fifth one in the
// frame) and sets RIP to the callback. When the callback returns to stub+4
// the trap resumes the continuation with RAX, which may call again, return
// to the API's caller or exit. While a callback runs, a .pdata walk goes
// callback → API stub (its sub rsp,28h applied) → the API's caller.
//
// # Exceptions
//
// RaiseException dispatches like Windows (seh.go): it walks the stack from
// its caller with the .pdata unwinder of package unwind and calls each
// frame's exception handler as guest code with EXCEPTION_RECORD, CONTEXT
// and DISPATCHER_CONTEXT in heap memory; RtlUnwindEx walks again calling
// the termination handlers (EXCEPTION_UNWINDING, EXCEPTION_TARGET_UNWIND at
// the target) and then loads the target frame's context with RIP =
// TargetIp and RAX = ReturnValue, dropping the callbacks whose frames it
// discards. RtlCaptureContext, RtlLookupFunctionEntry and RtlVirtualUnwind
// are provided for libgcc. This is enough for C++ throw/catch in mingw
// programs; only integer registers are restored (no XMM in Machine), and
// an exception no handler takes ends the process with its code. Hardware
// faults are not dispatched: they stop the guest for the debugger.
//
// # Thread start
//
// RIP starts at ntdll!LdrInitializeThunk (a stub): it calls the TLS
// callbacks and DllMain(DLL_PROCESS_ATTACH) of every real DLL in
// initialization order (dependencies first), then the program's TLS
// callbacks, all as guest code, and jumps to ntdll!RtlUserThreadStart with
// RCX = entry point, RDX = PEB and RSP = StackBase-8 holding a zero return
// address. RtlUserThreadStart and KERNEL32!BaseThreadInitThunk are real
// hand-assembled code with UNWIND_INFO (sub rsp,48h and sub rsp,28h), so a
// backtrace from main ends "..., mainCRTStartup, KERNEL32!BaseThreadInitThunk,
// ntdll!RtlUserThreadStart" as in Visual Studio; when the entry point
// returns, BaseThreadInitThunk calls ntdll!RtlExitUserThread with its value.
//
// # Process structures
//
// TEB (gs_base), PEB, PEB_LDR_DATA with the three loader lists (load,
// memory and initialization order; the program is not in the last one),
// LDR_DATA_TABLE_ENTRY with FullDllName/BaseDllName UNICODE_STRINGs, and
// RTL_USER_PROCESS_PARAMETERS (CommandLine, ImagePathName, Environment as a
// UTF-16 block, current directory) use the x64 offsets of package
// guest/process, checked against mingw-w64's headers by a test there. The program's guest path is
// C:\rspstub\NAME.exe; system DLLs are C:\Windows\System32\NAME. Implicit
// TLS (.tls) gets a block per module in ThreadLocalStoragePointer.
//
// # Runtime
//
// One thread; critical sections, SRW locks and condition variables are
// no-ops. The heap is a bump allocator with exact-size free lists. printf
// formatting is done in Go from the guest's varargs or va_list (format in
// printf.go): msvcrt.dll prints three exponent digits, ucrtbase two. Guest
// output goes to Config.Stdout/Stderr; only the standard streams exist (no
// files). Library code never prints; it logs through Config.Logger. Files
// are read by internal/peimage (headers, sections, imports, exports,
// relocations); a malformed one is a load error (ErrNotPE, ErrNotX64,
// ErrCorrupt), never a panic.
package guest
