package debuggee

import (
	"io"

	"github.com/rspstub/rspstub/guest/minidump"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/loaded"
	"github.com/rspstub/rspstub/rsp"
)

// Source is what a backend reports about the debugged process. Thread
// ids are the backend's (rsp) thread ids; 0 means the thread the backend
// considers current (the one that stopped, or the debugger's).
type Source interface {
	// ReadMemory works like io.ReaderAt with a 64-bit address: a short
	// count means "readable up to here". Code bytes are the original
	// ones (no breakpoint patches).
	ReadMemory(addr uint64, p []byte) (int, error)
	// Registers returns thread tid's registers.
	Registers(tid int) (arch.Registers, error)
	// Modules lists the loaded images, the program first. A module's
	// FirstSectionRVA may be 0: the layer then reads it from the image
	// headers in memory when the Windows library list needs it.
	Modules() []loaded.Module
	// TEB returns the address of thread tid's Windows TEB.
	TEB(tid int) (uint64, error)
	// ModuleFile returns the bytes of a module's file (as on disk), for
	// symbols, line tables and CFI. They are never sent to the debugger,
	// so a backend may read them from the host (a qemu-user program's
	// libraries).
	ModuleFile(m loaded.Module) ([]byte, error)
	// GuestOS names the system whose process views apply: "windows" (a
	// PE loader list, TEBs) or "linux" (ELF, auxv, a link map).
	GuestOS() string
}

// Backend is a backend target that is also a Source.
type Backend interface {
	rsp.Target
	Source
}

// The optional parts of a Source, found by type assertion.

// ImageServer is implemented by sources that let the debugger read
// module files (vFile, qXfer:exec-file).
type ImageServer interface {
	// ServesImages reports, once, whether this instance serves any: vFile
	// and qXfer:exec-file are advertised only then.
	ServesImages() bool
	// OpenImage returns the file of the module the debugger names (as
	// the library list names it, or its base name). It must refuse
	// every other name.
	OpenImage(name string) ([]byte, error)
}

// ThreadChecker is implemented by sources whose monitor commands follow
// the thread the client selected; CheckThread reports whether tid is a
// live thread.
type ThreadChecker interface {
	CheckThread(tid int) error
}

// ThreadMemory is implemented by sources where memory depends on the
// thread (a vCPU's page tables): the monitor reads through the thread it
// inspects.
type ThreadMemory interface {
	ReadThreadMemory(tid int, addr uint64, p []byte) (int, error)
}

// Emulator is implemented by sources that hold the whole process (an
// emulator, not a proxy): they know their memory map, can keep a shadow
// call stack (monitor memmap, verify-unwind), set catch points (monitor
// catch) and write minidumps (monitor minidump).
type Emulator interface {
	Regions() []arch.Region
	// ShadowStack returns the calls outermost first; on is false when
	// the shadow stack is off.
	ShadowStack() (frames []arch.ShadowFrame, on bool)
	// AddCatch adds a catch point and describes it.
	AddCatch(kind, name string) (string, error)
	// CatchList describes the catch points, one line each.
	CatchList() []string
	// DeleteCatch removes catch point id, or all of them for 0.
	DeleteCatch(id int) error
	WriteMinidump(path string, full bool) (minidump.Summary, error)
}

// DebugFiler is implemented by sources that find an ELF module's
// separate debug file from its GNU build ID.
type DebugFiler interface {
	DebugFile(m loaded.Module, buildID []byte) ([]byte, error)
}

// Commander is implemented by sources with monitor commands of their own.
type Commander interface {
	// MonitorCommand runs cmd if it is one of the source's commands
	// (handled true); otherwise the monitor's command set runs it.
	// "help" is never passed.
	MonitorCommand(cmd string, out io.Writer) (handled bool, err error)
	// MonitorHelp is printed after the monitor's help.
	MonitorHelp() string
}

// LibraryNoter is implemented by sources that report library changes in
// stop replies: they are told the modules the debugger was last sent.
type LibraryNoter interface {
	LibrariesListed(mods []loaded.Module)
}

// Generationer is implemented by sources whose guest can be replaced (a
// restart): a new generation gets a fresh monitor (its symbol caches
// belong to the old guest).
type Generationer interface {
	Generation() uint64
}

// Symbolizer is implemented by sources that use symbols themselves
// (names in system-call and API traces, catch points on a function by
// name): they are given the monitor's lookups, which load its symbol
// tables on first use.
type Symbolizer interface {
	SetSymbols(resolve func(name string) (uint64, error), name func(pc uint64) string)
}

// Recorder is implemented by sources that record the execution (time
// travel: rspstub serve --record): the monitor's when, snapshot and
// reverse commands, for LLDB and scripts. Only Recording is asked when
// it reports false.
type Recorder interface {
	Recording() bool
	// Position is the number of instructions executed since the start.
	Position() uint64
	SaveSnapshot(name string) (string, error)
	RestoreSnapshot(name string) (rsp.Stop, error)
	DeleteSnapshot(name string) error
	// SnapshotPositions lists the snapshots in order: names and positions.
	SnapshotPositions() (names []string, positions []uint64)
	ReverseStepN(n uint64) (rsp.Stop, error)
	ContinueBack() (rsp.Stop, error)
	// DescribeStop is the one line the monitor prints for a stop.
	DescribeStop(st rsp.Stop) string
}
