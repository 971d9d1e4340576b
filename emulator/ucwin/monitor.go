package ucwin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/rspstub/rspstub/emulator/unicorn"
	"github.com/rspstub/rspstub/guest/minidump"
	"github.com/rspstub/rspstub/monitor"
)

// Monitor implements rsp.Monitor: the monitor commands of package
// monitor, over this target.
func (t *Target) Monitor(cmd string, out io.Writer) error {
	return t.Commands().Run(cmd, out)
}

// MonitorThread implements rsp.ThreadMonitor: the command looks at the
// thread the client selected.
//
// A leading "-thread N" picks the thread explicitly (GDB does not always
// send Hg before a monitor command; the shipped scripts name the thread
// they show).
func (t *Target) MonitorThread(tid int, cmd string, out io.Writer) error {
	if rest, ok := strings.CutPrefix(strings.TrimSpace(cmd), "-thread "); ok {
		f := strings.Fields(rest)
		if len(f) == 0 {
			return &monitor.UsageError{Msg: "-thread needs a thread id"}
		}
		n, err := strconv.ParseInt(f[0], 0, 64)
		if err != nil || n <= 0 || t.checkThread(int(n)) != nil {
			return &monitor.UsageError{Msg: fmt.Sprintf("-thread %s: no such thread", f[0])}
		}
		tid = int(n)
		cmd = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), f[0]))
	}
	t.monTID = tid
	defer func() { t.monTID = 0 }()
	return t.Commands().Run(cmd, out)
}

// Commands returns the target's monitor (created on first use), for
// callers that want its Go API (rspstub run).
func (t *Target) Commands() *monitor.Monitor {
	if t.mon == nil {
		t.mon = monitor.New(monTarget{t})
	}
	return t.mon
}

// monTarget adapts the target to the monitor package's interfaces.
type monTarget struct{ t *Target }

func (a monTarget) Registers() (monitor.Registers, error) {
	if a.t.exited {
		return monitor.Registers{}, errors.New("the program has exited: no thread to inspect")
	}
	var c unicorn.Context
	if a.t.wine != nil {
		ctx, err := a.t.wine.ThreadContext(a.t.wineThread(a.t.monTID))
		if err != nil {
			return monitor.Registers{}, err
		}
		c = *ctx
	} else if err := a.t.m.ReadContext(&c); err != nil {
		return monitor.Registers{}, err
	}
	r := monitor.Registers{GPR: c.GPR, RIP: c.RIP, RFLAGS: c.RFLAGS, HasXMM: true}
	for i := range r.XMM {
		r.XMM[i].Lo = binary.LittleEndian.Uint64(c.XMM[i][:8])
		r.XMM[i].Hi = binary.LittleEndian.Uint64(c.XMM[i][8:])
	}
	return r, nil
}

func (a monTarget) ReadMemory(addr uint64, p []byte) (int, error) { return a.t.m.ReadMemory(addr, p) }

func (a monTarget) Modules() []monitor.Module {
	mods := a.t.modules()
	out := make([]monitor.Module, len(mods))
	for i, m := range mods {
		out[i] = monitor.Module{Name: m.Name, Path: m.Path, Base: m.Base, Size: m.Size, Synthetic: m.Synthetic}
	}
	return out
}

func (a monTarget) TEB() (uint64, error) {
	if a.t.wine != nil {
		return a.t.wine.TEB(a.t.wineThread(a.t.monTID))
	}
	return a.t.proc.TEB(), nil
}

func (a monTarget) Regions() []monitor.Region {
	var out []monitor.Region
	for _, r := range a.t.m.Regions() {
		out = append(out, monitor.Region{Start: r.Start, Size: r.Size, Perm: r.Perm, Name: a.t.regionName(r.Start)})
	}
	return out
}

func (a monTarget) ShadowStack() ([]monitor.ShadowFrame, bool) {
	sf := a.t.m.ShadowStack() // nil when the shadow stack is off
	out := make([]monitor.ShadowFrame, len(sf))
	for i, f := range sf {
		out[i] = monitor.ShadowFrame{CallSite: f.CallSite, Target: f.Target, ReturnAddress: f.ReturnAddress, SP: f.SP}
	}
	return out, sf != nil
}

func (a monTarget) WriteMinidump(path string, full bool) (minidump.Summary, error) {
	return a.t.WriteMinidump(path, full)
}

func (a monTarget) ModuleFile(m monitor.Module) ([]byte, error) {
	return a.t.moduleImage(m.Name)
}

func (a monTarget) AddCatch(kind, name string) (string, error) {
	c, err := a.t.Catch(kind, name)
	if err != nil {
		return "", err
	}
	return a.t.describeCatch(*c), nil
}

func (a monTarget) CatchList() []string {
	var out []string
	for _, c := range a.t.Catches() {
		out = append(out, a.t.describeCatch(c))
	}
	return out
}

func (a monTarget) DeleteCatch(id int) error { return a.t.DeleteCatch(id) }

// describeCatch is a catch point's line in monitor catch.
func (t *Target) describeCatch(c CatchPoint) string {
	s := fmt.Sprintf("catch %d: %s %s", c.ID, c.Kind, c.Name)
	if c.Kind == "api" {
		addrs := t.CatchAddresses(c.ID)
		if len(addrs) == 0 {
			s += " (pending: not imported or loaded yet)"
		} else {
			var as []string
			for _, a := range addrs {
				as = append(as, fmt.Sprintf("%#x", a))
			}
			s += " at " + strings.Join(as, ", ")
		}
	}
	s += fmt.Sprintf(", %d hit(s)", c.Hits)
	if c.Last != "" {
		s += "; last: " + c.Last
	}
	return s
}

// The monitor's time travel (monitor.TimeTraveler), for LLDB and scripts.

func (a monTarget) Recording() bool { return a.t.Recording() }

func (a monTarget) Position() uint64 { return a.t.Position() }

func (a monTarget) SaveSnapshot(name string) (string, error) { return a.t.SaveSnapshot(name) }

func (a monTarget) RestoreSnapshot(name string) (string, error) {
	st, err := a.t.RestoreSnapshot(name)
	return a.t.describeHere(st), err
}

func (a monTarget) DeleteSnapshot(name string) error { return a.t.DeleteSnapshot(name) }

func (a monTarget) Snapshots() []monitor.Snapshot {
	var out []monitor.Snapshot
	for _, s := range a.t.Snapshots() {
		out = append(out, monitor.Snapshot{Name: s.Name, Position: s.Position})
	}
	return out
}

func (a monTarget) ReverseStepi(n uint64) (string, error) {
	st, err := a.t.ReverseStepN(n)
	return a.t.describeHere(st), err
}

func (a monTarget) ReverseContinue() (string, error) {
	st, err := a.t.ContinueBack()
	return a.t.describeHere(st), err
}
