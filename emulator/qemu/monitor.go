package qemu

import (
	"fmt"
	"io"
	"strings"
)

const monitorHelp = `QEMU backend commands:
  qemu CMD                                       run CMD in QEMU's own monitor (HMP), e.g. "qemu info registers"
  threads                                        the vCPUs (or program threads) QEMU reports
  status                                         what rspstub is attached to
  discovery                                      how the modules were found: TEB, loader list, MZ scan, --module
The commands above inspect the debugger's current thread (vCPU).
`

// monitorCommand runs the backend's own monitor commands (the layer
// above runs the rest, package monitor's, and prints monitorHelp after
// its help). While QEMU is gone every other command fails with ErrGone.
func (t *Target) monitorCommand(cmd string, out io.Writer) (bool, error) {
	cmd = strings.TrimSpace(cmd)
	name, rest, _ := strings.Cut(cmd, " ")
	rest = strings.TrimSpace(rest)
	if handled, err := t.reverseMonitor(name, rest, out); handled {
		return true, err
	}
	switch name {
	case "discovery":
		if t.gone.Load() {
			return true, ErrGone
		}
		t.discoveryReport(out)
		return true, nil
	case "qemu":
		if rest == "" {
			return true, fmt.Errorf("usage: monitor qemu CMD (try: monitor qemu help)")
		}
		if t.gone.Load() {
			return true, ErrGone
		}
		t.invalidate() // a monitor command can change memory and registers
		text, err := t.c.Monitor(rest)
		// HMP writes CRLF line ends.
		text = strings.ReplaceAll(text, "\r\n", "\n")
		if _, werr := io.WriteString(out, text); werr != nil {
			return true, werr
		}
		if err != nil {
			return true, t.check(fmt.Errorf("qemu monitor: %w", err))
		}
		return true, nil
	case "threads":
		for _, ti := range t.threadInfos(nil) {
			fmt.Fprintf(out, "thread %d: %s\n", ti.ID, ti.Extra)
		}
		return true, nil
	case "status":
		where := t.addr
		if where == "" {
			where = "a QEMU gdbstub"
		}
		state := "attached"
		if t.gone.Load() {
			state = "gone (QEMU closed the connection)"
		}
		fmt.Fprintf(out, "QEMU %s mode at %s, %s; %d threads; %d breakpoints/watchpoints in QEMU, %d emulated watchpoints\n",
			t.mode, where, state, len(t.threads), len(t.bps), len(t.soft))
		return true, nil
	}
	if t.gone.Load() {
		return true, ErrGone
	}
	return false, nil
}
