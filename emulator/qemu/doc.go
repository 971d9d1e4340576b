// Package qemu is the QEMU backend: an rsp.Target that is itself an RSP
// client of QEMU's gdbstub. rspstub sits between the debugger and QEMU,
//
//	gdb / lldb ──RSP──▶ rsp.Server ─▶ qemu.Target ─▶ rsp.Client ──RSP──▶ QEMU gdbstub
//
// and serves what QEMU's own stub lacks, on top of QEMU's registers and
// memory. Both qemu-system-x86_64 (ModeSystem: vCPUs, control registers)
// and qemu-x86_64 (ModeUser: one Linux program) are supported; the mode
// is detected from qSupported (only qemu-user offers qXfer:auxv:read) or
// given by the caller that started QEMU.
//
// # Design
//
// Registers. The debugger sees rsp.AMD64, our own x86-64 description with
// GDB's numbering (plus the org.rspstub.x86.sys feature, cr0..efer and
// k_gs_base, in system mode only: in user mode they mean nothing). QEMU's
// description orders its 66 registers differently (segment bases and
// control registers between eflags' segments and the x87 block), so
// every register is mapped by name: `g` is one `g` to QEMU rearranged,
// `G` is QEMU's `g` patched and written back, `p`/`P` go to QEMU's
// number for that name. A register QEMU lacks reads as zero. A thread's
// registers are read after `Hg` to QEMU, sent only when the thread
// changes (QEMU selects the stopped thread itself at every stop). In
// system mode QEMU translates memory addresses with the selected vCPU's
// page tables, so memory follows the thread last used for registers, as
// it does with GDB's own Hg.
//
// Round trips (prefetch.go). Every request the debugger sends that QEMU
// must answer costs a hop more than talking to QEMU directly, so the
// target avoids QEMU round trips where the answer is known or can
// travel alongside another. A stop's registers are kept (one `g`) until
// the guest runs or a register is written. A stop reply carries the
// expedited registers (pc, sp, fp) only when they are already held (a
// continue's stop read them to tell a breakpoint; rsp.RegisterHolder);
// otherwise it goes out at once, and when the debugger read registers
// at the previous stop a `g` goes to QEMU at the same moment, so QEMU
// answers it while the debugger's own `g` is on its way. Memory read at
// a stop is kept in 1 KiB blocks until the guest runs (memcache.go):
// GDB's stepi reads the byte at pc four times and the function's start
// once, so only the block around pc costs QEMU anything, and after a
// step that block travels with the prefetched `g`. Only the pages of pc
// and sp are read ahead in system mode (elsewhere may be a device), any
// page in user mode while the program has one thread. qemu-system's
// gdbstub neither waits for acknowledgements nor minds requests queued
// behind one another, so in system mode memory reads keep two requests
// in flight and each `+` rides on the next request instead of waking
// QEMU on its own (rsp.Client.SetLazyAcks); qemu-user's stub reads
// each `+` before it goes on, so there every exchange is one at a time.
//
// Memory. QEMU fails a read as a whole when any byte is unmapped; the
// client narrows such a read down (halving) to the readable prefix, so
// `m`/`x` answer "readable up to here", which LLDB's unwinder and
// 0x200-byte reads need. Writes use `M` (QEMU has no `X`; the client
// falls back after the first empty answer).
//
// Breakpoints. Z0 and Z1 are forwarded (QEMU implements both as TCG
// breakpoints: guest memory is never patched, so reads show the original
// bytes). The target remembers them: QEMU reports every stop as a bare
// T05, and a SIGTRAP from a continue at an address holding one of our
// Z0 (Z1) breakpoints is reported as swbreak (hwbreak), which GDB needs
// to tell a breakpoint from a random trap without a PC adjustment. Steps
// are left as plain SIGTRAPs. Z2-Z4 are forwarded in system mode, where
// QEMU reports watch/rwatch/awatch with the address itself. qemu-user
// answers Z2-Z4 empty; there the target emulates watchpoints by
// single-stepping (every resume becomes a loop of steps while one is
// set): a write is a change of the watched bytes, as in GDB's software
// watchpoints, and a read is an explicit memory operand of the
// instruction just run (decoded with x86asm, effective address from the
// registers, fs/gs bases included) overlapping the range. Implicit
// accesses (push, pop, string instructions) are not seen as reads.
//
// Running. Resume forwards vCont; QEMU's answer becomes the stop, with
// the thread list refreshed (QEMU's qfThreadInfo answers one thread per
// packet; system-mode ids are cpu_index+1, user-mode ids are Linux
// TIDs; pP.T multiprocess ids are read too, though we never negotiate
// multiprocess). Range stepping (vCont;r), which QEMU lacks, is a local
// loop of single steps that also stops at our breakpoints. Every step
// loop is bounded (maxSoftSteps) and checks for an interrupt between
// steps.
//
// Interrupts. qemu-system stops on 0x03 (in fact on any byte that
// arrives while it runs). qemu-user does not read its gdbstub socket
// while the guest runs, so 0x03 does nothing there: the target sends
// SIGINT to the QEMU process instead (its PID comes from the caller, or
// from SO_PEERCRED on a unix socket), once per resume; QEMU reports it
// as the guest's SIGINT, and the debugger's next resume without a signal
// discards it. An interrupt that arrives before the resume is sent
// returns a SIGINT stop without running.
//
// Lifecycle. Connect (tcp:HOST:PORT or unix:PATH) first quiesces the
// stub: a running qemu-system takes the first byte it receives as "stop"
// and drops it, then sends a stop reply nobody asked for, which would
// pair every later request with the previous reply; so Connect sends
// 0x03 and qAttached and reads up to qAttached's answer before the
// client's negotiation starts. Detach (a debugger left) removes that
// debugger's breakpoints and watchpoints and keeps the guest stopped for
// the next one; Close detaches from QEMU, which then runs on. Kill sends
// `k`, on which QEMU exits. When the connection to QEMU is lost (QEMU
// exited or was killed) the running Resume reports StopTerminated with
// SIGKILL, QEMU's own W/X replies are passed on, and every later call
// fails with ErrGone; the server then ends once its debugger leaves.
//
// Launch starts QEMU with a private gdbstub: a unix socket in a fresh
// 0700 temporary folder (-gdb unix:PATH,server=on,wait=off -S for
// qemu-system, -g PATH for qemu-user), never a TCP port (-s and qemu-user
// -g PORT listen on every interface; Launch refuses -s, -gdb and -g in
// the arguments and drops QEMU_GDB from the environment). Process.Stop
// sends SIGTERM to qemu-system (a clean shutdown) and SIGKILL after a
// grace period, and SIGKILL at once to qemu-user, which ignores SIGTERM
// and SIGINT while it waits for a debugger. On Linux QEMU also gets
// Pdeathsig=SIGKILL, so it cannot outlive a crashed rspstub.
//
// # QEMU 7.2 quirks handled here
//
//   - `p`/`P` answer empty until the client has read target.xml (the
//     client always reads it while negotiating).
//   - No no-ack mode, no `X`, no `x`, no swbreak/hwbreak in stop replies,
//     no vCont;r: all supplied by rspstub for its own debugger.
//   - A read crossing into unmapped memory fails whole (E14).
//   - Continuing from an address with a QEMU breakpoint hits it again at
//     once, without executing the instruction: debuggers step over it
//     themselves (GDB and LLDB remove it and step).
//   - Each Z0/Z1 inserts one more copy of a breakpoint and z0 removes one:
//     a debugger inserting again (GDB after a library event) would leave
//     a copy behind, so a breakpoint already held is not sent again.
//   - qemu-user: a single step over `syscall` runs the next instruction
//     too (a breakpoint after it stops exactly there); a page QEMU has
//     translated code from refuses the gdbstub's writes until the guest
//     mprotects it again.
//   - qemu-user: no watchpoints (Z2-Z4 answer empty), no interrupt over
//     the socket, thread ids are host TIDs, qOffsets answers all zeros;
//     its qSupported adds qXfer:auxv:read+.
//   - qemu-system: any byte received while running stops the VM and is
//     dropped, followed by an unsolicited stop reply (see Connect).
//   - qemu-system stops an AP in whatever mode the firmware left it
//     (SeaBIOS: 32-bit protected mode, halted); every vCPU is a thread
//     from the start.
//   - QEMU's monitor output (qRcmd) has CRLF line ends; "monitor qemu"
//     turns them into LF.
//
// # Windows guests
//
// Module discovery reads guest memory only, with package guest/winproc
// (windows.go): the TEB from the debugger's vCPU (the thread of its last
// register read, else the stopped one): gs_base at CPL 3, k_gs_base (the
// user GS after swapgs) at CPL 0, each tried second, accepted only when
// TEB.Self points to itself; then PEB -> Ldr -> InLoadOrderModuleList,
// bounded, corrupt entries reported as problems. Without a loader list
// (no TEB yet, gs_base 0, an unmapped TEB) a backward scan from RIP finds
// the image of the code (up to 64 MiB, page by page; only done when the
// list is asked for, never at every stop). --module FILE@BASE files
// (Options.Modules) replace what discovery finds over their range and
// are the only host files served (vFile, qXfer:exec-file), and in system
// mode the only ones read for COFF symbols and DWARF
// (monitor.ModuleFiler). An ELF64 x86-64 --module (a kernel or firmware:
// its ELF header is not in guest memory) lies where its PT_LOAD pages
// were linked, or at BASE for an ET_DYN one; the monitor is told its
// format (monitor.Module.Format), so its .symtab, DWARF and CFI serve
// bt, and it stays out of the Windows library list.
//
// The result is cached per stop and thread (a resume bumps a generation
// counter). After a stop that is not a single step, the loader list is
// walked (no scan: a few reads) and a change against the list the
// debugger last fetched sets library: in the stop reply, so GDB and LLDB
// fetch qXfer:libraries again. Library names are the loader's Windows
// paths, or the host path of a --module file; the segment address is
// the image base plus its first section's RVA, read from the headers in
// guest memory. qGetTIBAddr answers the TEB or the reason there is none.
//
// The library list, vFile, qGetTIBAddr and the monitor are served by the
// layer above (package debuggee, which cmd/rspstub wraps around this
// target) from what this target reports as its Source (lock.go):
// registers by name from one `g`, memory through the debugger's vCPU,
// the module list, the TEB, the --module files. Monitor commands are
// package monitor's (bt, frame, args, modules, teb, peb, unwind-info...)
// plus this backend's qemu, threads, status and discovery (monitor.go),
// the last of which says where the module list came from and what was
// wrong. This package imports neither debuggee nor monitor.
//
// # Linux programs (qemu-user)
//
// usermods.go. Options.UserModules is the seam for ELF module
// discovery (given guest memory and the auxiliary vector, read once with
// qXfer:auxv:read); nil means LinuxModules, package guest/linuxproc (the
// r_debug/link_map walk), cached per stop as above. The debugger gets
// qXfer:auxv (QEMU's, passed through) and an x86-64 description with
// GDB's org.gnu.gdb.i386.linux feature (orig_rax, which reads as 0 and
// ignores writes): without that feature GDB's GNU/Linux ABI stops early,
// and GDB then has no shared-library support, no auxv and no PIE
// relocation. LLDB's expression evaluator gets guest memory (_M/_m,
// alloc.go: mmap run in the guest on one of its own syscall
// instructions, read-write-execute so that LLDB's JIT code can be
// written and rewritten). GDB's `catch syscall` works though QEMU 7.2 cannot
// (syscalls.go: a QEMU breakpoint on every syscall instruction of the
// modules' executable segments). The library list is the SVR4 one (qXfer:libraries-svr4,
// from the dynamic linker's link_map chain read by guest/linuxproc; the
// Windows form is withheld by the layer above, which offers each guest
// only its own views): LLDB relocates a
// PIE's breakpoints from it, GDB reads it instead of r_debug. Package
// monitor's commands (bt, frame, args, modules, ...)
// run over the program; module files (ModuleFile, for symbols,
// lines and CFI) are read from the host (qemu-user runs host programs:
// without -L the guest's paths are host paths; a relative AT_EXECFN is
// taken from QEMU's working directory), and a stripped library's symbols
// from its build-id debug file under /usr/lib/debug
// (DebugFile).
//
// # Reverse execution
//
// reverse.go. QEMU's record/replay is passed through: a qemu-system
// replaying a recording (-icount shift=N,rr=replay,rrfile=FILE) offers
// ReverseStep+ and ReverseContinue+ in its qSupported reply, and only then
// does the target offer rsp.Reverser (rsp.FeatureGate): bs and bc go to
// QEMU unchanged and its stop is taken as after a resume (caches dropped,
// the stopped vCPU selected, a bc stop at one of our breakpoints reported
// as swbreak/hwbreak, the loader list compared). QEMU 7.2 never sends
// replaylog: a stop whose instruction count (HMP `info replay`) is 0 gets
// replaylog:begin, and so does a bs that QEMU refuses (E14) at count 0.
// The monitor's reverse-stepi [N], reverse-continue and when use the same
// path; without record/replay they say QEMU was not started with it.
//
// Facts measured with Debian's QEMU 7.2.22 (TestQEMUReverse):
//
//   - Going back needs a VM snapshot: the recording and the replay take
//     the same `-drive file=IMAGE.qcow2,if=none` (an empty qcow2 image
//     from qemu-img) and rrsnapshot=init, which saves a snapshot at
//     instruction 0 and loads it to re-run forward (without rrsnapshot,
//     QEMU's replay-debugging.c tries to save one when a debugger
//     attaches: read there, not tried here).
//   - The recording's log is written once the guest runs (0 bytes if
//     QEMU is stopped within its first second here); SIGTERM ends a
//     recording cleanly, but a replaying QEMU ignores SIGTERM.
//   - A bs or bc sent right after QEMU's previous stop never gets an
//     answer: the replay stops making progress (also with gdb alone
//     against QEMU), and an interrupt (0x03) does not end it (Close then
//     gives up waiting for the lock and drops the connection). The target
//     waits reversePause (100 ms) before each: without it 23 of 27 test
//     runs hung, with 10 or 50 ms 14 of 14 passed on a quiet machine, but
//     QEMU hangs whenever the machine is busy (with four busy loops beside
//     it three of three attempts hung, even given 90 s; alone, three of
//     three passed), so scripts/test.sh runs TestQEMUReverse alone after
//     the other tests, and it tries a new recording after a hang (three
//     attempts). Once answered,
//     registers and memory are exactly those of the earlier position.
//
// # Not done yet
//
// The kernel's own modules (PsLoadedModuleList) of
// a Windows VM are not listed; only the current process's loader list
// is.
package qemu
