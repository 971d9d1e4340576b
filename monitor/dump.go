package monitor

import (
	"errors"
	"fmt"
	"io"

	"github.com/rspstub/rspstub/guest/minidump"
)

// Minidumper is implemented by targets that can write a Windows
// minidump of the stopped process to a file the user named.
type Minidumper interface {
	WriteMinidump(path string, full bool) (minidump.Summary, error)
}

func (m *Monitor) cmdMinidump(args []string, out io.Writer) error {
	var full bool
	pos, err := parseFlags("minidump", args, flagSpec{bools: map[string]*bool{"full": &full}})
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return &UsageError{Cmd: "minidump", Msg: "needs one file name: minidump [-full] FILE"}
	}
	d, ok := m.t.(Minidumper)
	if !ok {
		return errors.New("minidump: this backend cannot write minidumps")
	}
	s, err := d.WriteMinidump(pos[0], full)
	if err != nil {
		return fmt.Errorf("minidump: %w", err)
	}
	fmt.Fprintf(out, "wrote %s: %s\n", pos[0], DescribeMinidump(s))
	return nil
}

// DescribeMinidump says what a written dump holds, on one line.
func DescribeMinidump(s minidump.Summary) string {
	return fmt.Sprintf("%d thread(s), %d module(s), %d memory range(s) (%d bytes), %d bytes",
		s.Threads, s.Modules, s.Ranges, s.MemoryBytes, s.FileBytes)
}
