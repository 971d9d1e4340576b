package qemu

import (
	"io"

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
	_ rsp.Monitor       = (*Target)(nil)
	_ rsp.ProcessInfoer = (*Target)(nil)
	_ rsp.Killer        = (*Target)(nil)
	_ rsp.Detacher      = (*Target)(nil)

	_ rsp.LibraryLister     = (*Target)(nil)
	_ rsp.TIBer             = (*Target)(nil)
	_ rsp.ExecFiler         = (*Target)(nil)
	_ rsp.FileServer        = (*Target)(nil)
	_ rsp.FileLoadAddresser = (*Target)(nil)
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

// Monitor implements rsp.Monitor.
func (t *Target) Monitor(cmd string, out io.Writer) error {
	t.lock()
	defer t.mu.Unlock()
	return t.monitor(cmd, out)
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

// Libraries implements rsp.LibraryLister.
func (t *Target) Libraries(dst []rsp.Library) []rsp.Library {
	t.lock()
	defer t.mu.Unlock()
	return t.libraries(dst)
}

// TIBAddress implements rsp.TIBer.
func (t *Target) TIBAddress(tid int) (uint64, error) {
	t.lock()
	defer t.mu.Unlock()
	return t.tibAddress(tid)
}

// ExecFile implements rsp.ExecFiler.
func (t *Target) ExecFile(pid int) (string, error) {
	t.lock()
	defer t.mu.Unlock()
	return t.execFile(pid)
}

// OpenFile implements rsp.FileServer.
func (t *Target) OpenFile(name string) (rsp.File, error) {
	t.lock()
	defer t.mu.Unlock()
	return t.openFile(name)
}

// FileLoadAddress implements rsp.FileLoadAddresser.
func (t *Target) FileLoadAddress(name string) (uint64, error) {
	t.lock()
	defer t.mu.Unlock()
	return t.fileLoadAddress(name)
}
