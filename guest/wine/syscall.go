package wine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/arch"
)

// A system call arrives as a stop of the emulator on a `syscall`
// instruction of an ntdll thunk (`mov r10,rcx; mov eax,N; ...; syscall;
// ret`), with RIP already past it. Arguments are R10, RDX, R8, R9, then
// the caller's stack from RSP+0x28 (the thunk pushed nothing, so [RSP] is
// the return address into the caller and the four home slots follow).
// The status goes back in RAX; the thunk's `ret` returns it.

// call is one system call in progress.
type call struct {
	p    *Process
	t    *Thread
	name string
	regs *arch.Context
	err  error    // first guest memory failure: the call fails with STATUS_ACCESS_VIOLATION
	info []string // decoded arguments for the trace

	// Outcomes other than "return a status":
	// unimplemented names what the handler could not do (a unix call of
	// a DLL): the guest stops as for an unimplemented system call.
	unimplemented string

	contextSet bool // the handler replaced the thread's registers (NtContinue)
	traced     bool // the trace line is out
	recorded   bool // the hook and the catch points have it
	keepRAX    bool // with contextSet: RAX comes from the new context, not the status
	blocked    bool // the thread waits; the status comes later
	exitThread bool // the thread ended
}

// arg returns argument i (0-based).
func (c *call) arg(i int) uint64 {
	switch i {
	case 0:
		return c.regs.GPR[arch.R10]
	case 1:
		return c.regs.GPR[arch.RDX]
	case 2:
		return c.regs.GPR[arch.R8]
	case 3:
		return c.regs.GPR[arch.R9]
	}
	v, err := c.p.mem.ReadU64(c.regs.GPR[arch.RSP] + 0x28 + 8*uint64(i-4))
	c.fail(err)
	return v
}

// arg32 is a ULONG argument: the upper half of its register or slot is
// garbage.
func (c *call) arg32(i int) uint32 { return uint32(c.arg(i)) }

// fail records the first guest memory error.
func (c *call) fail(err error) {
	if err != nil && c.err == nil {
		c.err = err
	}
}

func (c *call) note(format string, a ...any) {
	if c.p.cfg.TraceSyscalls || c.p.hook != nil || c.p.catch != nil {
		c.info = append(c.info, fmt.Sprintf(format, a...))
	}
}

func (c *call) u32(addr uint64) uint32 {
	v, err := c.p.mem.ReadU32(addr)
	c.fail(err)
	return v
}

func (c *call) u64(addr uint64) uint64 {
	v, err := c.p.mem.ReadU64(addr)
	c.fail(err)
	return v
}

func (c *call) bytes(addr uint64, n int) []byte {
	if n < 0 || n > 64<<20 {
		c.fail(&process.MemoryError{Op: "read", Addr: addr, N: n})
		return nil
	}
	b := make([]byte, n)
	c.fail(c.p.mem.Read(addr, b))
	return b
}

// The put functions write results into guest buffers, only where the
// guest itself may write (committed, writable pages), as Windows' probes
// check: a buffer in read-only memory fails the call with
// STATUS_ACCESS_VIOLATION.

func (c *call) put32(addr uint64, v uint32) {
	if addr != 0 && c.writable(addr, 4) {
		c.fail(c.p.mem.WriteU32(addr, v))
	}
}

func (c *call) put64(addr, v uint64) {
	if addr != 0 && c.writable(addr, 8) {
		c.fail(c.p.mem.WriteU64(addr, v))
	}
}

func (c *call) putBytes(addr uint64, b []byte) {
	if len(b) == 0 || c.writable(addr, uint64(len(b))) {
		c.fail(c.p.mem.Write(addr, b))
	}
}

func (c *call) writable(addr, n uint64) bool {
	if addr+n < addr || !c.p.vm.accessible(addr, n, true) {
		c.fail(&process.MemoryError{Op: "write", Addr: addr, N: int(n)})
		return false
	}
	return true
}

