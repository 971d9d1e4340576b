package rsp

import "io"

// This file is the contract between the protocol engine and the backends.
// A backend implements Target; everything else is optional and discovered
// with a type assertion. qSupported and the packet dispatch table are both
// computed from the same assertions, so a packet is never advertised or
// accepted for a feature the target lacks.

// Target is the base every backend provides: registers, memory, and
// resuming until the next stop. Thread ids are positive; a single-threaded
// target uses thread 1. Methods other than Interrupt are called from one
// goroutine at a time (the session's); Interrupt may be called from any
// goroutine while Resume is running.
type Target interface {
	// Description is the register layout. It is fixed for the life of the
	// target; `g`, `p` and target.xml are all derived from it.
	Description() *Description

	// ReadRegisters fills dst (len == Description().Size()) with every
	// register of thread tid, little-endian, in description order.
	ReadRegisters(tid int, dst []byte) error
	// WriteRegisters is the inverse of ReadRegisters.
	WriteRegisters(tid int, src []byte) error
	// ReadRegister fills dst (len == that register's byte size).
	ReadRegister(tid int, regnum int, dst []byte) error
	// WriteRegister sets one register from src (len == its byte size).
	WriteRegister(tid int, regnum int, src []byte) error

	// ReadMemory reads guest memory at addr into p, like io.ReaderAt with
	// a uint64 offset, except that a short count with a nil error is
	// allowed and means "readable up to here". n == 0 with an error means
	// nothing at addr is readable.
	ReadMemory(addr uint64, p []byte) (n int, err error)
	// WriteMemory writes p at addr and returns how many bytes were written.
	WriteMemory(addr uint64, p []byte) (n int, err error)

	// Resume runs the target according to actions until it stops, and
	// returns why. Exactly one action has Thread == AllThreads (the
	// default for threads not named); others name a thread. On a target
	// with one thread (no ThreadLister, or it lists one) the server always
	// sends exactly one action, for AllThreads. On a multi-threaded
	// target, a request that names threads without a default (vCont;s:2,
	// or s after Hc2) has no AllThreads action: threads not named stay
	// stopped. Resume must
	// return promptly (within 100 ms) after Interrupt is called.
	Resume(actions []ResumeAction) (Stop, error)
	// Interrupt asks a running Resume to stop (Ctrl-C). It is safe to call
	// from any goroutine, and harmless when the target is not running.
	Interrupt()
	// LastStop reports the stop the target is currently in (the answer to
	// `?`); before the first Resume it is the initial stop.
	LastStop() Stop
}

// AllThreads in ResumeAction.Thread means "every thread not named by
// another action".
const AllThreads = -1

// ResumeAction is one action of a vCont (or c/s/C/S) request.
type ResumeAction struct {
	Thread int // a thread id, or AllThreads
	Step   bool
	Signal int // GDB signal number to deliver; 0 for none
	// RangeStart < RangeEnd asks for range stepping (vCont;r): keep
	// stepping while the PC stays in [RangeStart, RangeEnd). The server
	// implements it with repeated steps unless the target is a
	// RangeStepper.
	RangeStart, RangeEnd uint64
}

// StopKind says what kind of stop a Stop is.
type StopKind uint8

const (
	StopSignal        StopKind = iota // stopped with Signal (SIGTRAP after a step, SIGINT after Interrupt, SIGSEGV...)
	StopSWBreak                       // software breakpoint (Z0) hit; Signal is SIGTRAP
	StopHWBreak                       // hardware breakpoint (Z1) hit; Signal is SIGTRAP
	StopWatch                         // write watchpoint hit; Addr is the data address
	StopRWatch                        // read watchpoint hit; Addr is the data address
	StopAWatch                        // access watchpoint hit; Addr is the data address
	StopSyscallEntry                  // a caught system call is about to run; Syscall is its number
	StopSyscallReturn                 // a caught system call returned; Syscall is its number
	StopExited                        // the process exited with ExitCode (`W`)
	StopTerminated                    // the process was ended by Signal (`X`)
)

// GDB signal numbers (gdb/include/gdb/signals.def), which are what the
// protocol carries, whatever the host.
const (
	SIGHUP  = 1
	SIGINT  = 2
	SIGQUIT = 3
	SIGILL  = 4
	SIGTRAP = 5
	SIGABRT = 6
	SIGEMT  = 7
	SIGFPE  = 8
	SIGKILL = 9
	SIGBUS  = 10
	SIGSEGV = 11
	SIGSYS  = 12
	SIGPIPE = 13
	SIGALRM = 14
	SIGTERM = 15
)

