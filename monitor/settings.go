package monitor

import (
	"fmt"
	"io"
	"strings"

	"github.com/rspstub/rspstub/unwind"
)

// SetCFIPreference chooses which unwind data bt uses for PE functions
// that have both a .pdata entry and DWARF CFI (rspstub --unwinder,
// "monitor set unwinder").
func (m *Monitor) SetCFIPreference(p unwind.CFIPreference) { m.prefer = p }

// CFIPreference returns the current choice.
func (m *Monitor) CFIPreference() unwind.CFIPreference { return m.prefer }

// settings are what "set" changes and "show" prints.
var settings = []struct {
	name, values, summary string
	get                   func(m *Monitor) string
	set                   func(m *Monitor, v string) error
}{
	{"unwinder", "auto|pdata|cfi", "unwind data for PE code that has both .pdata and DWARF CFI",
		func(m *Monitor) string { return m.prefer.String() },
		func(m *Monitor, v string) error {
			p, err := unwind.ParseCFIPreference(v)
			if err != nil {
				return err
			}
			m.prefer = p
			return nil
		}},
}

func (m *Monitor) cmdSet(args []string, out io.Writer) error {
	switch len(args) {
	case 0:
		return m.cmdShow(nil, out)
	case 2:
		for _, s := range settings {
			if s.name == args[0] {
				if err := s.set(m, args[1]); err != nil {
					return &UsageError{Cmd: "set", Msg: err.Error()}
				}
				fmt.Fprintf(out, "%s: %s\n", s.name, s.get(m))
				return nil
			}
		}
	}
	return &UsageError{Cmd: "set", Msg: fmt.Sprintf("want SETTING VALUE (%s), not %q", settingNames(), strings.Join(args, " "))}
}

func (m *Monitor) cmdShow(args []string, out io.Writer) error {
	if len(args) > 1 {
		return &UsageError{Cmd: "show", Msg: "takes at most one setting"}
	}
	found := false
	for _, s := range settings {
		if len(args) == 0 || s.name == args[0] {
			fmt.Fprintf(out, "%s: %s  (%s: %s)\n", s.name, s.get(m), s.values, s.summary)
			found = true
		}
	}
	if !found {
		return &UsageError{Cmd: "show", Msg: fmt.Sprintf("no setting %q (%s)", args[0], settingNames())}
	}
	return nil
}

func settingNames() string {
	var names []string
	for _, s := range settings {
		names = append(names, s.name+" "+s.values)
	}
	return strings.Join(names, ", ")
}
