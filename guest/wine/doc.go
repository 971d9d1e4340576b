// Package wine is the wine userland: Wine 8's real PE system DLLs (ntdll,
// kernel32, kernelbase, msvcrt, ucrtbase, user32... from Debian's libwine)
// running in the emulator, with only the NT system-call layer — what a
// Windows kernel and Wine's unix side provide — written in Go. Programs
// get Wine's whole user-mode API, real system-DLL frames with real .pdata
// and DWARF, real threads, and exception dispatch by the real PE code.
//
// # The boundary
//
// Wine 8's PE ntdll calls the kernel through 249 thunks of one shape
//
//	mov r10, rcx ; mov eax, N ; test byte [0x7ffe0308], 1 ; jne ... ; syscall ; ret
//
// and win32u through ~1,100 more (numbers from 0x1000). With
// KUSER_SHARED_DATA.SystemCall (0x7ffe0308) zero, every thunk executes
// `syscall`. Numbers differ between Wine
// builds, so none is hard-coded: FindInstall reads them from the thunks of
// ntdll.dll and win32u.dll at start and refuses a Wine whose major version
// is not 8 (read from the unix ntdll.so's build string), since the
// start-up contract and the private interfaces below changed in Wine 9.
//
// The process layer below is package guest/process, shared with the
// synthesized userland (package guest): the Machine, guest memory access
// and its MemoryError, the TEB/PEB/RTL_USER_PROCESS_PARAMETERS offsets,
// the user address-space limits, the sorted list of allocations and the
// command-line quoting. What an allocation holds (Windows'
// reserve-and-commit runs, vm.go), the threads and the handle table stay
// here: the synthesized userland's are simpler models of its own.
//
// A system call is dispatched by name through syscallTable (table.go):
// one line per call, name, argument count and handler, with the handlers
// grouped by subsystem (sys_vm.go, sys_section.go, sys_file.go,
// sys_sync.go, sys_thread.go, sys_registry.go, sys_token.go,
// sys_system.go, sys_object.go). Arguments are R10, RDX, R8, R9, then the
// caller's stack from RSP+0x28; ULONG arguments are masked to 32 bits
// (their upper halves are garbage). Every guest pointer is read and
// written through the call's sticky error: a bad pointer makes the call
// fail with STATUS_ACCESS_VIOLATION, as Windows' probes do. A call the
// table lacks stops the guest naming itself and its caller
// (EventUnimplemented; resuming makes it fail with
// STATUS_NOT_IMPLEMENTED), or fails at once with
// Config.UnimplementedReturnsError. win32u calls (NtUser*, NtGdi*) that
// the table lacks get 0: there is no window system, and console programs
// that link user32 make a few in passing.
//
// Two paths serve a call. FastSyscall runs inside the emulator's run,
// called from its syscall hook, for the calls in fastSyscalls: those
// that neither map, unmap nor protect memory nor change what runs next.
// When the call turns out to block, end the thread, switch threads or
// need a report, it is left pending and the run stops; Syscall (called
// at a stop) finishes it or serves a call the fast path does not take.
// Both read the same registers, run the same handler and leave the same
// state, so the guest cannot tell which path served it.
//
// # Process start
//
// Load builds what Wine's unix side builds before the first PE
// instruction (dlls/ntdll/unix/loader.c start_main_thread,
// virtual.c virtual_alloc_first_teb and init_teb, signal_x86_64.c
// call_init_thunk):
//
//	0x7ffe0000        KUSER_SHARED_DATA (read-only; time fields, version, SystemCall = 0)
//	0x170000000       ntdll.dll at its preferred base
//	image base        the program (relocated if its base is taken)
//	PEB block         64 KiB: the PEB, and at PEB+0x2000 Wine's debug-channel table
//	TEB blocks        64 KiB each, top-down: TEB, the 32-bit TEB at +0x2000, debug state after it
//	stacks, heaps...  bottom-up from 0x10000, 64 KiB granular
//
// The PEB holds the program's base, the OS version (6.1.7601, as a fresh
// Wine 8 prefix reports), the subsystem and PEB.ApiSetMap (apisetschema.dll's
// .apiset section mapped flat, for api-ms-win-* imports). Normalized
// RTL_USER_PROCESS_PARAMETERS live in their own allocation (ntdll copies
// and frees them). The TEB gets what init_teb sets: ExceptionList = -1,
// StaticUnicodeString, the activation-context stack, ClientId, stack
// bounds. The thread starts at LdrInitializeThunk(&context) with a CONTEXT
// for RtlUserThreadStart(entry, PEB) below the top of its stack; ntdll
// does the rest itself — loader lists, heap, TLS, kernel32 and the
// program's imports through NtOpenFile/NtCreateSection/NtMapViewOfSection
// — and ends with NtContinue into RtlUserThreadStart. New threads start
// the same way.
//
// Wine-private interfaces, all small: NtQueryVirtualMemory class 1000
// (MemoryWineUnixFuncs) gives ntdll its unix-library handle;
// __wine_unix_call_dispatcher points at a stub that turns unix calls into
// a system call (wineUnixCall: ntdll's three unix functions); the
// "Wine builtin DLL" marker is reported in SectionImageInformation;
// NtQuerySystemInformation class 1000 gives the version; __wine_dbg_write
// (0xe4) is Wine's debug output, logged. --wine-debug fills the channel
// table at PEB+0x2000 (16-byte entries {flags, name[15]}, sorted, ended
// by the default), which turns Wine's own tracing on: free tracing for
// users.
//
// # Memory
//
// vm.go keeps Windows' model: allocations (64 KiB aligned reservations)
// made of runs of reserved or committed pages, each with its protection;
// only committed pages are mapped in the emulator, with the permissions
// their protection gives (PAGE_GUARD and PAGE_NOACCESS map with none), so
// NtQueryVirtualMemory answers what Windows would. A 1 GiB reservation is
// one run, not 262,144 page entries. Commits are bounded (8 GiB in all,
// STATUS_COMMITMENT_LIMIT). Image sections are mapped as Windows' memory
// manager maps them (image.go): headers read-only, each section with its
// characteristics' protection (writable ones copy-on-write), shared pages
// with the union, base relocations applied when the preferred base is
// taken (STATUS_IMAGE_NOT_AT_BASE). Every image view is a Module: the
// library list, vFile and the monitor see DLLs as Wine's loader maps and
// unmaps them. Kernel writes go into pages while they are writable and
// protect them afterwards: libunicorn re-protects a region around every
// write into read-only memory, which costs ~200 µs.
//
// # Files
//
// sandbox.go resolves NT paths (\??\C:\...) on the host, component by
// component and case-insensitively, inside three places only: the root
// (C:, --root, default a new temporary folder), Wine's DLL folder shown
// read-only at C:\windows\system32, and the program's own folder shown
// read-only at C:\rspstub when it lies outside the root. A symbolic link
// anywhere is refused, ".." is refused (Wine's PE code never sends it),
// other drives, UNC and device paths do not exist; files are opened with
// O_NOFOLLOW. The folders of a Windows install (C:\windows, C:\users\user
// \AppData\Local\Temp...) exist for the guest without existing on the
// host until it writes inside one. The standard handles are pipe-like
// streams to the stub's stdin, stdout and stderr, as when a program runs
// under wine with its output redirected: GetFileType says FILE_TYPE_PIPE,
// console functions fail, and the C runtimes fall back to WriteFile.
//
// # Threads and time
//
// thread.go schedules threads in Go: the running thread goes on until it
// blocks, sleeps, yields, or its time slice runs out (the integrator arms
// a block-count hook in the emulator while several threads live, and
// calls Yield); the next thread in creation order that can run gets the
// machine, and a switch moves a whole arch.Context each way. Waits are
// re-checked at every scheduling decision (events, mutants, semaphores,
// keyed events, thread ends, NtWaitForAlertByThreadId for Wine's SRW locks
// and condition variables). When every thread waits, the clock jumps to
// the earliest timeout; when none has one, the process is deadlocked and
// the debugger is told. The clock (clock.go) is virtual by default — it
// starts at 2026-01-01, moves a microsecond per reading and a millisecond
// per time slice, jumps over sleeps — so that the same program with the
// same inputs executes the same instructions every run; RealClock follows
// the host. Handles are the lowest free multiple of 4, process and thread
// ids are fixed (0x20, 0x24...), the user and computer names are fixed.
//
// # Exceptions
//
// except.go dispatches hardware exceptions as Windows and Wine's
// setup_raise_exception do: CONTEXT, CONTEXT_EX and EXCEPTION_RECORD are
// written below the faulting thread's stack pointer and the thread
// resumes in KiUserExceptionDispatcher; the PE ntdll walks vectored
// handlers and SEH frames and ends with NtContinue, or, when nothing
// handles it, calls NtRaiseException for the second chance, which ends
// the process with the exception code. The integrator decides when: with
// a debugger attached a fault stops first-chance, and a resume with the
// signal delivers it.
//
// # What is deliberately missing
//
// One process: NtCreateUserProcess fails (no child programs, no winedbg
// on a crash). No window system, no sockets (ws2_32's unix half), no
// asynchronous I/O or APC delivery, no console device (\Device\ConDrv).
package wine