// Stop describes why the target stopped.
type Stop struct {
	Kind     StopKind
	Signal   int    // GDB signal number (SIGTRAP for breakpoints and watchpoints)
	Thread   int    // the thread that stopped; 0 means the target's first thread
	Addr     uint64 // data address for watchpoints; fault address for SIGSEGV/SIGBUS when known
	ExitCode int    // for StopExited
	// Syscall is the system call number of StopSyscallEntry and
	// StopSyscallReturn.
	Syscall int
	// Library is set when the module list changed since the last stop;
	// the stop reply then carries `library:` and clients refetch the list.
	Library bool
	// Description is optional human text ("unimplemented API
	// KERNEL32.dll!GetFoo called from 0x140001234"). It is sent to LLDB as
	// `description:` and printed on the GDB console with an `O` packet.
	Description string
	// ReplayLog is "begin" or "end" when a reverse (or replayed) execution
	// stopped because it reached that end of the recorded history; the
	// reply carries `replaylog:begin;` and GDB says "No more
	// reverse-execution history".
	ReplayLog string
}

// Reverser is implemented by targets that execute backwards (a recorded
// execution replayed): `bs` (reverse-stepi) and `bc` (reverse-continue),
// advertised as ReverseStep+ and ReverseContinue+. ReverseStep undoes one
// instruction of thread tid; ReverseContinue goes back to the last
// breakpoint or watchpoint hit before the current position, or to the
// start of the history (Stop.ReplayLog "begin"). A watchpoint hit going
// backwards stops before the instruction that wrote, with the old value
// in memory, as GDB expects of a reverse watchpoint.
type Reverser interface {
	ReverseStep(tid int) (Stop, error)
	ReverseContinue() (Stop, error)
}

// BreakKind is the type field of Z/z packets.
type BreakKind uint8

const (
	BreakSoftware BreakKind = 0 // Z0
	BreakHardware BreakKind = 1 // Z1
	WatchWrite    BreakKind = 2 // Z2
	WatchRead     BreakKind = 3 // Z3
	WatchAccess   BreakKind = 4 // Z4
)

// Breakpointer is implemented by targets that support Z/z packets. Kinds
// that Supports reports false for are neither advertised nor accepted.
// Insert and Remove must be cheap: GDB reinserts every breakpoint before
// each resume and removes them after each stop.
type Breakpointer interface {
	SupportsBreakpoint(kind BreakKind) bool
	InsertBreakpoint(kind BreakKind, addr uint64, size int) error
	RemoveBreakpoint(kind BreakKind, addr uint64, size int) error
}

// RangeStepper is implemented by targets that step over an address range
// faster than the server's loop of single steps. It stops as soon as the
// PC leaves [start, end), or for any other stop reason.
type RangeStepper interface {
	RangeStep(tid int, start, end uint64) (Stop, error)
}

// ThreadInfo describes one thread.
type ThreadInfo struct {
	ID   int
	Name string // may be empty
	// Extra is free text for qThreadExtraInfo ("vCPU 0, kernel mode").
	Extra string
}

// ThreadLister is implemented by targets with more than one thread (or
// that want to name their thread). Without it the target has thread 1.
type ThreadLister interface {
	// Threads appends the live threads to dst and returns it.
	Threads(dst []ThreadInfo) []ThreadInfo
}

// MemoryRegion is one mapped range of guest memory.
type MemoryRegion struct {
	Start, Size uint64
	Read        bool
	Write       bool
	Exec        bool
	Name        string // optional: module or purpose ("demo.exe .text", "stack")
}

// MemoryMapper is implemented by targets that know their memory map. It
// enables qMemoryRegionInfo (which LLDB asks per address).
type MemoryMapper interface {
	// MemoryRegions appends the mapped regions, sorted by Start and not
	// overlapping, to dst and returns it.
	MemoryRegions(dst []MemoryRegion) []MemoryRegion
}

// FixedMemoryMapper is implemented by targets whose memory map never
// changes (firmware, a kernel image). Only they advertise
// qXfer:memory-map:read: GDB reads that map once per connection and then
// refuses every address outside it, which would hide whatever a running
// guest maps later (VirtualAlloc, a grown heap, a loaded DLL).
type FixedMemoryMapper interface {
	MemoryMapper
	MemoryMapIsFixed()
}