// ustr reads a UNICODE_STRING at addr.
func (c *call) ustr(addr uint64) string {
	if addr == 0 {
		return ""
	}
	b := c.bytes(addr, 16)
	if b == nil || c.err != nil {
		return ""
	}
	n := int(uint16(b[0]) | uint16(b[1])<<8)
	buf := uint64(b[8]) | uint64(b[9])<<8 | uint64(b[10])<<16 | uint64(b[11])<<24 |
		uint64(b[12])<<32 | uint64(b[13])<<40 | uint64(b[14])<<48 | uint64(b[15])<<56
	if n == 0 {
		return ""
	}
	return process.DecodeUTF16(c.bytes(buf, n&^1))
}

// objectAttributes reads OBJECT_ATTRIBUTES {Length, RootDirectory,
// ObjectName, Attributes, ...}: the root handle, the name and attributes.
func (c *call) objectAttributes(addr uint64) (root uint64, name string, attrs uint32) {
	if addr == 0 {
		return 0, "", 0
	}
	root = c.u64(addr + 8)
	name = c.ustr(c.u64(addr + 16))
	attrs = c.u32(addr + 24)
	return
}

// iosb writes an IO_STATUS_BLOCK {Status, Information}.
func (c *call) iosb(addr uint64, status ntstatus, info uint64) {
	if addr == 0 {
		return
	}
	c.put64(addr, uint64(status))
	c.put64(addr+8, info)
}

// sysFunc implements one system call.
type sysFunc func(p *Process, c *call) ntstatus

type sysEntry struct {
	name  string
	nargs int
	fn    sysFunc
}

// byName indexes syscallTable (table.go).
var byName = func() map[string]*sysEntry {
	m := make(map[string]*sysEntry, len(syscallTable))
	for i := range syscallTable {
		m[syscallTable[i].name] = &syscallTable[i]
	}
	return m
}()

// EventKind says what a system call (or a fault) left the debugger to
// do.
type EventKind int

const (
	EventNone          EventKind = iota // keep running
	EventExited                         // the process ended (ExitCode)
	EventUnimplemented                  // a system call the kernel lacks: stop and report
	EventDeadlock                       // every thread waits forever
	EventError                          // the kernel failed (a bug or the host): stop and report
)

// Event is what the integrator must act on after a system call or fault.
type Event struct {
	Kind        EventKind
	ExitCode    uint32
	Description string
	// Switched is set when another thread now runs (its registers are in
	// the machine).
	Switched bool
}

// Syscall serves the system call the machine stopped on (RIP past the
// syscall instruction) and sets the machine for what runs next. A call
// FastSyscall began and could not finish in place is finished here.
func (p *Process) Syscall() (ev Event, err error) {
	defer func() {
		if r := recover(); r != nil {
			ev = Event{Kind: EventError, Description: fmt.Sprintf("internal error in a system call: %v", r)}
			err = nil
		}
	}()
	if pend := p.pending; pend != nil {
		p.pending = nil
		return p.finish(pend.c, pend.e, pend.status, pend.ev)
	}
	if p.exited {
		return Event{Kind: EventExited, ExitCode: p.exitCode}, nil
	}
	c, e, status, evp, err := p.start(false)
	if err != nil || evp != nil {
		if evp == nil {
			return Event{}, err
		}
		return *evp, err
	}
	return p.finish(c, e, status, nil)
}

// pendingCall is a call FastSyscall ran whose outcome needs the run to
// stop (a thread switch, an exit, a report): Syscall finishes it.
type pendingCall struct {
	c      *call
	e      *sysEntry
	status ntstatus
	ev     *Event
}

// gprReader is a Machine that can read the general registers alone,
// cheaper than a whole context.
type gprReader interface {
	ReadGPRs(c *arch.Context) error
}

