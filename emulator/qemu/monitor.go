package qemu

import (
	"fmt"
	"io"
	"strings"

	"github.com/rspstub/rspstub/monitor"
)

const monitorHelp = `QEMU backend commands:
  qemu CMD                                       run CMD in QEMU's own monitor (HMP), e.g. "qemu info registers"
  threads                                        the vCPUs (or program threads) QEMU reports
  status                                         what rspstub is attached to
  discovery                                      how the modules were found: TEB, loader list, MZ scan, --module
The commands above inspect the debugger's current thread (vCPU).
`

// monitor implements rsp.Monitor: our commands, and QEMU's monitor
// behind "qemu".
func (t *Target) monitor(cmd string, out io.Writer) error {
	cmd = strings.TrimSpace(cmd)
	name, rest, _ := strings.Cut(cmd, " ")
	rest = strings.TrimSpace(rest)
	if handled, err := t.reverseMonitor(name, rest, out); handled {
		return err
	}
	switch name {
	case "", "help":
		if rest != "" {
			return t.commands().Run(cmd, out)
		}
		if err := t.commands().Run("help", out); err != nil {
			return err
		}
		_, err := io.WriteString(out, monitorHelp)
		return err
	case "discovery":
		if t.gone.Load() {
			return ErrGone
		}
		t.discoveryReport(out)
		return nil
	case "qemu":
		if rest == "" {
			return fmt.Errorf("usage: monitor qemu CMD (try: monitor qemu help)")
		}
		if t.gone.Load() {
			return ErrGone
		}
		text, err := t.c.Monitor(rest)
		// HMP writes CRLF line ends.
		text = strings.ReplaceAll(text, "\r\n", "\n")
		if _, werr := io.WriteString(out, text); werr != nil {
			return werr
		}
		if err != nil {
			return t.check(fmt.Errorf("qemu monitor: %w", err))
		}
		return nil
	case "threads":
		for _, ti := range t.threadInfos(nil) {
			fmt.Fprintf(out, "thread %d: %s\n", ti.ID, ti.Extra)
		}
		return nil
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
		return nil
	}
	if t.gone.Load() {
		return ErrGone
	}
	return t.commands().Run(cmd, out)
}

// commands is package monitor's command set over this target, created
// on first use.
func (t *Target) commands() *monitor.Monitor {
	if t.mon == nil {
		t.mon = monitor.New(monTarget{t})
	}
	return t.mon
}