// Library is one loaded module.
type Library struct {
	Name string // the name the client shows and asks vFile for ("C:\\demo\\demo.exe" or "demo.exe")
	Base uint64 // image base
	// SegmentAddr is what the Windows library list reports: image base +
	// RVA of the first section (GDB relocates the file by it).
	SegmentAddr uint64
	// Program marks the process's own executable. LLDB's form of the
	// list leaves it out: LLDB makes any executable it loads from the
	// list the target's program, which would replace the file the user
	// gave with a copy from memory (and drop its breakpoints).
	Program bool
	// HostPath is a file on the stub's machine with the module's bytes
	// ("" when there is none, as for synthesized DLLs). LLDB is given it
	// as the library's name: it opens the file (with its DWARF) instead
	// of reading the image from memory.
	HostPath string
}

// LibraryLister enables qXfer:libraries:read (Windows form).
type LibraryLister interface {
	Libraries(dst []Library) []Library
}

// SVR4Library is one entry of a Linux dynamic linker's link_map chain,
// as an SVR4 library list reports it.
type SVR4Library struct {
	Name    string // l_name: the path the dynamic linker opened
	LM      uint64 // the link_map entry's own address
	Addr    uint64 // l_addr: the load bias
	Dynamic uint64 // l_ld: the module's PT_DYNAMIC in memory
}

// SVR4LibraryLister enables qXfer:libraries-svr4:read, which GDB's and
// LLDB's ELF loaders read instead of walking r_debug themselves (LLDB
// relocates a PIE's breakpoints from it).
type SVR4LibraryLister interface {
	// SVR4Libraries returns the link_map entry of the executable (0 when
	// the dynamic linker has not run yet) and the other entries in chain
	// order, appended to dst.
	SVR4Libraries(dst []SVR4Library) (main uint64, libs []SVR4Library, err error)
}

// Unwrapper is implemented by a target that wraps another (a layer that
// adds views of the debugged process over a backend). The server looks
// for each optional interface on the target first, then down its Unwrap
// chain (at most 8 deep): the wrapper's own methods win, and the wrapper
// need not forward the interfaces it does not change. A wrapper must
// forward the base Target methods itself.
type Unwrapper interface {
	Unwrap() Target
}

// Feature names an optional interface a FeatureGate may withhold.
type Feature string

const (
	FeatureLibraries       Feature = "qXfer:libraries"      // LibraryLister (the Windows form)
	FeatureLibrariesSVR4   Feature = "qXfer:libraries-svr4" // SVR4LibraryLister
	FeatureAuxv            Feature = "qXfer:auxv"           // AuxvReader
	FeatureExecFile        Feature = "qXfer:exec-file"      // ExecFiler
	FeatureFiles           Feature = "vFile"                // FileServer
	FeatureTIB             Feature = "qGetTIBAddr"          // TIBer
	FeatureCatchSyscalls   Feature = "QCatchSyscalls"       // SyscallCatcher
	FeatureMemoryAllocator Feature = "_M"                   // MemoryAllocator
	FeatureReverse         Feature = "ReverseStep"          // Reverser (ReverseStep+, ReverseContinue+)
)

// FeatureGate is implemented by targets (or wrappers, see Unwrapper)
// whose Go type implements an optional interface that the instance
// cannot serve: which views apply depends on the guest actually served
// (a Windows library list and TEBs for a Windows guest, auxv and the
// SVR4 list for a Linux program). NewServer asks once, every gate in the
// Unwrap chain; a feature any of them withholds is treated as missing,
// neither advertised nor dispatched.
type FeatureGate interface {
	Offers(f Feature) bool
}

// AuxvReader enables qXfer:auxv:read: the inferior's auxiliary vector
// (raw bytes), from which GDB finds a PIE's load address and the dynamic
// linker (AT_BASE) of a Linux program.
type AuxvReader interface {
	Auxv() ([]byte, error)
}

// ExecFiler enables qXfer:exec-file:read.
type ExecFiler interface {
	ExecFile(pid int) (string, error)
}

// File is an open file served through vFile.
type File interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// FileServer enables vFile:open/pread/fstat/close/setfs. The target
// decides what may be opened (its module images, which may exist only in
// guest memory); it must refuse every other path. Returned errors that
// wrap fs.ErrNotExist / fs.ErrPermission map to ENOENT / EACCES.
type FileServer interface {
	OpenFile(name string) (File, error)
}

