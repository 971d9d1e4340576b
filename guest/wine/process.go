package wine

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/loaded"
	"github.com/rspstub/rspstub/internal/peimage"
)

// Machine is the emulator as the kernel sees it: the process layer's
// Machine and whole register contexts. *unicorn.Machine satisfies it.
type Machine interface {
	process.Machine
	ReadContext(c *arch.Context) error
	WriteContext(c *arch.Context) error
}

// Config describes the program to run and the world it sees.
type Config struct {
	Program string   // host path of the .exe
	Args    []string // arguments after the program name
	// Env is the guest's environment ("NAME=value"), added to the
	// Windows-like default block (DefaultEnv); a name given here
	// replaces the default.
	Env []string
	// Root is the host folder that is the guest's C:. Empty means a new
	// empty temporary folder, removed by Close.
	Root string
	// Cwd is the guest's working directory (a Windows path); empty means
	// C:\.
	Cwd string
	// WineDLLDir overrides where Wine's PE DLLs are looked for.
	WineDLLDir string
	// WineDebug is a WINEDEBUG-style channel list ("+file,+heap,warn+reg")
	// that turns on Wine's own tracing; its lines go to Logger at info
	// level. Empty leaves Wine's channels at err.
	WineDebug string
	// TraceSyscalls logs one line per system call (thread, name, decoded
	// arguments, status, caller) to Logger at info level.
	TraceSyscalls bool
	// UnimplementedReturnsError makes a system call the kernel does not
	// implement return STATUS_NOT_IMPLEMENTED instead of stopping.
	UnimplementedReturnsError bool
	// RealClock uses the host's wall clock for guest time; the default
	// is a virtual clock that makes runs repeatable.
	RealClock bool

	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// StdioKinds says what the host's standard input, output and error
	// are, so the guest's standard handles look the same: "pipe" (the
	// default), "file" (a regular file), "tty" (a terminal: the process
	// gets a console, see console.go), "char" (another character device)
	// or "nul" (/dev/null). The C runtimes buffer and detect end of
	// input by it.
	StdioKinds [3]string
	// ConsoleSize is the terminal's width and height in characters,
	// for a console (a "tty" standard handle); zero means 80x25.
	ConsoleSize [2]int
	Logger      *slog.Logger
	// Symbolize names a guest address for traces ("KERNELBASE!CreateFileW+0x2a");
	// nil uses the kernel's own module!export names.
	Symbolize func(pc uint64) string
}

// Module is a mapped image: the program, ntdll, and every DLL Wine's
// loader maps; the project's Module (Name is the base name, as the file is
// named: "kernel32.dll"; Path the guest's full path) with what only this
// userland knows.
type Module struct {
	loaded.Module // its HostPath: the file it was mapped from
	EntryPoint    uint64
}

// Process is a Windows process running Wine's PE DLLs: its address
// space, handles, threads and the kernel state behind them.
type Process struct {
	m    Machine
	cfg  Config
	log  *slog.Logger
	inst *Install

	// hook, catch and caught: SetSyscallHook, CatchSyscalls (hook.go).
	hook   func(*SyscallRecord)
	catch  map[string]bool
	caught *SyscallRecord

	vm      *addressSpace
	handles *handleTable
	fs      *sandbox
	reg     *registry
	clock   *clock

	threads []*Thread // creation order; exited threads are removed
	cur     *Thread   // the thread whose registers are in the machine
	nextTID uint32

	modules     []*Module // image views in mapping order
	modsChanged bool
	modGen      uint64 // counts image maps and unmaps
	ntdll       ntdllSyms
	exe         *Module
	exeFile     *peimage.File
	peb         uint64
	trampoline  uint64 // our unix-call stub
	tempRoot    bool

	exited    bool
	exitCode  uint32
	unhandled *Exception     // the exception that ended the process
	stats     map[string]int // unix calls and unknown numbers (the rest count in slots)

	sinceSwitch   int // system calls since the running thread got the machine
	pending       *pendingCall
	callRec       call         // the system call being served (see start)
	slots         [2][]sysSlot // system calls by number (see slot)
	mem           *process.Memory
	defaultKeyed  *keyedEvent
	std           [3]uint64 // standard handles
	stdStreams    [3]*stream
	con           *console             // the console, when a standard handle is a terminal (console.go)
	consoleHandle uint64               // ProcessParameters.ConsoleHandle
	nls           map[string][2]uint64 // mapped NLS files: address, size
	luid          uint64
}