// start decodes the call in the machine's registers and runs its
// handler. ev is set when the call ends in an event already (an
// unimplemented call, a kernel failure). With gprsOnly the thread's
// saved context is refreshed in its general registers only (the calls
// FastSyscall serves read nothing else; a thread switch reads it whole).
func (p *Process) start(gprsOnly bool) (c *call, e *sysEntry, status ntstatus, ev *Event, err error) {
	t := p.cur
	if g, ok := p.m.(gprReader); ok && gprsOnly {
		err = g.ReadGPRs(&t.ctx)
	} else {
		err = p.m.ReadContext(&t.ctx)
	}
	if err != nil {
		return nil, nil, 0, nil, &vmError{"read context", err}
	}
	num := uint32(t.ctx.GPR[arch.RAX])
	// One call is in flight at a time (a pending one is finished before
	// the next starts), so its record is reused.
	c = &p.callRec
	*c = call{p: p, t: t, regs: &t.ctx, info: c.info[:0]}
	e = p.entryFor(c, num)
	if e == nil {
		caller := p.symbolize(c.u64(t.ctx.GPR[arch.RSP]))
		name := c.name
		if name == "" {
			name = fmt.Sprintf("%#x", num)
		}
		if !p.cfg.UnimplementedReturnsError {
			// Resuming makes the call fail, as --unimplemented-returns-error would.
			t.ctx.GPR[arch.RAX] = uint64(STATUS_NOT_IMPLEMENTED)
			if err := p.m.SetReg(arch.RAX, uint64(STATUS_NOT_IMPLEMENTED)); err != nil {
				return nil, nil, 0, nil, &vmError{"set rax", err}
			}
			return nil, nil, 0, &Event{Kind: EventUnimplemented,
				Description: fmt.Sprintf("unimplemented system call %s from %s (continuing returns STATUS_NOT_IMPLEMENTED)", name, caller)}, nil
		}
		p.log.Warn("unimplemented system call", "name", name, "caller", caller)
		return c, nil, STATUS_NOT_IMPLEMENTED, nil, nil
	}
	status = e.fn(p, c)
	if c.err != nil {
		var ge *process.MemoryError
		if !errors.As(c.err, &ge) {
			return nil, nil, 0, &Event{Kind: EventError, Description: fmt.Sprintf("%s: %v", c.name, c.err)}, nil
		}
		status = STATUS_ACCESS_VIOLATION
	}
	return c, e, status, nil, nil
}

// sysSlot is what a system-call number stands for in this process: its
// name, handler (nil: unimplemented), whether FastSyscall may serve it,
// and how often it ran.
type sysSlot struct {
	name  string
	e     *sysEntry
	fast  bool
	count int
}

// slot returns the slot of system call num, nil for a number no thunk
// uses. Numbers are a table index (ntdll's, 0x0xxx) plus 0x1000 per
// further table (win32u's).
func (p *Process) slot(num uint32) *sysSlot {
	if p.slots[0] == nil {
		p.slots = [2][]sysSlot{make([]sysSlot, 0x1000), make([]sysSlot, 0x1000)}
		for n, name := range p.inst.syscalls {
			if n>>12 >= 2 {
				continue
			}
			s := &p.slots[n>>12][n&0xfff]
			s.name = name
			switch e := byName[name]; {
			case e != nil:
				s.e = e
				s.fast = fastSyscalls[name]
			case isWin32k(name):
				// There is no window system: user32 and gdi32 calls into
				// win32k that console programs make in passing get 0
				// (FALSE, NULL).
				s.e = &win32kEntry
			}
		}
	}
	if num>>12 >= 2 {
		return nil
	}
	if s := &p.slots[num>>12][num&0xfff]; s.name != "" {
		return s
	}
	return nil
}

// entryFor finds the handler of system call num (and names the call).
func (p *Process) entryFor(c *call, num uint32) *sysEntry {
	if num == unixCallNumber {
		c.name = "__wine_unix_call"
		p.stats[c.name]++
		return &unixCallEntry
	}
	s := p.slot(num)
	if s == nil {
		c.name = ""
		p.stats[fmt.Sprintf("%#x", num)]++
		return nil
	}
	c.name = s.name
	s.count++
	return s.e
}

