package qemu

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
)

// TestSystem drives qemu-system-x86_64 booting testdata/guest.S with two
// vCPUs: system registers, breakpoint, step, interrupt, threads,
// watchpoint, a read across the end of the page tables' mapping, and
// QEMU's monitor.
func TestSystem(t *testing.T) {
	kernel := buildGuest(t)
	elf64 := guestSymbols(t)
	tick, counter := symbol(t, elf64, "tick"), symbol(t, elf64, "counter")
	s := startStub(t, testkit.QEMUSystemArgs(kernel, 2)...)
	require.Equal(t, ModeSystem, s.target.Mode(), "mode")
	c := s.dial(t)
	for _, n := range []string{"cr0", "cr2", "cr3", "cr4", "cr8", "efer", "k_gs_base", "fs_base", "gs_base"} {
		assert.GreaterOrEqual(t, c.Description().Lookup(n), 0, "no register %s in system mode", n)
	}

	// Two vCPUs are two threads.
	rep, err := c.Request("qfThreadInfo")
	if assert.NoError(t, err, "qfThreadInfo") {
		assert.Equal(t, "m1,2", rep, "qfThreadInfo")
	}
	extra, err := c.Request("qThreadExtraInfo,2")
	if assert.NoError(t, err, "qThreadExtraInfo,2") {
		assert.Contains(t, hexText(t, extra), "vCPU 1", "qThreadExtraInfo,2")
	}

	// A hardware breakpoint in tick, reached after boot in long mode.
	require.NoError(t, c.SetBreakpoint(rsp.BreakHardware, tick, 1))
	st, err := c.Continue()
	require.NoError(t, err)
	assert.Equal(t, rsp.StopHWBreak, st.Kind, "stop %+v, want hwbreak on thread 1", st)
	assert.Equal(t, 1, st.Thread, "stop %+v, want hwbreak on thread 1", st)
	r := regs(t, c, "rip", "cr0", "cr3", "cr4", "efer", "cs")
	assert.Equal(t, tick, r["rip"], "rip, want tick")
	assert.Equal(t, uint64(0x80000001), r["cr0"]&0x80000001, "cr0: PG and PE")
	assert.NotZero(t, r["cr4"]&0x20, "cr4: PAE")
	assert.Equal(t, uint64(0x500), r["efer"]&0x500, "efer: LME and LMA")
	assert.Equal(t, uint64(8), r["cs"], "cs: the 64-bit code selector")
	assert.Equal(t, symbol(t, elf64, "pml4"), r["cr3"], "cr3, want pml4")
	require.NoError(t, c.RemoveBreakpoint(rsp.BreakHardware, tick, 1))

	// One step: push %rbp is one byte.
	st, err = c.Step()
	if assert.NoError(t, err, "step") {
		assert.Equal(t, rsp.SIGTRAP, st.Signal, "step: %+v", st)
	}
	assert.Equal(t, tick+1, regs(t, c, "rip")["rip"], "rip after a step")

	// A software breakpoint is reported as swbreak.
	loop := symbol(t, elf64, "loop")
	require.NoError(t, c.SetBreakpoint(rsp.BreakSoftware, loop, 1))
	st, err = c.Continue()
	if assert.NoError(t, err, "continue to loop") {
		assert.Equal(t, rsp.StopSWBreak, st.Kind, "stop %+v, want swbreak", st)
	}
	require.NoError(t, c.RemoveBreakpoint(rsp.BreakSoftware, loop, 1))

	// QEMU's own write watchpoint, with its address.
	require.NoError(t, c.SetBreakpoint(rsp.WatchWrite, counter, 8))
	st, err = c.Continue()
	if assert.NoError(t, err, "continue to the watchpoint") {
		assert.Equal(t, rsp.StopWatch, st.Kind, "stop %+v, want watch", st)
		assert.Equal(t, counter, st.Addr, "stop %+v: watched address", st)
	}
	require.NoError(t, c.RemoveBreakpoint(rsp.WatchWrite, counter, 8))

	// The page tables map 4 MiB: a read across the end gives the prefix.
	buf := make([]byte, 0x200)
	n, err := c.ReadMemory(0x400000-24, buf)
	assert.Equal(t, 24, n, "read across 0x400000: bytes (%v)", err)

	// Interrupt the running loop.
	done := make(chan rsp.Stop, 1)
	go func() {
		st, err := c.Continue()
		assert.NoError(t, err, "continue")
		done <- st
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	require.NoError(t, c.Interrupt())
	select {
	case st := <-done:
		t.Logf("interrupt answered in %v", time.Since(start))
		assert.Equal(t, rsp.SIGINT, st.Signal, "stop %+v, want SIGINT", st)
	case <-time.After(10 * time.Second):
		// A hang bound, not a latency figure (the log line is that).
		require.FailNow(t, "no stop within 10 s of the interrupt")
	}
	var v [8]byte
	_, err = c.ReadMemory(counter, v[:])
	if assert.NoError(t, err, "read counter") {
		assert.GreaterOrEqual(t, binary.LittleEndian.Uint64(v[:]), uint64(2), "counter: the loop did not run")
	}

	// Registers of the second vCPU (halted, waiting for a SIPI).
	_, err = c.Request("Hg2")
	require.NoError(t, err)
	// SeaBIOS left the AP halted in 32-bit protected mode.
	ap := regs(t, c, "cr0", "efer")
	assert.Zero(t, ap["cr0"]&0x80000000, "vCPU 1 cr0 %#x: should not be in long mode (PG)", ap["cr0"])
	assert.Zero(t, ap["efer"]&0x400, "vCPU 1 efer %#x: should not be in long mode (LMA)", ap["efer"])
	_, err = c.Request("Hg1")
	require.NoError(t, err)

	// Monitor commands.
	out, err := c.Monitor("qemu info registers")
	if assert.NoError(t, err, "monitor qemu info registers") {
		assert.Contains(t, out, "RIP=", "monitor qemu info registers")
		assert.NotContains(t, out, "\r", "monitor qemu info registers")
	}
	out, err = c.Monitor("help")
	if assert.NoError(t, err, "monitor help") {
		assert.Contains(t, out, "qemu CMD", "monitor help")
	}
	out, err = c.Monitor("nonsense")
	assert.Error(t, err, "monitor nonsense = %q", out)
	assert.Contains(t, out, "monitor help", "monitor nonsense")
	rep, err = c.Request("qProcessInfo")
	if assert.NoError(t, err, "qProcessInfo") {
		assert.Contains(t, rep, "ostype:none", "qProcessInfo")
	}
}

// TestSystemGone: QEMU ending under a running guest is a terminated
// stop, then every request fails cleanly.
func TestSystemGone(t *testing.T) {
	kernel := buildGuest(t)
	s := startStub(t, testkit.QEMUSystemArgs(kernel, 1)...)
	c := s.dial(t)
	done := make(chan rsp.Stop, 1)
	go func() {
		st, err := c.Continue()
		assert.NoError(t, err, "continue")
		done <- st
	}()
	time.Sleep(200 * time.Millisecond)
	s.proc.Stop(0)
	select {
	case st := <-done:
		assert.Contains(t, []rsp.StopKind{rsp.StopTerminated, rsp.StopExited}, st.Kind, "stop %+v, want exited or terminated", st)
	case <-time.After(5 * time.Second):
		require.FailNow(t, "no stop after QEMU was killed")
	}
	_, err := c.ReadRegisterUint("rip")
	assert.Error(t, err, "read a register of a gone QEMU")
	c.Close()
	s.waitServed(t, rsp.ErrExited)
}

func hexText(t *testing.T, h string) string {
	t.Helper()
	b := make([]byte, len(h)/2)
	for i := range b {
		var v byte
		for _, c := range h[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			case c >= 'a' && c <= 'f':
				v |= byte(c - 'a' + 10)
			}
		}
		b[i] = v
	}
	return string(b)
}