// ntdllSyms are the ntdll entry points the kernel uses.
type ntdllSyms struct {
	base                      uint64
	ldrInitializeThunk        uint64
	rtlUserThreadStart        uint64
	kiUserExceptionDispatcher uint64
	kiUserApcDispatcher       uint64
	unixCallDispatcher        uint64 // the __wine_unix_call_dispatcher variable
	kiUserCallbackDispatcher  uint64
}

// Synthetic system-call numbers for what our stubs call.
const unixCallNumber = 0xF000

// Load maps the program, ntdll and the process structures, and sets the
// machine so that its next instruction is ntdll!LdrInitializeThunk in the
// main thread, as Wine's unix side starts a process.
func Load(m Machine, cfg Config) (p *Process, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("load %s: internal error: %v", cfg.Program, r)
		}
	}()
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if cfg.Stdin == nil {
		cfg.Stdin = strings.NewReader("")
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	inst, err := FindInstall(cfg.WineDLLDir)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(cfg.Program)
	if err != nil {
		return nil, fmt.Errorf("read program: %w", err)
	}
	exeFile, err := peimage.Parse(data)
	if err != nil {
		return nil, err
	}
	if exeFile.Machine != peimage.IMAGE_FILE_MACHINE_AMD64 {
		return nil, fmt.Errorf("machine %#x is not x86-64", exeFile.Machine)
	}
	if exeFile.IsDLL() {
		return nil, fmt.Errorf("is a DLL, not a program")
	}
	p = &Process{m: m, cfg: cfg, log: lg, inst: inst, exeFile: exeFile,
		vm: &addressSpace{m: m}, mem: process.NewMemory(m), handles: newHandleTable(), reg: newRegistry(),
		nextTID: firstTID, stats: map[string]int{}}
	p.clock = newClock(cfg.RealClock)
	root := cfg.Root
	if root == "" {
		root, err = os.MkdirTemp("", "rspstub-c-")
		if err != nil {
			return nil, fmt.Errorf("create the guest's C: folder: %w", err)
		}
		p.tempRoot = true
	}
	if p.fs, err = newSandbox(root, inst.DLLDir, cfg.Program); err != nil {
		p.Close()
		return nil, err
	}
	if err := p.boot(data); err != nil {
		p.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(cfg.Program), err)
	}
	return p, nil
}

// Close releases host resources (open files, a temporary C: folder).
func (p *Process) Close() error {
	var errs []error
	if p.handles != nil {
		for _, h := range p.handles.all() {
			p.handles.close(h)
		}
	}
	if p.tempRoot && p.fs != nil {
		errs = append(errs, os.RemoveAll(p.fs.root))
	}
	return errors.Join(errs...)
}

// boot builds the process as Wine's unix side does before the first
// instruction (dlls/ntdll/unix: start_main_thread, virtual_alloc_first_teb,
// init_teb, call_init_thunk).
func (p *Process) boot(exeData []byte) error {
	if err := p.mapUserSharedData(); err != nil {
		return err
	}
	ntdll, err := p.mapImageFile(p.inst.ntdll, p.inst.ntdllFS, filepath.Join(p.inst.DLLDir, "ntdll.dll"), `C:\windows\system32\ntdll.dll`)
	if err != nil {
		return fmt.Errorf("map ntdll: %w", err)
	}
	if err := p.resolveNtdll(ntdll.Base); err != nil {
		return err
	}
	exe, err := p.mapImageFile(p.exeFile, exeData, p.cfg.Program, p.fs.programPath)
	if err != nil {
		return fmt.Errorf("map program: %w", err)
	}
	p.exe = exe
	if err := p.makeTrampoline(); err != nil {
		return err
	}
	if err := p.makePEB(); err != nil {
		return err
	}
	if err := p.loadAPISet(); err != nil {
		return err
	}
	if err := p.makeStdHandles(); err != nil {
		return err
	}
	if err := p.makeParams(); err != nil {
		return err
	}
	t, err := p.newThread(exe.EntryPoint, p.peb, p.exeFile.SizeOfStackReserve, p.exeFile.SizeOfStackCommit)
	if err != nil {
		return err
	}
	p.cur = t
	t.state = threadRunning
	if err := p.m.WriteContext(&t.ctx); err != nil {
		return &vmError{"write context", err}
	}
	p.modsChanged = false
	return nil
}

