package qemu

import (
	"io"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/loaded"
	"github.com/rspstub/rspstub/rsp"
)

// The exported methods take t.mu: the server calls them from one
// goroutine at a time, but Close may come from another (a signal, the
// end of the program). Interrupt takes no lock: it must reach a running
// Resume.

var (
	_ rsp.Target        = (*Target)(nil)
	_ rsp.Breakpointer  = (*Target)(nil)
	_ rsp.RangeStepper  = (*Target)(nil)
	_ rsp.ThreadLister  = (*Target)(nil)
	_ rsp.ProcessInfoer = (*Target)(nil)
	_ rsp.Killer        = (*Target)(nil)
	_ rsp.Detacher      = (*Target)(nil)

	_ rsp.SVR4LibraryLister = (*Target)(nil)
	_ rsp.FeatureGate       = (*Target)(nil)
	_ rsp.SyscallCatcher    = (*Target)(nil)
	_ rsp.MemoryAllocator   = (*Target)(nil)
	_ rsp.RegisterHolder    = (*Target)(nil)
)

// HasRegisters implements rsp.RegisterHolder: this stop's registers of
// tid are in the cache (a continue's stop read the pc to tell a
// breakpoint; a step's did not). It does not wait for a prefetching
// `g`: the stop reply goes out without registers meanwhile.
func (t *Target) HasRegisters(tid int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tid <= 0 {
		tid = t.last.Thread
	}
	return t.cacheValid(tid)
}

// LastStop implements rsp.Target.
func (t *Target) LastStop() rsp.Stop {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastStop()
}

// ReadRegisters implements rsp.Target.
func (t *Target) ReadRegisters(tid int, dst []byte) error {
	t.lock()
	defer t.mu.Unlock()
	t.regsRead = true
	t.noteThread(tid)
	return t.readRegisters(tid, dst)
}

// WriteRegisters implements rsp.Target.
func (t *Target) WriteRegisters(tid int, src []byte) error {
	t.lock()
	defer t.mu.Unlock()
	return t.writeRegisters(tid, src)
}

// ReadRegister implements rsp.Target.
func (t *Target) ReadRegister(tid int, regnum int, dst []byte) error {
	t.lock()
	defer t.mu.Unlock()
	t.regsRead = true
	t.noteThread(tid)
	return t.readRegister(tid, regnum, dst)
}

// WriteRegister implements rsp.Target.
func (t *Target) WriteRegister(tid int, regnum int, src []byte) error {
	t.lock()
	defer t.mu.Unlock()
	return t.writeRegister(tid, regnum, src)
}

// ReadMemory implements rsp.Target.
func (t *Target) ReadMemory(addr uint64, p []byte) (int, error) {
	t.lock()
	defer t.mu.Unlock()
	return t.readMemory(addr, p)
}

// WriteMemory implements rsp.Target.
func (t *Target) WriteMemory(addr uint64, p []byte) (int, error) {
	t.lock()
	defer t.mu.Unlock()
	return t.writeMemory(addr, p)
}

// InsertBreakpoint implements rsp.Breakpointer.
func (t *Target) InsertBreakpoint(kind rsp.BreakKind, addr uint64, size int) error {
	t.lock()
	defer t.mu.Unlock()
	return t.insertBreakpoint(kind, addr, size)
}

// RemoveBreakpoint implements rsp.Breakpointer.
func (t *Target) RemoveBreakpoint(kind rsp.BreakKind, addr uint64, size int) error {
	t.lock()
	defer t.mu.Unlock()
	return t.removeBreakpoint(kind, addr, size)
}

// Resume implements rsp.Target.
func (t *Target) Resume(actions []rsp.ResumeAction) (rsp.Stop, error) {
	t.lock()
	defer t.mu.Unlock()
	want := t.takeRegsRead()
	st, err := t.resume(actions)
	if err == nil {
		t.noteLibraries(&st, actions)
		t.prefetch(want, st)
	}
	return st, err
}

// RangeStep implements rsp.RangeStepper.
func (t *Target) RangeStep(tid int, start, end uint64) (rsp.Stop, error) {
	t.lock()
	defer t.mu.Unlock()
	want := t.takeRegsRead()
	st, err := t.rangeStep(tid, start, end)
	if err == nil {
		t.prefetch(want, st)
	}
	return st, err
}

// Threads implements rsp.ThreadLister.
func (t *Target) Threads(dst []rsp.ThreadInfo) []rsp.ThreadInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.threadInfos(dst)
}

// ProcessInfo implements rsp.ProcessInfoer.
func (t *Target) ProcessInfo() rsp.ProcessInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.processInfo()
}

// Kill implements rsp.Killer.
func (t *Target) Kill() error {
	t.lock()
	defer t.mu.Unlock()
	return t.kill()
}

// Detach implements rsp.Detacher.
func (t *Target) Detach() error {
	t.lock()
	defer t.mu.Unlock()
	return t.detach()
}

// noteThread remembers the debugger's register thread (its Hg), which
// monitor commands inspect.
func (t *Target) noteThread(tid int) {
	if tid > 0 {
		t.hg = tid
	}
}

// The process as package debuggee sees it (its Source); the layer above
// serves the library list, vFile, TEBs and the monitor from these.

// Registers returns thread tid's registers (0: the debugger's thread).
func (t *Target) Registers(tid int) (arch.Registers, error) {
	t.lock()
	defer t.mu.Unlock()
	return t.registersOf(tid)
}

// ReadThreadMemory reads memory through thread tid's vCPU (0: the
// debugger's thread): a VM's threads may see different page tables.
func (t *Target) ReadThreadMemory(tid int, addr uint64, p []byte) (int, error) {
	t.lock()
	defer t.mu.Unlock()
	return t.readThreadMemory(tid, addr, p)
}

// Modules lists the loaded images, the program first.
func (t *Target) Modules() []loaded.Module {
	t.lock()
	defer t.mu.Unlock()
	return t.modules()
}

// TEB returns thread tid's Windows TEB (0: the debugger's thread).
func (t *Target) TEB(tid int) (uint64, error) {
	t.lock()
	defer t.mu.Unlock()
	return t.tebOf(tid)
}

// ModuleFile returns a module's file, for symbols.
func (t *Target) ModuleFile(m loaded.Module) ([]byte, error) {
	t.lock()
	defer t.mu.Unlock()
	return t.moduleFile(m)
}

// GuestOS is "linux" for a qemu-user program; a VM is taken for a
// Windows one (its modules are found from the TEB and the PEB).
func (t *Target) GuestOS() string {
	if t.mode == ModeUser {
		return "linux"
	}
	return "windows"
}

// ServesImages: the --module files are served to the debugger, except
// in user mode, where the program and its libraries are the debugger
// host's own files: GDB then reads them, and their build-id debug files,
// itself.
func (t *Target) ServesImages() bool { return t.mode != ModeUser && len(t.userMods) > 0 }

// OpenImage returns a --module file by its host path or base name.
func (t *Target) OpenImage(name string) ([]byte, error) {
	t.lock()
	defer t.mu.Unlock()
	return t.openImage(name)
}

// LibrariesListed remembers the modules the debugger was last sent.
func (t *Target) LibrariesListed(mods []loaded.Module) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.librariesListed(mods)
}

// MonitorCommand runs the QEMU backend's own monitor commands.
func (t *Target) MonitorCommand(cmd string, out io.Writer) (bool, error) {
	t.lock()
	defer t.mu.Unlock()
	return t.monitorCommand(cmd, out)
}

// MonitorHelp describes the QEMU backend's own monitor commands.
func (t *Target) MonitorHelp() string { return monitorHelp }
