package qemu

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
)

// recordGuest records about a second of the multiboot guest with QEMU's
// record/replay and returns the arguments that replay it. Reverse
// execution needs a snapshot to go back to: rrsnapshot=init saves one at
// the start into a qcow2 image given with -drive (an empty one will do),
// which the replay loads.
func recordGuest(t *testing.T) []string {
	t.Helper()
	needTool(t, "qemu-system-x86_64", "qemu-img")
	kernel := buildGuest(t)
	dir := t.TempDir()
	disk, log := filepath.Join(dir, "disk.qcow2"), filepath.Join(dir, "replay.bin")
	run(t, dir, "qemu-img", "create", "-f", "qcow2", disk, "16M")
	args := append(testkit.QEMUSystemArgs(kernel, 1), "-drive", "file="+disk+",if=none")
	icount := "shift=7,rrfile=" + log + ",rrsnapshot=init,rr="
	cmd := exec.Command(args[0], append(args[1:], "-icount", icount+"record")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// QEMU starts writing the log once the guest runs (0.5-1.5 s here on
	// a busy machine); then a second of execution.
	for i := 0; i < 300 && fileSize(log) == 0; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	cmd.Process.Signal(syscall.SIGTERM) // a clean end closes the log
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		require.FailNow(t, "the recording QEMU did not end on SIGTERM", stderr.String())
	}
	require.NotZero(t, fileSize(log), "the replay log: %s", stderr.String())
	return append(args, "-icount", icount+"replay")
}

// TestQEMUReverse replays a recording of the multiboot guest under
// QEMU's record/replay through rspstub: reverse execution is advertised,
// reverse-continue goes back to the previous breakpoint hit and then to
// the start (replaylog:begin), and reverse-stepi retraces forward steps
// with every register and memory as they were.
//
// QEMU 7.2 sometimes never answers a reverse request (its own bug; the
// pause before each, reversePause, makes it rare): a hung attempt is
// skipped and the scenario runs again on a new recording, three times at
// most; every other failure fails at once.
func TestQEMUReverse(t *testing.T) {
	if os.Getenv("RSPSTUB_QEMU_REVERSE") == "" {
		t.Skip("runs alone (RSPSTUB_QEMU_REVERSE=1, as scripts/test.sh runs it after the other tests): QEMU 7.2's replay hangs on reverse requests on a busy machine")
	}
	const attempts = 3
	for i := 1; i <= attempts; i++ {
		hung := false
		t.Run(fmt.Sprintf("attempt-%d", i), func(t *testing.T) { qemuReverse(t, &hung) })
		if !hung {
			return
		}
		t.Logf("attempt %d: QEMU hung on a reverse request; again on a new recording", i)
	}
	// Whose hang is it? The same requests straight to QEMU's gdbstub,
	// without rspstub: a QEMU that hangs by itself on this host now is a
	// peer's failure to report, not ours.
	if !qemuReversesAlone(t) {
		t.Skipf("QEMU hung on a reverse request in all %d attempts through rspstub, and also talked to directly: QEMU 7.2's replay fails on this host now (a busy machine)", attempts)
	}
	require.FailNow(t, "QEMU hung on a reverse request in every attempt through rspstub, but answered one sent to it directly", "%d attempts", attempts)
}

