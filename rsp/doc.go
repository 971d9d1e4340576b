// Package rsp is rspstub's GDB Remote Serial Protocol engine: a server
// that exposes a Target to GDB and LLDB, and a client on the same codec
// for QEMU's gdbstub, gdbserver and scripted tests. It knows the protocol
// and nothing of the emulator, the guest OS or PE files.
//
// # Specifications
//
// The protocol is specified in the GDB manual, appendix "Remote Protocol"
// (sections Overview, Packets, Stop Reply Packets, General Query Packets,
// Host I/O Packets, Target Description Format, Library List Format for
// Windows Targets, Memory Map Format, Thread List Format). LLDB's
// extensions are in lldb/docs/resources/lldbgdbremote.md (qHostInfo,
// qProcessInfo, qRegisterInfo, QThreadSuffixSupported,
// QListThreadsInStopReply, jThreadsInfo, qFileLoadAddress,
// QEnableErrorStrings, the `x` packet without prefix).
//
// # Layers
//
//	codec.go     framing: $payload#cs, acks, '}' escapes, run-length input,
//	             0x03, PacketSize; one reused inbound buffer, replies built
//	             in place with a running checksum
//	scan.go      escaping and unescaping binary payloads: vector searches
//	             for the special bytes, a block at a time
//	swar.go      checksums a word at a time
//	server.go    Server, Listen, the per-connection session and its state
//	             machine, error-to-reply mapping (finish)
//	features.go  optional interfaces -> qSupported and the dispatch table
//	handlers.go  one handler per packet, named after it
//	resume.go    c/C/s/S/vCont, bs/bc, range stepping, conditions, stop replies
//	breaks.go    the client's code breakpoints and their conditions
//	agent.go     the agent-expression evaluator (breakpoint conditions)
//	xml.go       target.xml, library list, thread list, memory map
//	client.go    Client
//
// # Optional features are optional interfaces
//
// A backend implements Target (registers, memory, Resume, Interrupt,
// LastStop). Everything else (Breakpointer, ThreadLister, MemoryMapper,
// LibraryLister, FileServer, Monitor, ...) is found by type assertion in
// NewServer, once. The same result builds the qSupported reply and the
// dispatch table, so a packet is never advertised for a feature the
// target lacks, and a packet for a missing feature gets the empty reply
// ("unsupported"), like any unknown packet (vMustReplyEmpty).
//
// The memory map is the one deliberate split: MemoryMapper alone answers
// LLDB's per-address qMemoryRegionInfo, while qXfer:memory-map:read needs
// FixedMemoryMapper. GDB reads that map once per connection and then
// refuses every address outside it, so a guest that maps memory while it
// runs (VirtualAlloc) must not advertise it.
//
// One monitor command belongs to the server, not the target: qRcmd
// "stub-stats" (Stats: goroutines, heap, packets, sessions, uptime)
// answers on every backend, so soak tests can watch the real binary. Any
// other qRcmd goes to Monitor, or gets the empty reply without one.
//
// # Errors become replies in one place
//
// Handlers send their reply and return nil, or return an error without
// having sent anything. session.finish maps the error: errUnsupported to
// the empty reply, *replyError to `Exx` (with LLDB's `Exx;hex(text)`
// after QEnableErrorStrings), *fileError to vFile's `F-1,errno`,
// errEndSession to the end of the session; any other error from a target
// becomes E01. The hot handlers return preallocated errors, so even a bad
// request costs no allocation.
//
// # The session state machine
//
//	stopped --c/s/vCont--> running --target stops--> stopped
//	   |                      |
//	   +--D/k/EOF/error-------+--> closed
//
// Each connection has one goroutine that reads; Resume runs on a second
// goroutine so that the reader still sees 0x03 (Interrupt) and EOF. The
// running goroutine sends the stop reply and sets the state back to
// stopped before it does, so the next packet always finds the session
// stopped. A client that leaves mid-run interrupts the target; its stop
// stays (Target.LastStop) for the next client. A panic in a handler or in
// the target ends that session only; Serve keeps accepting. One client at
// a time: a second one is answered `E.rspstub: another debugger is already
// attached...` and disconnected, after waiting up to half a second for
// the old session to end (a client that hangs up and reconnects at once
// is served, not refused). D, EOF and errors call Detacher.Detach
// so a departed client's breakpoints do not linger; the guest keeps its
// state. k/vKill call Killer.Kill, and Serve then returns ErrKilled.
//
// # Target-side breakpoint conditions
//
// qSupported says ConditionalBreakpoints+ whenever software breakpoints
// are supported: the server, not the target, evaluates them. GDB then
// sends `break f if x == 2` as Z0,addr,kind;X<len>,<bytecode> (agent
// expressions, agent.go); the session keeps the bytecode with the
// breakpoint (reused buffers), and a hit whose conditions are all false
// is not reported: the target is resumed with the same actions (a range
// step that left its range on it ends as a plain step). A condition that
// fails to evaluate reports the hit, as gdbserver does. "monitor
// stub-stats" counts the swallowed hits (conditions-false).
//
// # Catching system calls
//
// A SyscallCatcher target (the QEMU backend for qemu-user) gets
// QCatchSyscalls+: GDB's `catch syscall` sends QCatchSyscalls:1[;nr...]
// before it resumes and QCatchSyscalls:0 at every stop (it removes its
// catchpoints with its breakpoints), so a target keeps what it set up
// until a resume finds catching off. Stops carry syscall_entry:NR or
// syscall_return:NR.
//
// # Extended mode
//
// A Restarter target accepts `!` (extended-remote), then vRun (GDB's
// `run` and `start`, with new arguments or none) and R, which replace the
// guest with a fresh one and answer its first stop. In extended mode k and
// vKill end the guest but not the session, and Serve keeps accepting
// clients after the guest exits or is killed (gdbserver --multi does the
// same): a regression loop can `run` again and again on one stub.
//
// # The packet path allocates nothing
//
// `m`, `x`, `g`, `p`, `P`, `M`, `X`, `Z`/`z` and their error replies are
// guarded by testing.AllocsPerRun == 0: the payload is decoded in the
// inbound buffer (hex in place), memory and registers go through
// per-session scratch buffers, and replies are escaped and checksummed
// as they are appended to the outbound buffer, which is also kept for
// retransmission after a '-'.
//
// # Client quirks this package meets
//
//   - GDB 13 accepts a description only if every type it names is
//     predefined or declared: i386_eflags and i386_mxcsr (flags) and
//     vec128 (a union of vectors) are declared in the feature that uses
//     them. An <osabi>Windows</osabi> makes Debian's GDB reject the whole
//     description and fall back to i386 ("g packet reply is too long"),
//     so <osabi> is emitted only when Description.OSABI is set.
//   - LLDB 14 needs every register in target.xml (it crashes on an
//     architecture-only description), reads them one by one with `p`,
//     honours the `;thread:N;` suffix after QThreadSuffixSupported, and
//     reads generic, dwarf_regnum, ehframe_regnum, encoding and format
//     attributes that GDB ignores. It probes `x0,0`: an "OK" means binary
//     reads without prefix. It reads aligned 0x200-byte chunks, so a read
//     that runs into unmapped memory returns the readable prefix (in both
//     `m` and `x`) instead of an error.
//   - LLDB's expression evaluator allocates guest memory with
//     `_M<size>,<perms>` (freed with `_m<addr>`; MemoryAllocator; never
//     advertised, LLDB just tries), writes its JIT code there, and puts a
//     called function's arguments in the registers whose generic role is
//     arg1, arg2...: a Windows target's description gives those roles to
//     rcx, rdx, r8, r9 (AMD64Options.Win64). It reuses one code buffer
//     for every expression, so a target that caches translated code must
//     drop it when memory is written.
//   - GDB 16 reads memory with `x` only after binary-upload+ and expects
//     a leading 'b'; the server uses that dialect only when the client
//     advertised binary-upload+ in qSupported.
//   - GDB re-inserts every breakpoint before each resume and removes them
//     after each stop: Z/z go straight to the target. The session also
//     notes code breakpoints (breaks.go, reused entries: no allocation),
//     because a range step (vCont;r) must stop on one inside the range,
//     as gdbserver does: GDB's `next`, `step` and `until` rely on it.
//   - swbreak/hwbreak stop reasons are sent only to clients that said
//     swbreak+/hwbreak+. A Stop.Description is sent to LLDB as
//     `description:` and to GDB, which has no such field, as `O` output
//     before the stop reply.
//   - qAttached answers 1, so quitting GDB detaches rather than kills.
//   - Thread ids: a client that says multiprocess+ (GDB and LLDB both do)
//     gets p<pid>.<tid> in stop replies, qC, qfThreadInfo and the thread
//     list, and `;process:<pid>` after W/X; p-ids are accepted in every
//     request. GDB 13 needs the pid: with bare ids, `record` then `next`
//     asserted in thread_architecture (it waits with no current thread
//     and took pid 0), and `info inferiors` showed no process.
//   - Library lists: the Windows form (qXfer:libraries) for PE targets,
//     the SVR4 form (qXfer:libraries-svr4, SVR4LibraryLister) for Linux
//     programs; LLDB relocates a PIE only from the latter. A target that
//     may be either kind chooses per instance with FeatureGate (package
//     debuggee offers each guest only its own views).
//   - Wrappers: a target that wraps another (package debuggee over a
//     backend) implements Unwrapper; each optional interface is looked
//     for on the wrapper, then down the chain, and every FeatureGate in
//     the chain is asked.
//   - GDB with the Windows OS ABI (x86_64-w64-mingw32-gdb) fetches the
//     library list, asks qGetTIBAddr, and reads each module with
//     vFile:open/fstat/pread after turning "C:\dir\x.dll" into
//     "C:/dir/x.dll"; when the target does not know the slashed name the
//     server retries it with backslashes. Debian's plain gdb has no
//     Windows OS ABI and asks for none of these.
//   - QEMU (as a server, for the Client): no no-ack mode, no `X` (the
//     client falls back to `M` after an empty reply), no `x`, no
//     swbreak/hwbreak, errors for a whole read that crosses into unmapped
//     memory (the client narrows the read to find the readable prefix),
//     a target.xml made of xi:includes, registers in its own order (the
//     client looks them up by name), and empty `p` answers before
//     target.xml was read (the client reads it first, and falls back to
//     `g` on an empty `p`).
//     qemu-system's stub also never waits for the `+` of a reply and takes
//     requests queued behind one another; Client.SetLazyAcks uses that
//     (two reads in flight, each `+` sent with the next packet).
//     qemu-user's stub reads the `+` before it goes on and would take a
//     queued request for a bad acknowledgement: one exchange at a time.
//   - A proxy target pays a round trip for registers its own stub did
//     not expedite: a RegisterHolder tells the server whether a stop's
//     registers are at hand, and a stop reply carries pc/sp/fp only then
//     (clients ask with `g` or `p` otherwise, as they do with QEMU).
//
// # Deliberately unsupported
//
//   - Non-stop mode, vAttach, tracepoints
//     (qT*), breakpoint commands (";cmds:" is ignored; BreakpointCommands
//     is not advertised), fork/exec events, vFile writes (the file
//     service is read-only and restricted to what the target's
//     FileServer opens), memory tagging. Reverse execution is a
//     Reverser's (bs, bc, `replaylog:begin` in the stop reply when the
//     history's start is reached; bc passes breakpoint hits whose
//     condition is false, as c does); record-control packets (QTFP...,
//     "target record" state) are not answered: the recording is the
//     backend's business (rspstub serve --record).
//   - `}` in text packets: inbound escapes are undone for every packet,
//     which is right for binary payloads and harmless for the text
//     packets GDB and LLDB send (they never contain '}').
//
// # Using it
//
//	l, err := rsp.Listen("127.0.0.1:1234", logger) // or "unix:/tmp/stub.sock"
//	srv := rsp.NewServer(target, rsp.WithLogger(logger))
//	err = srv.Serve(l) // returns ErrKilled after k, ErrServerClosed after Close
//
//	c, err := rsp.Dial("127.0.0.1:1234")
//	rip, err := c.ReadRegisterUint("rip")
//	stop, err := c.Continue() // c.Interrupt() from another goroutine
package rsp
