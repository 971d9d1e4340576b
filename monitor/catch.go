package monitor

import (
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Catcher is implemented by targets with catch points (Windows guests):
// stops at a function's entry (api) or after a system call (syscall),
// with the call's arguments decoded in the stop's text.
type Catcher interface {
	// AddCatch adds a catch point and describes it.
	AddCatch(kind, name string) (string, error)
	// CatchList describes the catch points, one line each.
	CatchList() []string
	// DeleteCatch removes catch point id, or all of them for 0.
	DeleteCatch(id int) error
}

func (m *Monitor) cmdCatch(args []string, out io.Writer) error {
	c, ok := m.t.(Catcher)
	if !ok {
		return errors.New("catch: this backend has no catch points")
	}
	switch {
	case len(args) == 0:
		l := c.CatchList()
		if len(l) == 0 {
			fmt.Fprintln(out, "no catch points")
		}
		for _, s := range l {
			fmt.Fprintln(out, s)
		}
		return nil
	case args[0] == "delete":
		id := 0
		if len(args) > 2 {
			return &UsageError{Cmd: "catch", Msg: "catch delete [N]"}
		}
		if len(args) == 2 {
			n, err := strconv.Atoi(args[1])
			if err != nil || n <= 0 {
				return &UsageError{Cmd: "catch", Msg: fmt.Sprintf("catch delete: %q is not a catch point number", args[1])}
			}
			id = n
		}
		if err := c.DeleteCatch(id); err != nil {
			return err
		}
		fmt.Fprintln(out, "deleted")
		return nil
	case (args[0] == "api" || args[0] == "syscall") && len(args) == 2:
		s, err := c.AddCatch(args[0], args[1])
		if err != nil {
			return err
		}
		fmt.Fprintln(out, s)
		return nil
	}
	return &UsageError{Cmd: "catch", Msg: "catch [api FUNC|DLL!FUNC | syscall NtNAME | delete [N]]"}
}