func (p *Process) resolveNtdll(base uint64) error {
	get := func(name string) (uint64, error) {
		rva, err := p.inst.export(name)
		return base + uint64(rva), err
	}
	var errs []error
	for _, e := range []struct {
		name string
		dst  *uint64
	}{
		{"LdrInitializeThunk", &p.ntdll.ldrInitializeThunk},
		{"RtlUserThreadStart", &p.ntdll.rtlUserThreadStart},
		{"KiUserExceptionDispatcher", &p.ntdll.kiUserExceptionDispatcher},
		{"KiUserApcDispatcher", &p.ntdll.kiUserApcDispatcher},
		{"KiUserCallbackDispatcher", &p.ntdll.kiUserCallbackDispatcher},
		{"__wine_unix_call_dispatcher", &p.ntdll.unixCallDispatcher},
	} {
		v, err := get(e.name)
		errs = append(errs, err)
		*e.dst = v
	}
	p.ntdll.base = base
	return errors.Join(errs...)
}

// makeTrampoline writes the code our pointers into the guest lead to:
// the unix-call dispatcher (`mov r10,rcx; mov eax,0xF000; syscall; ret`),
// which turns __wine_unix_call into a system call the kernel serves.
func (p *Process) makeTrampoline() error {
	a, err := p.allocate(0, process.PageSize, process.PAGE_EXECUTE_READ, process.MEM_PRIVATE, false, "rspstub unix-call stub")
	if err != nil {
		return err
	}
	code := []byte{0x4c, 0x8b, 0xd1, 0xb8, 0x00, 0xf0, 0x00, 0x00, 0x0f, 0x05, 0xc3}
	if _, err := p.m.WriteMemory(a.base, code); err != nil {
		return &vmError{"write", err}
	}
	p.trampoline = a.base
	return p.mem.WriteU64(p.ntdll.unixCallDispatcher, a.base)
}

// allocate reserves and commits size bytes (a private allocation).
func (p *Process) allocate(hint, size uint64, prot, typ uint32, topDown bool, name string) (*allocation, error) {
	size = process.PageUp(size)
	base, ok := p.vm.findFree((size+allocGranule-1)&^(allocGranule-1), allocGranule, hint, topDown)
	if !ok {
		return nil, fmt.Errorf("no room for %d bytes (%s)", size, name)
	}
	a, err := p.vm.reserve(base, size, prot, typ, name)
	if err != nil {
		return nil, err
	}
	if err := p.vm.commit(a, base, size, prot); err != nil {
		return nil, err
	}
	return a, nil
}

// Modules returns the mapped images in mapping order (ntdll, the program,
// then DLLs as Wine's loader maps them).
func (p *Process) Modules() []Module {
	out := make([]Module, len(p.modules))
	for i, m := range p.modules {
		out[i] = *m
	}
	return out
}

// ModulesChanged reports (and clears) whether an image was mapped or
// unmapped since the last call.
func (p *Process) ModulesChanged() bool {
	c := p.modsChanged
	p.modsChanged = false
	return c
}

// ModuleGeneration counts image maps and unmaps since start.
func (p *Process) ModuleGeneration() uint64 { return p.modGen }

// Program is the program's module.
func (p *Process) Program() Module { return *p.exe }

// EntryPoint is the program's entry point.
func (p *Process) EntryPoint() uint64 { return p.exe.EntryPoint }

// PEB is the address of the process environment block.
func (p *Process) PEB() uint64 { return p.peb }

// Exited reports whether the process has ended, and its exit code.
func (p *Process) Exited() (bool, uint32) { return p.exited, p.exitCode }

// WineVersion is the version string of the Wine whose DLLs run.
func (p *Process) WineVersion() string { return p.inst.Version }

// WineDLLDir is the folder of the Wine PE DLLs that run.
func (p *Process) WineDLLDir() string { return p.inst.DLLDir }

// Root is the host folder that is the guest's C:.
func (p *Process) Root() string { return p.fs.root }

// ModuleImage returns the file a module was mapped from, by its guest
// path or base name: what a debugger fetches with vFile.
func (p *Process) ModuleImage(name string) ([]byte, error) {
	for _, m := range p.modules {
		if strings.EqualFold(m.Path, name) || strings.EqualFold(m.Name, name) ||
			strings.EqualFold(strings.ReplaceAll(m.Path, `\`, "/"), name) {
			return os.ReadFile(m.HostPath)
		}
	}
	return nil, fmt.Errorf("no module %q", name)
}

// RegionName names the allocation holding addr for a memory map.
func (p *Process) RegionName(addr uint64) string {
	if a := p.vm.find(addr); a != nil {
		return a.name
	}
	return ""
}

// SyscallCounts returns how many times each system call ran.
func (p *Process) SyscallCounts() map[string]int {
	out := make(map[string]int, len(p.stats))
	for k, v := range p.stats {
		out[k] = v
	}
	for _, table := range p.slots {
		for _, s := range table {
			if s.count > 0 {
				out[s.name] += s.count
			}
		}
	}
	return out
}