// qemuReversesAlone replays a new recording with QEMU's own gdbstub and
// asks it, directly, for what the scenario asks first: two breakpoint
// hits forward, then reverse-continue. It reports whether QEMU answered
// within 30 s.
func qemuReversesAlone(t *testing.T) bool {
	replay := recordGuest(t)
	tick := symbol(t, guestSymbols(t), "tick")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	argv := append(replay, "-gdb", "tcp:127.0.0.1:"+port, "-S")
	q := exec.Command(argv[0], argv[1:]...)
	require.NoError(t, q.Start())
	defer func() { q.Process.Kill(); q.Wait() }()
	var c *rsp.Client
	for i := 0; i < 100 && c == nil; i++ { // until QEMU listens
		c, _ = rsp.Dial("127.0.0.1:"+port, rsp.WithTimeout(30*time.Second))
		if c == nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	require.NotNil(t, c, "QEMU's gdbstub on port %s", port)
	defer c.Close()
	continueTo(t, c, tick, false)
	continueTo(t, c, tick, true)
	time.Sleep(reversePause)
	_, err = c.ReverseContinue()
	return err == nil
}

func qemuReverse(t *testing.T, hung *bool) {
	replay := recordGuest(t)
	elf64 := guestSymbols(t)
	tick, counter := symbol(t, elf64, "tick"), symbol(t, elf64, "counter")
	s := startStub(t, replay...)
	c := s.dial(t)
	assert.Equal(t, "+", c.Features()["ReverseStep"], "ReverseStep+ advertised")
	assert.Equal(t, "+", c.Features()["ReverseContinue"], "ReverseContinue+ advertised")

	counterAt := func() uint64 {
		t.Helper()
		var b [8]byte
		n, err := c.ReadMemory(counter, b[:])
		require.NoError(t, err)
		require.Equal(t, 8, n)
		return binary.LittleEndian.Uint64(b[:])
	}

	// Two calls of tick, forward.
	st := continueTo(t, c, tick, false)
	require.Equal(t, rsp.StopHWBreak, st.Kind, "first hit %+v", st)
	first := regs(t, c, "rip", "rbx", "rsp")
	firstCounter := counterAt()
	require.Equal(t, tick, first["rip"])
	st = continueTo(t, c, tick, true)
	require.Equal(t, rsp.StopHWBreak, st.Kind, "second hit %+v", st)
	assert.Equal(t, first["rbx"]+1, regs(t, c, "rbx")["rbx"], "one more loop")
	assert.Equal(t, firstCounter+1, counterAt())

	// reverse-continue: back to the first hit, memory included.
	st = bounded(t, hung, "bc", c.ReverseContinue)
	assert.Equal(t, rsp.StopHWBreak, st.Kind, "reverse-continue %+v", st)
	assert.Empty(t, st.ReplayLog)
	assert.Equal(t, first, regs(t, c, "rip", "rbx", "rsp"))
	assert.Equal(t, firstCounter, counterAt())
	out, err := c.Monitor("when")
	require.NoError(t, err)
	assert.Regexp(t, `^position [1-9]\d*, rip `+fmt.Sprintf("%#x", tick), out)

	// Again: no earlier hit, so the start of the recording.
	st = bounded(t, hung, "bc", c.ReverseContinue)
	assert.Equal(t, "begin", st.ReplayLog, "reverse-continue past the first hit %+v", st)
	assert.Equal(t, uint64(0xfff0), regs(t, c, "rip")["rip"], "the reset vector's offset")
	out, err = c.Monitor("when")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(out, "position 0,"), "when at the start: %q", out)

	// Forward to the first hit again: the replay is the same.
	st, err = c.Continue()
	require.NoError(t, err)
	assert.Equal(t, rsp.StopHWBreak, st.Kind)
	assert.Equal(t, first, regs(t, c, "rip", "rbx", "rsp"))
	require.NoError(t, c.RemoveBreakpoint(rsp.BreakHardware, tick, 1))

	// Steps forward, then the same number back: every register equal.
	const steps = 5
	var seen [][]byte
	for i := 0; i < steps; i++ {
		g, err := c.ReadRegisters()
		require.NoError(t, err)
		seen = append(seen, append([]byte(nil), g...))
		_, err = c.Step()
		require.NoError(t, err)
	}
	assert.NotEqual(t, tick, regs(t, c, "rip")["rip"], "the steps moved")
	assert.Equal(t, firstCounter+1, counterAt(), "incq counter ran")
	for i := steps - 1; i >= 0; i-- {
		st := bounded(t, hung, "bs", c.ReverseStep)
		assert.Equal(t, rsp.SIGTRAP, st.Signal)
		assert.Empty(t, st.ReplayLog)
		g, err := c.ReadRegisters()
		require.NoError(t, err)
		assert.Equal(t, seen[i], g, "registers after reverse step %d", steps-i)
	}
	assert.Equal(t, first, regs(t, c, "rip", "rbx", "rsp"))
	assert.Equal(t, firstCounter, counterAt(), "memory as it was")

	// The monitor form, for LLDB and scripts: one more back is the call.
	bounded(t, hung, "monitor reverse-stepi", func() (rsp.Stop, error) {
		var err error
		out, err = c.Monitor("reverse-stepi")
		return rsp.Stop{}, err
	})
	assert.Regexp(t, `^position [1-9]\d*, rip 0x`, out)
	assert.Equal(t, first["rsp"]+8, regs(t, c, "rsp")["rsp"], "before the call: no return address yet")
}

// continueTo continues to the hardware breakpoint at tick. Continuing
// from a QEMU breakpoint hits it again at once, so from a hit (fromHit)
// it steps off first.
func continueTo(t *testing.T, c *rsp.Client, tick uint64, fromHit bool) rsp.Stop {
	t.Helper()
	if fromHit {
		require.NoError(t, c.RemoveBreakpoint(rsp.BreakHardware, tick, 1))
		_, err := c.Step()
		require.NoError(t, err)
	}
	require.NoError(t, c.SetBreakpoint(rsp.BreakHardware, tick, 1))
	st, err := c.Continue()
	require.NoError(t, err)
	return st
}

// bounded runs one reverse request; after 30 s without an answer it sets
// *hung and skips the attempt: QEMU 7.2 may never answer a bs or bc
// (most often one sent right after its previous stop, which the target's
// pause before each, reversePause, avoids).
func bounded(t *testing.T, hung *bool, what string, f func() (rsp.Stop, error)) rsp.Stop {
	t.Helper()
	type result struct {
		st  rsp.Stop
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := f()
		done <- result{st, err}
	}()
	select {
	case r := <-done:
		require.NoError(t, r.err, what)
		return r.st
	case <-time.After(30 * time.Second):
		*hung = true
		t.Skipf("QEMU did not answer %s within 30 s (see reversePause in reverse.go)", what)
	}
	return rsp.Stop{}
}

// TestQEMUNoReverse: QEMU without record/replay advertises no reverse
// execution, so rspstub neither does nor answers bs/bc, and the reverse
// monitor commands say what is missing.
func TestQEMUNoReverse(t *testing.T) {
	kernel := buildGuest(t)
	s := startStub(t, testkit.QEMUSystemArgs(kernel, 1)...)
	assert.False(t, s.target.Offers(rsp.FeatureReverse))
	c := s.dial(t)
	assert.Empty(t, c.Features()["ReverseStep"])
	assert.Empty(t, c.Features()["ReverseContinue"])
	_, err := c.Request("bs")
	assert.ErrorIs(t, err, rsp.ErrUnsupported, "bs")
	_, err = c.Request("bc")
	assert.ErrorIs(t, err, rsp.ErrUnsupported, "bc")
	for _, cmd := range []string{"reverse-stepi", "reverse-continue", "when"} {
		out, err := c.Monitor(cmd)
		msg := out
		if err != nil {
			msg += err.Error()
		}
		assert.Contains(t, msg, "QEMU was not started with record/replay (-icount shift=N,rr=replay,rrfile=FILE)", cmd)
	}
	// The guest still runs forward.
	_, err = c.Step()
	assert.NoError(t, err)
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