// FileLoadAddresser enables LLDB's qFileLoadAddress.
type FileLoadAddresser interface {
	FileLoadAddress(name string) (uint64, error)
}

// TIBer enables qGetTIBAddr (the Windows TEB of a thread).
type TIBer interface {
	TIBAddress(tid int) (uint64, error)
}

// Monitor enables qRcmd. Output written to out is streamed to the client
// as `O` packets in chunks that fit the packet size; a returned error is
// printed as text and the command answers an error.
type Monitor interface {
	Monitor(cmd string, out io.Writer) error
}

// ThreadMonitor is implemented by multi-threaded targets whose monitor
// commands act on the thread the client selected (Hg): `thread 2` then
// `monitor bt` shows thread 2's stack. The server calls it instead of
// Monitor.
type ThreadMonitor interface {
	MonitorThread(tid int, cmd string, out io.Writer) error
}

// ProcessInfo is what qProcessInfo and qHostInfo report.
type ProcessInfo struct {
	PID    int
	Triple string // "x86_64-pc-windows-msvc"
	OSType string // "windows", "linux", "none"
	Vendor string // "pc"
}

// ProcessInfoer is implemented by targets that know what they run.
type ProcessInfoer interface {
	ProcessInfo() ProcessInfo
}

// Killer is implemented by targets that can be killed (k, vKill). After
// Kill the target reports StopTerminated or StopExited.
type Killer interface {
	Kill() error
}

// SyscallCatcher enables QCatchSyscalls (GDB's `catch syscall`): while
// catching, the target stops before each system call it is told about
// (StopSyscallEntry) and, on the next resume, after it
// (StopSyscallReturn).
type SyscallCatcher interface {
	// CatchSyscalls turns catching on or off; nums limits it to those
	// system call numbers (nil: all).
	CatchSyscalls(on bool, nums []int) error
}

// Restarter is implemented by targets that can start their program again
// from the beginning, in a fresh guest: extended-remote mode (`!`), then
// vRun or R, which GDB's `run` and `start` send. In extended mode k and
// vKill end the guest but not the session, and the stub keeps serving
// after the guest exits, as gdbserver --multi does.
type Restarter interface {
	// Restart replaces the guest with a new one running the same program,
	// with args as its arguments when args is not nil (vRun names them),
	// and returns its first stop. The client's breakpoints stay
	// inserted.
	Restart(args []string) (Stop, error)
}

// Detacher is told when a client detaches (D), so it can drop the
// client's breakpoints. The target stays stopped and keeps its state for
// the next client.
type Detacher interface {
	Detach() error
}

// Consoler is implemented by targets whose guest prints. The server calls
// SetConsole with a writer (nil to stop); while the target runs, what the
// guest writes there reaches the debugger's console as `O` packets.
type Consoler interface {
	SetConsole(w io.Writer)
}

// Perm is a set of memory permissions.
type Perm uint8

const (
	PermRead Perm = 1 << iota
	PermWrite
	PermExec
)

// MemoryAllocator enables LLDB's _M (allocate) and _m (free): its
// expression evaluator writes JIT-compiled code and data into the guest
// and runs them there. Without it LLDB can still evaluate what its IR
// interpreter handles, but no function call.
type MemoryAllocator interface {
	// AllocateMemory maps size bytes with perm and returns their address.
	AllocateMemory(size uint64, perm Perm) (uint64, error)
	// FreeMemory releases what AllocateMemory returned at addr.
	FreeMemory(addr uint64) error
}

// MemoryViewer is optionally implemented by targets whose memory can be
// read in place: ViewMemory returns the n bytes at addr as a slice of the
// target's own memory, valid while the session handles the current packet
// (the target is stopped), or nil when it cannot show all n that way. The
// `x` replies are escaped straight from it, with no copy; a nil falls back
// to ReadMemory.
type MemoryViewer interface {
	ViewMemory(addr uint64, n int) []byte
}

// RegisterHolder is implemented by targets whose registers cost a round
// trip to fetch (a proxy in front of another stub). A stop reply then
// carries the expedited registers (pc, sp, fp) only when HasRegisters
// says the target already holds this stop's registers of tid; otherwise
// it carries none, and the client asks (`g`, `p`) when it needs them,
// as it does with a stub that expedites nothing (QEMU).
type RegisterHolder interface {
	HasRegisters(tid int) bool
}
