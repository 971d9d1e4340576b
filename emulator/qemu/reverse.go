package qemu

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rspstub/rspstub/rsp"
)

// Reverse execution is QEMU's own: qemu-system replaying a recording
// (-icount shift=N,rr=replay,rrfile=FILE) advertises ReverseStep+ and
// ReverseContinue+ and answers bs and bc by going back to a snapshot of
// the recording and running forward again to the wanted instruction
// count. The target passes bs and bc through, and is an rsp.Reverser only
// when QEMU advertised both (Offers); without record/replay the debugger
// sees no reverse support and our reverse monitor commands say why.

var (
	_ rsp.Reverser    = (*Target)(nil)
	_ rsp.FeatureGate = (*Target)(nil)
)

// errNoReplay is the answer to reverse monitor commands when QEMU does
// not replay a recording.
var errNoReplay = errors.New("QEMU was not started with record/replay (-icount shift=N,rr=replay,rrfile=FILE): " +
	"reverse execution is QEMU's own on this backend; record with rr=record first, " +
	"and give both runs the same -drive of a qcow2 image with rrsnapshot=NAME for QEMU's snapshots")

// replaying reports whether QEMU advertised reverse execution in its
// qSupported reply (it does in replay mode only).
func (t *Target) replaying() bool {
	f := t.c.Features()
	return f["ReverseStep"] == "+" && f["ReverseContinue"] == "+"
}

// ReverseStep implements rsp.Reverser: QEMU's bs. QEMU replays its
// single vCPU stream, so the thread is the one QEMU stops on.
func (t *Target) ReverseStep(tid int) (rsp.Stop, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reverse("bs")
}

// ReverseContinue implements rsp.Reverser: QEMU's bc.
func (t *Target) ReverseContinue() (rsp.Stop, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reverse("bc")
}

// reverse sends bs or bc and turns QEMU's answer into a stop as resume
// does: caches dropped, the stopped vCPU selected, a stop at one of our
// breakpoints reported as a breakpoint hit, and Stop.ReplayLog "begin"
// when QEMU went back to the recording's start (QEMU 7.2 says nothing
// about it in its stop reply: its instruction count, from `info replay`,
// is then 0).
func (t *Target) reverse(pkt string) (rsp.Stop, error) {
	if t.gone.Load() {
		return t.last, nil
	}
	if !t.replaying() {
		return rsp.Stop{}, errNoReplay
	}
	t.running.Store(true)
	t.signalled.Store(false)
	t.interrupted.Store(false)
	t.invalidate()
	t.gen++
	t.hg = 0
	// QEMU 7.2 often never answers a bs or bc sent right after its
	// previous stop; a pause before it avoids that (measured: see doc.go).
	time.Sleep(reversePause)
	var st rsp.Stop
	var err error
	if pkt == "bs" {
		st, err = t.c.ReverseStep()
	} else {
		st, err = t.c.ReverseContinue()
	}
	t.running.Store(false)
	t.gsel = 0
	if err != nil {
		if e := t.check(err); t.gone.Load() {
			t.log.Debug("QEMU went away while running backwards", "err", e)
			return t.last, nil
		}
		// At instruction count 0 QEMU answers E14: nothing to undo.
		if n, ierr := t.icount(); ierr == nil && n == 0 {
			st := t.last
			st.Kind, st.Signal, st.Addr, st.ReplayLog = rsp.StopSignal, rsp.SIGTRAP, 0, "begin"
			t.last = st
			return st, nil
		}
		return rsp.Stop{}, fmt.Errorf("qemu: %s: %w", pkt, err)
	}
	switch st.Kind {
	case rsp.StopExited, rsp.StopTerminated:
		t.last = st
		t.gone.Store(true)
		return st, nil
	}
	if len(t.threads) == 0 {
		if err := t.refreshThreads(); err != nil {
			return rsp.Stop{}, err
		}
	}
	if st.Thread <= 0 {
		st.Thread = t.last.Thread
	}
	if st.Thread <= 0 && len(t.threads) > 0 {
		st.Thread = t.threads[0]
	}
	t.gsel = st.Thread
	if st.ReplayLog == "" {
		if n, err := t.icount(); err == nil && n == 0 {
			st.ReplayLog = "begin"
		}
	}
	if st.ReplayLog == "" && pkt == "bc" && st.Kind == rsp.StopSignal && st.Signal == rsp.SIGTRAP {
		if pc, err := t.reg64(st.Thread, t.desc.PC); err == nil {
			if k, ok := t.breakAt(pc); ok {
				st.Kind = k
			}
		}
	}
	t.last = st
	// Modules may differ at the earlier position: a continue-like stop
	// compares the loader list, as after a forward continue.
	if pkt == "bc" {
		t.noteLibraries(&st, nil)
	}
	return st, nil
}

// reversePause is the wait before each bs or bc.
const reversePause = 100 * time.Millisecond

var icountRE = regexp.MustCompile(`instruction count = (\d+)`)

// icount is QEMU's replay position, from its monitor's `info replay`
// ("Replaying execution 'FILE': instruction count = N").
func (t *Target) icount() (uint64, error) {
	text, err := t.c.Monitor("info replay")
	if err != nil {
		return 0, t.check(fmt.Errorf("qemu monitor: %w", err))
	}
	m := icountRE.FindStringSubmatch(text)
	if m == nil {
		return 0, fmt.Errorf("qemu: no instruction count in %q", strings.TrimSpace(text))
	}
	return strconv.ParseUint(m[1], 10, 64)
}

// reverseMonitor serves package monitor's time-travel commands on this
// backend (when, reverse-stepi [N], reverse-continue, snapshot) over
// QEMU's record/replay, or says that QEMU does not replay. handled is
// false for other commands.
func (t *Target) reverseMonitor(name, rest string, out io.Writer) (handled bool, err error) {
	switch name {
	case "when", "reverse-stepi", "reverse-continue", "snapshot":
	default:
		return false, nil
	}
	if t.gone.Load() {
		return true, ErrGone
	}
	if !t.replaying() {
		return true, errNoReplay
	}
	args := strings.Fields(rest)
	switch name {
	case "when":
		if len(args) != 0 {
			return true, errors.New("usage: when")
		}
	case "snapshot":
		return true, errors.New("snapshots on the QEMU backend are QEMU's: monitor qemu info snapshots; " +
			"reverse execution goes back to them by itself")
	case "reverse-stepi":
		n := uint64(1)
		if len(args) > 1 {
			return true, errors.New("usage: reverse-stepi [N]")
		}
		if len(args) == 1 {
			v, err := strconv.ParseUint(args[0], 0, 64)
			if err != nil || v == 0 || v > 1<<20 {
				return true, fmt.Errorf("reverse-stepi: bad count %q (1 to %d)", args[0], 1<<20)
			}
			n = v
		}
		for i := uint64(0); i < n; i++ {
			st, err := t.reverse("bs")
			if err != nil {
				return true, err
			}
			if st.ReplayLog != "" {
				break
			}
		}
	case "reverse-continue":
		if len(args) != 0 {
			return true, errors.New("usage: reverse-continue")
		}
		if _, err := t.reverse("bc"); err != nil {
			return true, err
		}
	}
	n, err := t.icount()
	if err != nil {
		return true, err
	}
	where := ""
	if pc, err := t.reg64(t.last.Thread, t.desc.PC); err == nil {
		where = fmt.Sprintf(", rip %#x", pc)
	}
	begin := ""
	if t.last.ReplayLog == "begin" {
		begin = " (the start of the recording)"
	}
	fmt.Fprintf(out, "position %d%s%s\n", n, where, begin)
	return true, nil
}
