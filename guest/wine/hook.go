package wine

import (
	"strings"

	"github.com/rspstub/rspstub/internal/arch"
)

// SyscallRecord is one served system call, for API traces and catch
// points: the calling thread, the call's name, its arguments (as many
// as the kernel's table says it takes; four for a call the kernel
// lacks), the decoded ones the handler noted, the status returned and
// the return address into the caller (ntdll's thunk's caller).
type SyscallRecord struct {
	Thread uint32
	Name   string
	Args   []uint64
	Info   []string
	Status uint32
	// StatusName is the status as a name (STATUS_SUCCESS) or hex.
	StatusName string
	Caller     uint64
}

// SetSyscallHook has fn called after every system call is served, on
// the fast path too (nil: none). The record is fn's to keep.
func (p *Process) SetSyscallHook(fn func(*SyscallRecord)) { p.hook = fn }

// CatchSyscalls names the system calls to stop at (nil: none): they are
// never served on the fast path, and after one is served TakeCaught
// returns its record. It reports the names the kernel does not know.
func (p *Process) CatchSyscalls(names []string) (unknown []string) {
	p.catch = nil
	for _, n := range names {
		if !p.SyscallKnown(n) {
			unknown = append(unknown, n)
			continue
		}
		if p.catch == nil {
			p.catch = map[string]bool{}
		}
		p.catch[n] = true
	}
	return unknown
}

// SyscallKnown reports whether name is a system call of this Wine's
// ntdll or win32u (implemented or not).
func (p *Process) SyscallKnown(name string) bool {
	if byName[name] != nil {
		return true
	}
	for _, n := range p.inst.syscalls {
		if n == name {
			return true
		}
	}
	return false
}

// TakeCaught returns the caught system call served last, once.
func (p *Process) TakeCaught() (*SyscallRecord, bool) {
	r := p.caught
	p.caught = nil
	return r, r != nil
}

// caughtSlot reports that a slot's calls must take the slow path.
func (p *Process) caughtSlot(s *sysSlot) bool { return p.catch != nil && p.catch[s.name] }

// record gives a served call to the hook and the catch points.
func (p *Process) record(c *call, e *sysEntry, status ntstatus) {
	if c.recorded || (p.hook == nil && p.catch == nil) {
		return
	}
	c.recorded = true
	caught := p.catch != nil && p.catch[c.name]
	if p.hook == nil && !caught {
		return
	}
	n := 4
	if e != nil {
		n = e.nargs
	}
	r := &SyscallRecord{Thread: c.t.tid, Name: c.name, Status: uint32(status), StatusName: status.String()}
	saved := c.err
	for i := 0; i < n; i++ {
		r.Args = append(r.Args, c.arg(i))
	}
	r.Caller = c.u64(c.regs.GPR[arch.RSP])
	c.err = saved
	if len(c.info) > 0 {
		r.Info = append([]string(nil), c.info...)
	}
	if r.Name == "" {
		r.Name = "syscall"
	}
	if p.hook != nil {
		p.hook(r)
	}
	if caught {
		p.caught = r
	}
}

// FormatSyscall renders a record as Name(arg, ...) info = status.
func FormatSyscall(r *SyscallRecord) string {
	var b strings.Builder
	b.WriteString(r.Name + "(")
	for i, a := range r.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(hexU64(a))
	}
	b.WriteString(")")
	if len(r.Info) > 0 {
		b.WriteString(" " + strings.Join(r.Info, " "))
	}
	b.WriteString(" = " + r.StatusName)
	return b.String()
}

func hexU64(v uint64) string {
	const digits = "0123456789abcdef"
	if v == 0 {
		return "0"
	}
	var buf [18]byte
	i := len(buf)
	for v > 0 {
		i--
		buf[i] = digits[v&15]
		v >>= 4
	}
	i -= 2
	buf[i], buf[i+1] = '0', 'x'
	return string(buf[i:])
}