var (
	unixCallEntry = sysEntry{"__wine_unix_call", 3, (*Process).wineUnixCall}
	win32kEntry   = sysEntry{"win32k", 4, func(*Process, *call) ntstatus { return 0 }}
)

// finish completes a call whose handler has run: the trace line, a
// report for what the handler could not do, the clock, and what runs
// next (the status in RAX, a new context, another thread).
func (p *Process) finish(c *call, e *sysEntry, status ntstatus, ev *Event) (Event, error) {
	if ev != nil {
		return *ev, nil
	}
	t := c.t
	if p.cfg.TraceSyscalls && !c.traced {
		p.trace(c, e, status)
	}
	p.record(c, e, status)
	if c.unimplemented != "" && !p.cfg.UnimplementedReturnsError {
		caller := p.symbolize(c.u64(t.ctx.GPR[arch.RSP]))
		if err := p.m.SetReg(arch.RAX, uint64(status)); err != nil {
			return Event{}, &vmError{"set rax", err}
		}
		return Event{Kind: EventUnimplemented,
			Description: fmt.Sprintf("unimplemented %s from %s (continuing returns %v)", c.unimplemented, caller, status)}, nil
	}
	if p.clock.dirty {
		p.updateUserShared()
	}
	if p.exited {
		return Event{Kind: EventExited, ExitCode: p.exitCode}, nil
	}
	switch {
	case c.exitThread:
		return p.schedule(nil)
	case c.blocked:
		if err := p.m.ReadContext(&t.ctx); err != nil { // registers as they are now
			return Event{}, &vmError{"read context", err}
		}
		return p.schedule(t)
	case c.contextSet:
		if !c.keepRAX {
			t.ctx.GPR[arch.RAX] = uint64(status)
		}
		if err := p.m.WriteContext(&t.ctx); err != nil {
			return Event{}, &vmError{"write context", err}
		}
	default:
		if err := p.m.SetReg(arch.RAX, uint64(status)); err != nil {
			return Event{}, &vmError{"set rax", err}
		}
	}
	return p.preempt()
}

// fastSyscalls are the calls FastSyscall may serve while the guest runs:
// they neither map nor protect memory nor change control flow (but for
// the outcomes finish handles after a stop).
var fastSyscalls = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range []string{
		"NtQueryPerformanceCounter", "NtQuerySystemTime", "NtQueryInformationProcess", "NtQueryInformationThread",
		"NtQueryVirtualMemory", "NtQuerySystemInformation", "NtQuerySystemInformationEx", "NtWriteFile", "NtReadFile",
		"NtClose", "NtSetEvent", "NtResetEvent", "NtClearEvent", "NtQueryEvent", "NtCreateEvent", "NtOpenEvent",
		"NtCreateMutant", "NtReleaseMutant", "NtCreateSemaphore", "NtReleaseSemaphore", "NtAlertThreadByThreadId",
		"NtQueryValueKey", "NtOpenKey", "NtOpenKeyEx", "NtCreateKey", "NtSetValueKey", "NtEnumerateKey",
		"NtEnumerateValueKey", "NtQueryKey", "NtDeleteValueKey", "NtFlushKey", "NtCreateFile", "NtOpenFile",
		"NtQueryInformationFile", "NtSetInformationFile", "NtQueryAttributesFile", "NtQueryFullAttributesFile",
		"NtQueryDirectoryFile", "NtQueryVolumeInformationFile", "NtFsControlFile", "NtDeviceIoControlFile",
		"NtFlushBuffersFile", "NtDuplicateObject", "NtQueryObject", "NtQueryInformationToken", "NtOpenProcessToken",
		"NtOpenProcessTokenEx", "NtOpenThreadToken", "NtOpenThreadTokenEx", "NtQueryDefaultLocale",
		"NtQueryDefaultUILanguage", "NtQueryInstallUILanguage", "NtAllocateLocallyUniqueId", "NtSetInformationThread",
		"NtSetInformationProcess", "NtGetCurrentProcessorNumber", "NtDeleteFile", "NtCompareObjects",
		"NtQuerySecurityObject", "NtFlushInstructionCache", "NtTestAlert", "NtQueryTimerResolution", "__wine_dbg_write",
	} {
		m[n] = true
	}
	return m
}()

