package debuggee

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/rspstub/rspstub/guest/minidump"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/monitor"
	"github.com/rspstub/rspstub/unwind"
)

// Monitor implements rsp.Monitor: the commands of package monitor, and
// the source's own, for the source's current thread.
func (t *Target) Monitor(cmd string, out io.Writer) error {
	return t.run(0, cmd, out)
}

// MonitorThread implements rsp.ThreadMonitor: when the source follows
// the client's thread (ThreadChecker), the command looks at thread tid.
//
// A leading "-thread N" picks the thread explicitly (GDB does not always
// send Hg before a monitor command; the shipped scripts name the thread
// they show).
func (t *Target) MonitorThread(tid int, cmd string, out io.Writer) error {
	if t.tc == nil {
		return t.run(0, cmd, out)
	}
	if rest, ok := strings.CutPrefix(strings.TrimSpace(cmd), "-thread "); ok {
		f := strings.Fields(rest)
		if len(f) == 0 {
			return &monitor.UsageError{Msg: "-thread needs a thread id"}
		}
		n, err := strconv.ParseInt(f[0], 0, 64)
		if err != nil || n <= 0 || t.tc.CheckThread(int(n)) != nil {
			return &monitor.UsageError{Msg: fmt.Sprintf("-thread %s: no such thread", f[0])}
		}
		tid = int(n)
		cmd = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), f[0]))
	}
	return t.run(tid, cmd, out)
}

// run runs one command line for thread tid (0: the source's current).
func (t *Target) run(tid int, cmd string, out io.Writer) error {
	t.tid = tid
	defer func() { t.tid = 0 }()
	if t.cmds == nil {
		return t.Commands().Run(cmd, out)
	}
	cmd = strings.TrimSpace(cmd)
	name, rest, _ := strings.Cut(cmd, " ")
	if name == "" || name == "help" {
		if strings.TrimSpace(rest) != "" {
			return t.Commands().Run(cmd, out)
		}
		if err := t.Commands().Run("help", out); err != nil {
			return err
		}
		_, err := io.WriteString(out, t.cmds.MonitorHelp())
		return err
	}
	if handled, err := t.cmds.MonitorCommand(cmd, out); handled {
		return err
	}
	return t.Commands().Run(cmd, out)
}

// Commands returns package monitor's command set over this process
// (created on first use, and again for a new generation of the guest),
// for callers that want its Go API (rspstub run, tests).
func (t *Target) Commands() *monitor.Monitor {
	if g, ok := t.b.(Generationer); ok {
		if gen := g.Generation(); gen != t.gen {
			t.gen, t.mon = gen, nil
		}
	}
	if t.mon == nil {
		var mt monitor.Target = monSource{t}
		if e, ok := t.b.(Emulator); ok {
			mt = monEmulator{monSource{t}, e}
			if r, ok := t.b.(Recorder); ok {
				mt = monRecorder{mt.(monEmulator), r}
			}
		}
		t.mon = monitor.New(mt)
		if t.preferSet {
			t.mon.SetCFIPreference(t.prefer)
		}
	}
	return t.mon
}

// SetCFIPreference sets rspstub's --unwinder for the monitor commands:
// which unwind data bt uses for PE code that has both .pdata and DWARF
// CFI ("monitor set unwinder" changes it later).
func (t *Target) SetCFIPreference(p unwind.CFIPreference) {
	t.prefer, t.preferSet = p, true
	t.Commands().SetCFIPreference(p)
}

// symbolName and resolve are the monitor's symbol lookups, for the
// source's own use (Symbolizer).
func (t *Target) symbolName(pc uint64) string { return t.Commands().SymbolName(pc) }

func (t *Target) resolve(name string) (uint64, error) { return t.Commands().Resolve(name) }

// monSource adapts the source to package monitor, for the thread the
// command inspects.
type monSource struct{ t *Target }

func (a monSource) Registers() (monitor.Registers, error) { return a.t.b.Registers(a.t.tid) }

func (a monSource) ReadMemory(addr uint64, p []byte) (int, error) {
	if tm, ok := a.t.b.(ThreadMemory); ok {
		return tm.ReadThreadMemory(a.t.tid, addr, p)
	}
	return a.t.b.ReadMemory(addr, p)
}

func (a monSource) Modules() []monitor.Module { return a.t.b.Modules() }

func (a monSource) TEB() (uint64, error) { return a.t.b.TEB(a.t.tid) }

func (a monSource) ModuleFile(m monitor.Module) ([]byte, error) { return a.t.b.ModuleFile(m) }

func (a monSource) DebugFile(m monitor.Module, buildID []byte) ([]byte, error) {
	if df, ok := a.t.b.(DebugFiler); ok {
		return df.DebugFile(m, buildID)
	}
	return nil, errors.New("no debug file")
}

// monEmulator adds what an emulator knows: the memory map, the shadow
// call stack, catch points and minidumps.
type monEmulator struct {
	monSource
	e Emulator
}

func (a monEmulator) Regions() []arch.Region { return a.e.Regions() }

func (a monEmulator) ShadowStack() ([]arch.ShadowFrame, bool) { return a.e.ShadowStack() }

func (a monEmulator) AddCatch(kind, name string) (string, error) { return a.e.AddCatch(kind, name) }

func (a monEmulator) CatchList() []string { return a.e.CatchList() }

func (a monEmulator) DeleteCatch(id int) error { return a.e.DeleteCatch(id) }

func (a monEmulator) WriteMinidump(path string, full bool) (minidump.Summary, error) {
	return a.e.WriteMinidump(path, full)
}

// monRecorder adds time travel to an emulator's commands.
type monRecorder struct {
	monEmulator
	r Recorder
}

func (a monRecorder) Recording() bool { return a.r.Recording() }

func (a monRecorder) Position() uint64 { return a.r.Position() }

func (a monRecorder) SaveSnapshot(name string) (string, error) { return a.r.SaveSnapshot(name) }

func (a monRecorder) RestoreSnapshot(name string) (string, error) {
	st, err := a.r.RestoreSnapshot(name)
	return a.r.DescribeStop(st), err
}

func (a monRecorder) DeleteSnapshot(name string) error { return a.r.DeleteSnapshot(name) }

func (a monRecorder) Snapshots() []monitor.Snapshot {
	names, pos := a.r.SnapshotPositions()
	out := make([]monitor.Snapshot, 0, len(names))
	for i, n := range names {
		if i < len(pos) {
			out = append(out, monitor.Snapshot{Name: n, Position: pos[i]})
		}
	}
	return out
}

func (a monRecorder) ReverseStepi(n uint64) (string, error) {
	st, err := a.r.ReverseStepN(n)
	return a.r.DescribeStop(st), err
}

func (a monRecorder) ReverseContinue() (string, error) {
	st, err := a.r.ContinueBack()
	return a.r.DescribeStop(st), err
}

var (
	_ monitor.TimeTraveler  = monRecorder{}
	_ monitor.TEBer         = monSource{}
	_ monitor.ModuleFiler   = monSource{}
	_ monitor.DebugFiler    = monSource{}
	_ monitor.RegionLister  = monEmulator{}
	_ monitor.ShadowStacker = monEmulator{}
	_ monitor.Catcher       = monEmulator{}
	_ monitor.Minidumper    = monEmulator{}
)
