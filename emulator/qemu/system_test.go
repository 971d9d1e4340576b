package qemu

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

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
	if s.target.Mode() != ModeSystem {
		t.Fatalf("mode %v, want system", s.target.Mode())
	}
	c := s.dial(t)
	for _, n := range []string{"cr0", "cr2", "cr3", "cr4", "cr8", "efer", "k_gs_base", "fs_base", "gs_base"} {
		if c.Description().Lookup(n) < 0 {
			t.Errorf("no register %s in system mode", n)
		}
	}

	// Two vCPUs are two threads.
	rep, err := c.Request("qfThreadInfo")
	if err != nil || rep != "m1,2" {
		t.Errorf("qfThreadInfo = %q, %v; want m1,2", rep, err)
	}
	if extra, err := c.Request("qThreadExtraInfo,2"); err != nil || !strings.Contains(hexText(t, extra), "vCPU 1") {
		t.Errorf("qThreadExtraInfo,2 = %q, %v", extra, err)
	}

	// A hardware breakpoint in tick, reached after boot in long mode.
	require.NoError(t, c.SetBreakpoint(rsp.BreakHardware, tick, 1))
	st, err := c.Continue()
	require.NoError(t, err)
	if st.Kind != rsp.StopHWBreak || st.Thread != 1 {
		t.Errorf("stop %+v, want hwbreak on thread 1", st)
	}
	r := regs(t, c, "rip", "cr0", "cr3", "cr4", "efer", "cs")
	if r["rip"] != tick {
		t.Errorf("rip %#x, want tick %#x", r["rip"], tick)
	}
	if r["cr0"]&0x80000001 != 0x80000001 || r["cr4"]&0x20 == 0 || r["efer"]&0x500 != 0x500 || r["cs"] != 8 {
		t.Errorf("not in long mode: %#x", r)
	}
	if want := symbol(t, elf64, "pml4"); r["cr3"] != want {
		t.Errorf("cr3 %#x, want pml4 %#x", r["cr3"], want)
	}
	require.NoError(t, c.RemoveBreakpoint(rsp.BreakHardware, tick, 1))

	// One step: push %rbp is one byte.
	st, err = c.Step()
	if err != nil || st.Signal != rsp.SIGTRAP {
		t.Errorf("step: %+v %v", st, err)
	}
	if pc := regs(t, c, "rip")["rip"]; pc != tick+1 {
		t.Errorf("after a step rip %#x, want %#x", pc, tick+1)
	}

	// A software breakpoint is reported as swbreak.
	loop := symbol(t, elf64, "loop")
	require.NoError(t, c.SetBreakpoint(rsp.BreakSoftware, loop, 1))
	st, err = c.Continue()
	if err != nil || st.Kind != rsp.StopSWBreak {
		t.Errorf("stop %+v %v, want swbreak", st, err)
	}
	require.NoError(t, c.RemoveBreakpoint(rsp.BreakSoftware, loop, 1))

	// QEMU's own write watchpoint, with its address.
	require.NoError(t, c.SetBreakpoint(rsp.WatchWrite, counter, 8))
	st, err = c.Continue()
	if err != nil || st.Kind != rsp.StopWatch || st.Addr != counter {
		t.Errorf("stop %+v %v, want watch:%x", st, err, counter)
	}
	require.NoError(t, c.RemoveBreakpoint(rsp.WatchWrite, counter, 8))

	// The page tables map 4 MiB: a read across the end gives the prefix.
	buf := make([]byte, 0x200)
	if n, err := c.ReadMemory(0x400000-24, buf); n != 24 {
		t.Errorf("read across 0x400000: %d bytes (%v), want 24", n, err)
	}

	// Interrupt the running loop.
	done := make(chan rsp.Stop, 1)
	go func() {
		st, err := c.Continue()
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	require.NoError(t, c.Interrupt())
	select {
	case st := <-done:
		t.Logf("interrupt answered in %v", time.Since(start))
		if st.Signal != rsp.SIGINT {
			t.Errorf("stop %+v, want SIGINT", st)
		}
	case <-time.After(10 * time.Second):
		// A hang bound, not a latency figure (the log line is that).
		t.Fatal("no stop within 10 s of the interrupt")
	}
	var v [8]byte
	if _, err := c.ReadMemory(counter, v[:]); err != nil || binary.LittleEndian.Uint64(v[:]) < 2 {
		t.Errorf("counter %d (%v): the loop did not run", binary.LittleEndian.Uint64(v[:]), err)
	}

	// Registers of the second vCPU (halted, waiting for a SIPI).
	if _, err := c.Request("Hg2"); err != nil {
		t.Fatal(err)
	}
	// SeaBIOS left the AP halted in 32-bit protected mode.
	if ap := regs(t, c, "cr0", "efer"); ap["cr0"]&0x80000000 != 0 || ap["efer"]&0x400 != 0 {
		t.Errorf("vCPU 1 %#x: should not be in long mode", ap)
	}
	if _, err := c.Request("Hg1"); err != nil {
		t.Fatal(err)
	}

	// Monitor commands.
	out, err := c.Monitor("qemu info registers")
	if err != nil || !strings.Contains(out, "RIP=") || strings.Contains(out, "\r") {
		t.Errorf("monitor qemu info registers = %q, %v", out, err)
	}
	out, err = c.Monitor("help")
	if err != nil || !strings.Contains(out, "qemu CMD") {
		t.Errorf("monitor help = %q, %v", out, err)
	}
	if out, err := c.Monitor("nonsense"); err == nil || !strings.Contains(out, "monitor help") {
		t.Errorf("monitor nonsense = %q, %v; want an error", out, err)
	}
	if rep, err := c.Request("qProcessInfo"); err != nil || !strings.Contains(rep, "ostype:none") {
		t.Errorf("qProcessInfo = %q, %v", rep, err)
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
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	time.Sleep(200 * time.Millisecond)
	s.proc.Stop(0)
	select {
	case st := <-done:
		if st.Kind != rsp.StopTerminated && st.Kind != rsp.StopExited {
			t.Errorf("stop %+v, want exited or terminated", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no stop after QEMU was killed")
	}
	if _, err := c.ReadRegisterUint("rip"); err == nil {
		t.Errorf("read a register of a gone QEMU")
	}
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