// FastSyscall serves the system call at RIP while the machine runs (its
// syscall hook calls it): it returns true when the call is done and the
// guest goes on, false when the run must stop (the call is not one that
// can be served in place, or its outcome needs a stop); Syscall then
// serves or finishes it. In place, guest memory is written only where
// the guest may write (as the kernel's probes check).
func (p *Process) FastSyscall() (done bool) {
	defer func() {
		if r := recover(); r != nil {
			p.pending = &pendingCall{ev: &Event{Kind: EventError, Description: fmt.Sprintf("internal error in a system call: %v", r)}}
			done = false
		}
	}()
	if p.exited || p.cur == nil || p.pending != nil {
		return false
	}
	rax, err := p.m.Reg(arch.RAX)
	if err != nil {
		return false
	}
	if s := p.slot(uint32(rax)); s == nil || !s.fast || p.caughtSlot(s) {
		return false
	}
	c, e, status, ev, err := p.start(true)
	if err != nil {
		p.pending = &pendingCall{ev: &Event{Kind: EventError, Description: err.Error()}}
		return false
	}
	switchDue := len(p.threads) >= 2 && p.sinceSwitch+1 >= quantumSyscalls
	if ev != nil || c.unimplemented != "" || c.blocked || c.contextSet || c.exitThread || p.exited ||
		switchDue {
		p.pending = &pendingCall{c: c, e: e, status: status, ev: ev}
		return false
	}
	if p.cfg.TraceSyscalls {
		p.trace(c, e, status)
	}
	p.record(c, e, status)
	if err := p.m.SetReg(arch.RAX, uint64(status)); err != nil {
		c.traced = true
		p.pending = &pendingCall{c: c, e: e, status: status}
		return false
	}
	if p.clock.dirty {
		p.updateUserShared()
	}
	p.sinceSwitch++ // as preempt counts a call served at a stop
	return true
}

// trace logs one line for a system call.
func (p *Process) trace(c *call, e *sysEntry, status ntstatus) {
	n := 4
	if e != nil {
		n = e.nargs
	}
	args := make([]string, 0, n)
	saved := c.err
	for i := 0; i < n; i++ {
		args = append(args, fmt.Sprintf("%#x", c.arg(i)))
	}
	c.err = saved
	line := fmt.Sprintf("%s(%s)", c.name, strings.Join(args, ", "))
	if len(c.info) > 0 {
		line += " " + strings.Join(c.info, " ")
	}
	p.log.Info("syscall", "tid", fmt.Sprintf("%#x", c.t.tid), "call", line, "status", status.String(),
		"caller", p.symbolize(c.u64(c.regs.GPR[arch.RSP])))
}

// symbolize names a code address: the Config's symbolizer, else
// module!export+off by the nearest export at or below it, else
// module+0xRVA.
func (p *Process) symbolize(pc uint64) string {
	if p.cfg.Symbolize != nil {
		if s := p.cfg.Symbolize(pc); s != "" {
			return s
		}
	}
	for _, m := range p.modules {
		if pc >= m.Base && pc < m.Base+m.Size {
			return fmt.Sprintf("%s+%#x", m.Name, pc-m.Base)
		}
	}
	return fmt.Sprintf("%#x", pc)
}

// isWin32k reports a win32u (window system) call.
func isWin32k(name string) bool {
	return strings.HasPrefix(name, "NtUser") || strings.HasPrefix(name, "NtGdi")
}
