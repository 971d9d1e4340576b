package monitor

import (
	"errors"
	"fmt"
	"io"
)

// TimeTraveler is implemented by targets that record the execution
// (rspstub serve/run --record): the position counter, named snapshots,
// and reverse execution for clients without reverse commands (LLDB) and
// for scripts. Reverse moves the target behind the client's back: GDB
// needs `flushregs` (or maintenance flush register-cache) afterwards.
type TimeTraveler interface {
	// Recording reports whether the execution is recorded; the other
	// methods are used only when it is.
	Recording() bool
	// Position is the number of instructions executed since the start.
	Position() uint64
	SaveSnapshot(name string) (string, error)
	// RestoreSnapshot brings the process back to the snapshot; it
	// returns a description of the stop there.
	RestoreSnapshot(name string) (string, error)
	DeleteSnapshot(name string) error
	Snapshots() []Snapshot
	// ReverseStepi (n instructions back) and ReverseContinue describe
	// where they stopped.
	ReverseStepi(n uint64) (string, error)
	ReverseContinue() (string, error)
}

// Snapshot is a named point of a recorded execution.
type Snapshot struct {
	Name     string
	Position uint64
}

var errNoTimeTravel = errors.New("this target does not record its execution (start rspstub with --record)")

func (m *Monitor) timeTraveler() (TimeTraveler, error) {
	tt, ok := m.t.(TimeTraveler)
	if !ok || !tt.Recording() {
		return nil, errNoTimeTravel
	}
	return tt, nil
}

func init() {
	commands = append(commands,
		command{"when", "", "the position: instructions executed since the start (with --record)", (*Monitor).cmdWhen},
		command{"snapshot", "save [NAME]|restore NAME|list|delete NAME", "named points of the recorded execution (with --record)", (*Monitor).cmdSnapshot},
		command{"reverse-stepi", "[N]", "undo N instructions (default 1) (with --record)", (*Monitor).cmdReverseStepi},
		command{"reverse-continue", "", "go back to the last breakpoint or watchpoint hit, or to the start (with --record)", (*Monitor).cmdReverseContinue},
	)
}

func (m *Monitor) cmdWhen(args []string, out io.Writer) error {
	if err := noArgs("when", args); err != nil {
		return err
	}
	tt, err := m.timeTraveler()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "position %d\n", tt.Position())
	return nil
}

func (m *Monitor) cmdSnapshot(args []string, out io.Writer) error {
	tt, err := m.timeTraveler()
	if err != nil {
		return err
	}
	usage := &UsageError{Cmd: "snapshot", Msg: "usage: snapshot save [NAME] | restore NAME | list | delete NAME"}
	if len(args) == 0 {
		return usage
	}
	switch {
	case args[0] == "save" && len(args) <= 2:
		name := ""
		if len(args) == 2 {
			name = args[1]
		}
		name, err := tt.SaveSnapshot(name)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "snapshot %s at position %d\n", name, tt.Position())
	case args[0] == "restore" && len(args) == 2:
		desc, err := tt.RestoreSnapshot(args[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "restored %s: position %d, %s\n", args[1], tt.Position(), desc)
	case args[0] == "delete" && len(args) == 2:
		return tt.DeleteSnapshot(args[1])
	case args[0] == "list" && len(args) == 1:
		snaps := tt.Snapshots()
		if len(snaps) == 0 {
			fmt.Fprintln(out, "no snapshots")
		}
		for _, s := range snaps {
			fmt.Fprintf(out, "%-16s position %d\n", s.Name, s.Position)
		}
	default:
		return usage
	}
	return nil
}

func (m *Monitor) cmdReverseStepi(args []string, out io.Writer) error {
	tt, err := m.timeTraveler()
	if err != nil {
		return err
	}
	n := uint64(1)
	switch len(args) {
	case 0:
	case 1:
		v, err := parseNumber(args[0])
		if err != nil || v == 0 || v > 1<<40 {
			return &UsageError{Cmd: "reverse-stepi", Msg: fmt.Sprintf("bad count %q", args[0])}
		}
		n = v
	default:
		return &UsageError{Cmd: "reverse-stepi", Msg: "usage: reverse-stepi [N]"}
	}
	desc, err := tt.ReverseStepi(n)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "position %d: %s\n", tt.Position(), desc)
	return nil
}

func (m *Monitor) cmdReverseContinue(args []string, out io.Writer) error {
	if err := noArgs("reverse-continue", args); err != nil {
		return err
	}
	tt, err := m.timeTraveler()
	if err != nil {
		return err
	}
	desc, err := tt.ReverseContinue()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "position %d: %s\n", tt.Position(), desc)
	return nil
}
