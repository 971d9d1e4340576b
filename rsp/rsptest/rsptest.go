// Package rsptest checks an rsp.Target against its contract, the way
// testing/fstest.TestFS checks an fs.FS, and serves targets in-process
// for tests.
//
// TestTarget runs one subtest per part of the contract on a live target
// (a backend stopped at its first instruction, or a fake): the register
// layout, registers read and written back (whole and one by one), memory
// read and written back, errors for unmapped memory, a software
// breakpoint that continue stops at and that memory reads do not show,
// a step that moves the PC, LastStop agreeing with what Resume returned,
// the thread list, and, through a real rsp.Server and rsp.Client, that
// every qXfer object qSupported advertises answers with data and belongs
// to an interface the target implements. The target's state (registers,
// scratch memory) is restored where the contract allows; the guest runs
// forward (to Config.Break, then one step).
//
// Each backend's tests call it with what only they know (an address the
// guest will reach, one that is unmapped):
//
//	rsptest.TestTarget(t, tg, rsptest.Config{Break: mainAddr})
package rsptest

import (
	"encoding/binary"
	"log/slog"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/rsp"
)

// Config is what TestTarget needs to know about the guest.
type Config struct {
	// Break is an address the guest reaches when continued from its
	// current stop; continue must stop there on a software breakpoint.
	// Zero skips the breakpoint and continue checks.
	Break uint64
	// Unmapped is an address where no guest memory is mapped: reads and
	// writes there must fail. Zero means the null page, unmapped in
	// every user-mode guest.
	Unmapped uint64
	// Scratch is writable guest memory (64 bytes are written and
	// restored). Zero means below the stack pointer (SP-0x200), read after
	// the continue to Break.
	Scratch uint64
	// Start, when not zero, is an address the guest is first run to (on a
	// hardware breakpoint when the target has them, since a boot loader
	// may still copy code over a software one); the checks then run in
	// the state there. QEMU system uses it to check a CPU in long mode:
	// at reset the CPU is in real mode, where QEMU's gdbstub reads and
	// writes only the low 32 bits of the general registers.
	Start uint64
	// PC and SP name the registers; empty means rip and rsp.
	PC, SP string
}

// TestTarget checks tg against the rsp.Target contract (see the package
// documentation). It calls t.Run for each part; a part whose optional
// interface tg lacks is skipped.
func TestTarget(t *testing.T, tg rsp.Target, cfg Config) {
	t.Helper()
	if cfg.PC == "" {
		cfg.PC = "rip"
	}
	if cfg.SP == "" {
		cfg.SP = "rsp"
	}
	d := tg.Description()
	require.NotNil(t, d, "Description")
	pc, sp := d.Lookup(cfg.PC), d.Lookup(cfg.SP)
	require.GreaterOrEqual(t, pc, 0, "no register %s", cfg.PC)
	require.GreaterOrEqual(t, sp, 0, "no register %s", cfg.SP)
	c := &checker{tg: tg, d: d, pc: pc, sp: sp, cfg: cfg, tid: tg.LastStop().Thread}
	if c.tid == 0 {
		c.tid = 1
	}
	if cfg.Start != 0 {
		c.runTo(t, cfg.Start)
	}

	t.Run("Description", c.description)
	t.Run("Registers", c.registers)
	t.Run("InitialStop", c.initialStop)
	t.Run("Breakpoint", c.breakpoint)
	t.Run("Step", c.step)
	t.Run("Memory", c.memory)
	t.Run("Unmapped", c.unmapped)
	t.Run("Threads", c.threads)
	t.Run("Features", c.features)
}

type checker struct {
	tg      rsp.Target
	d       *rsp.Description
	pc, sp  int
	cfg     Config
	tid     int
	resumed bool
	last    rsp.Stop // what the last Resume returned
}

func (c *checker) description(t *testing.T) {
	assert.NotEmpty(t, c.d.Arch, "Arch")
	size := 0
	names := map[string]bool{}
	for _, r := range c.d.Registers {
		assert.NotEmpty(t, r.Name, "a register without a name")
		assert.False(t, names[r.Name], "register %s twice", r.Name)
		names[r.Name] = true
		assert.Zero(t, r.Bits%8, "register %s: %d bits", r.Name, r.Bits)
		size += r.Bits / 8
	}
	assert.Equal(t, size, c.d.Size(), "Size is the sum of the registers' sizes")
	assert.Equal(t, 64, c.d.Registers[c.pc].Bits, "%s bits", c.cfg.PC)
}

func (c *checker) reg(t *testing.T, i int) []byte {
	t.Helper()
	b := make([]byte, c.d.Registers[i].Bits/8)
	require.NoError(t, c.tg.ReadRegister(c.tid, i, b), "ReadRegister %s", c.d.Registers[i].Name)
	return b
}

func (c *checker) reg64(t *testing.T, i int) uint64 {
	t.Helper()
	return binary.LittleEndian.Uint64(c.reg(t, i))
}

// offsets is each register's byte offset in the ReadRegisters buffer.
func (c *checker) offsets() []int {
	off := make([]int, len(c.d.Registers))
	o := 0
	for i, r := range c.d.Registers {
		off[i] = o
		o += r.Bits / 8
	}
	return off
}

func (c *checker) registers(t *testing.T) {
	all := make([]byte, c.d.Size())
	require.NoError(t, c.tg.ReadRegisters(c.tid, all))
	off := c.offsets()
	// Every register alone reads as its slot of the whole set.
	for i, r := range c.d.Registers {
		assert.Equal(t, all[off[i]:off[i]+r.Bits/8], c.reg(t, i), "register %s alone vs in g", r.Name)
	}

	// One general-purpose register written alone reads back, then is
	// restored.
	gp := c.d.Lookup("rax")
	if gp < 0 {
		gp = 0
	}
	old := c.reg(t, gp)
	v := append([]byte(nil), old...)
	for i := range v {
		v[i] ^= 0x5a
	}
	require.NoError(t, c.tg.WriteRegister(c.tid, gp, v), "WriteRegister %s", c.d.Registers[gp].Name)
	assert.Equal(t, v, c.reg(t, gp), "%s after WriteRegister", c.d.Registers[gp].Name)
	require.NoError(t, c.tg.WriteRegister(c.tid, gp, old))
	assert.Equal(t, old, c.reg(t, gp), "%s restored", c.d.Registers[gp].Name)

	// The whole set written back unchanged reads back unchanged.
	require.NoError(t, c.tg.WriteRegisters(c.tid, all))
	again := make([]byte, c.d.Size())
	require.NoError(t, c.tg.ReadRegisters(c.tid, again))
	assert.Equal(t, all, again, "registers after WriteRegisters of what ReadRegisters gave")
}

func (c *checker) initialStop(t *testing.T) {
	st := c.tg.LastStop()
	assert.NotEqual(t, rsp.StopExited, st.Kind, "the target starts exited")
	assert.NotEqual(t, rsp.StopTerminated, st.Kind, "the target starts terminated")
	assert.Equal(t, st, c.tg.LastStop(), "LastStop is stable while stopped")
}

func (c *checker) resume(t *testing.T, step bool) rsp.Stop {
	t.Helper()
	type result struct {
		st  rsp.Stop
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := c.tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads, Step: step}})
		done <- result{st, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		c.tg.Interrupt()
		r = <-done
		require.FailNow(t, "Resume did not stop within 60s", "step %v; interrupted: %+v %v", step, r.st, r.err)
	}
	require.NoError(t, r.err, "Resume (step %v)", step)
	c.resumed, c.last = true, r.st
	assert.Equal(t, r.st, c.tg.LastStop(), "LastStop is what Resume returned")
	if r.st.Thread != 0 {
		c.tid = r.st.Thread
	}
	return r.st
}

// runTo continues to addr on a breakpoint (hardware when offered).
func (c *checker) runTo(t *testing.T, addr uint64) {
	t.Helper()
	bp, ok := rsp.As[rsp.Breakpointer](c.tg)
	require.True(t, ok, "Config.Start needs a Breakpointer")
	kind := rsp.BreakSoftware
	if bp.SupportsBreakpoint(rsp.BreakHardware) {
		kind = rsp.BreakHardware
	}
	require.NoError(t, bp.InsertBreakpoint(kind, addr, 1), "breakpoint at Config.Start %#x", addr)
	st := c.resume(t, false)
	require.NoError(t, bp.RemoveBreakpoint(kind, addr, 1))
	require.Equal(t, addr, c.reg64(t, c.pc), "run to Config.Start: stopped with %+v", st)
}

func (c *checker) breakpoint(t *testing.T) {
	if c.cfg.Break == 0 {
		t.Skip("no Config.Break: breakpoint and continue not checked")
	}
	bp, ok := rsp.As[rsp.Breakpointer](c.tg)
	if !ok || !bp.SupportsBreakpoint(rsp.BreakSoftware) {
		t.Skip("no software breakpoints")
	}
	addr := c.cfg.Break
	before := make([]byte, 16)
	n, err := c.tg.ReadMemory(addr, before)
	require.NoError(t, err, "read code at %#x", addr)
	require.Equal(t, len(before), n, "read code at %#x", addr)

	require.NoError(t, bp.InsertBreakpoint(rsp.BreakSoftware, addr, 1), "Z0 at %#x", addr)
	during := make([]byte, len(before))
	_, err = c.tg.ReadMemory(addr, during)
	require.NoError(t, err)
	assert.Equal(t, before, during, "memory reads show the original bytes under a breakpoint")

	st := c.resume(t, false)
	assert.Equal(t, rsp.StopSWBreak, st.Kind, "continue stops on the breakpoint: %+v", st)
	assert.Equal(t, rsp.SIGTRAP, st.Signal, "signal of a breakpoint stop")
	assert.Equal(t, addr, c.reg64(t, c.pc), "%s at the breakpoint", c.cfg.PC)

	require.NoError(t, bp.RemoveBreakpoint(rsp.BreakSoftware, addr, 1), "z0 at %#x", addr)
	after := make([]byte, len(before))
	_, err = c.tg.ReadMemory(addr, after)
	require.NoError(t, err)
	assert.Equal(t, before, after, "code after z0")
}

func (c *checker) step(t *testing.T) {
	pc := c.reg64(t, c.pc)
	st := c.resume(t, true)
	assert.Equal(t, rsp.SIGTRAP, st.Signal, "a step stops with SIGTRAP: %+v", st)
	assert.Contains(t, []rsp.StopKind{rsp.StopSignal, rsp.StopSWBreak, rsp.StopHWBreak}, st.Kind, "stop kind after a step: %+v", st)
	assert.NotEqual(t, pc, c.reg64(t, c.pc), "a step moves %s (from %#x)", c.cfg.PC, pc)
}

func (c *checker) scratch(t *testing.T) uint64 {
	if c.cfg.Scratch != 0 {
		return c.cfg.Scratch
	}
	return (c.reg64(t, c.sp) - 0x200) &^ 0xf
}

func (c *checker) memory(t *testing.T) {
	addr := c.scratch(t)
	old := make([]byte, 64)
	n, err := c.tg.ReadMemory(addr, old)
	require.NoError(t, err, "read scratch at %#x", addr)
	require.Equal(t, len(old), n, "read scratch at %#x", addr)

	pat := make([]byte, len(old))
	for i := range pat {
		pat[i] = byte(i*7 + 1)
	}
	n, err = c.tg.WriteMemory(addr, pat)
	require.NoError(t, err, "write scratch at %#x", addr)
	assert.Equal(t, len(pat), n, "bytes written")
	got := make([]byte, len(pat))
	n, err = c.tg.ReadMemory(addr, got)
	require.NoError(t, err)
	assert.Equal(t, pat, got[:n], "scratch reads back what was written")
	// Unaligned, short reads inside the written range.
	one := make([]byte, 3)
	n, err = c.tg.ReadMemory(addr+5, one)
	require.NoError(t, err)
	assert.Equal(t, pat[5:8], one[:n], "3 bytes at +5")
	// An empty read is not an error.
	n, err = c.tg.ReadMemory(addr, nil)
	assert.NoError(t, err, "empty read")
	assert.Zero(t, n, "empty read")

	n, err = c.tg.WriteMemory(addr, old)
	require.NoError(t, err, "restore scratch")
	assert.Equal(t, len(old), n)
}

func (c *checker) unmapped(t *testing.T) {
	addr := c.cfg.Unmapped
	buf := make([]byte, 16)
	n, err := c.tg.ReadMemory(addr, buf)
	assert.Zero(t, n, "bytes read at unmapped %#x", addr)
	assert.Error(t, err, "read at unmapped %#x: n == 0 needs an error", addr)
	n, err = c.tg.WriteMemory(addr, buf)
	assert.False(t, err == nil && n == len(buf), "write at unmapped %#x succeeded (%d bytes)", addr, n)
}

func (c *checker) threads(t *testing.T) {
	tl, ok := rsp.As[rsp.ThreadLister](c.tg)
	if !ok {
		t.Skip("no ThreadLister: the target has thread 1")
	}
	ths := tl.Threads(nil)
	require.NotEmpty(t, ths, "Threads")
	ids := map[int]bool{}
	for _, th := range ths {
		assert.Positive(t, th.ID, "thread ids are positive")
		assert.False(t, ids[th.ID], "thread %d listed twice", th.ID)
		ids[th.ID] = true
	}
	if st := c.tg.LastStop(); st.Thread != 0 {
		assert.True(t, ids[st.Thread], "the stopped thread %d is listed in %v", st.Thread, ths)
	}
}

// xferAnnex is the annex TestTarget reads each qXfer object with.
var xferAnnex = map[string]string{
	"features": "target.xml",
}

// xferOwner says which optional interface must be behind an advertised
// qXfer object (nil: served for every target).
var xferOwner = map[string]func(rsp.Target) bool{
	"features":       nil,
	"threads":        nil,
	"libraries":      func(t rsp.Target) bool { _, ok := rsp.As[rsp.LibraryLister](t); return ok },
	"libraries-svr4": func(t rsp.Target) bool { _, ok := rsp.As[rsp.SVR4LibraryLister](t); return ok },
	"memory-map":     func(t rsp.Target) bool { _, ok := rsp.As[rsp.FixedMemoryMapper](t); return ok },
	"exec-file":      func(t rsp.Target) bool { _, ok := rsp.As[rsp.ExecFiler](t); return ok },
	"auxv":           func(t rsp.Target) bool { _, ok := rsp.As[rsp.AuxvReader](t); return ok },
}

// features serves the target through a real server and checks that
// qSupported advertises only what the target answers.
func (c *checker) features(t *testing.T) {
	cl := Client(t, c.tg)
	CheckAdvertised(t, cl)
	for name, val := range cl.Features() {
		obj, ok := strings.CutPrefix(name, "qXfer:")
		if !ok || val != "+" {
			continue
		}
		obj = strings.TrimSuffix(obj, ":read")
		owner, known := xferOwner[obj]
		if assert.True(t, known, "qSupported advertises %s, which TestTarget does not know", name) && owner != nil {
			assert.True(t, owner(c.tg), "qSupported advertises %s without the interface behind it", name)
		}
	}
	bp, _ := rsp.As[rsp.Breakpointer](c.tg)
	for _, k := range []struct {
		feature string
		kind    rsp.BreakKind
	}{{"swbreak", rsp.BreakSoftware}, {"hwbreak", rsp.BreakHardware}} {
		has := bp != nil && bp.SupportsBreakpoint(k.kind)
		assert.Equal(t, has, cl.Features()[k.feature] == "+", "%s advertised iff the target supports that breakpoint kind", k.feature)
	}
}

// CheckAdvertised asks a connected stub for every qXfer object its
// qSupported reply advertises, and asserts that each answers without an
// error and with data: a stub must advertise only what it answers.
func CheckAdvertised(t *testing.T, cl *rsp.Client) {
	t.Helper()
	var objs []string
	for name, val := range cl.Features() {
		if obj, ok := strings.CutPrefix(name, "qXfer:"); ok && val == "+" && strings.HasSuffix(obj, ":read") {
			objs = append(objs, strings.TrimSuffix(obj, ":read"))
		}
	}
	sort.Strings(objs)
	require.NotEmpty(t, objs, "qSupported advertises no qXfer object (features at least)")
	for _, obj := range objs {
		b, err := cl.ReadXfer(obj, xferAnnex[obj])
		if assert.NoError(t, err, "qXfer:%s:read advertised but fails", obj) {
			assert.NotEmpty(t, b, "qXfer:%s:read advertised but answers empty", obj)
		}
	}
}

// Client serves tg in-process (one rsp.Server session over a pipe) and
// returns a connected client; both end with the test. The target keeps
// its state when the client leaves.
func Client(t testing.TB, tg rsp.Target, opts ...rsp.Option) *rsp.Client {
	t.Helper()
	a, b := net.Pipe()
	srv := rsp.NewServer(tg, append([]rsp.Option{rsp.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	served := make(chan error, 1)
	go func() { served <- srv.ServeConn(a) }()
	cl, err := rsp.NewClient(b, rsp.WithTimeout(30*time.Second))
	require.NoError(t, err, "connect to the in-process server")
	t.Cleanup(func() {
		cl.Close()
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			assert.Fail(t, "the in-process server did not end after its client left")
		}
	})
	return cl
}

// Serve serves tg on a loopback TCP port for real clients (gdb, lldb)
// and returns the address; the server ends with the test.
func Serve(t testing.TB, tg rsp.Target, opts ...rsp.Option) string {
	t.Helper()
	return Start(t, tg, opts...).Addr
}

// Served is a target served in-process on a loopback TCP port: the kit's
// in-process stub for any rsp.Target (a backend's target behind
// debuggee.New, or a fake), where testkit.StartStub runs the rspstub
// binary.
type Served struct {
	Addr   string // host:port, for rsp.Dial, gdb's target remote, lldb's gdb-remote
	Server *rsp.Server
	done   chan struct{}
	err    error // what Serve returned, once done is closed
}

// Start serves tg on a loopback TCP port in this process. The server is
// closed when the test ends, and must then end within 10 s; the target
// is not closed (register its Close with t.Cleanup before calling Start,
// so that it runs after the server's).
func Start(t testing.TB, tg rsp.Target, opts ...rsp.Option) *Served {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &Served{Addr: l.Addr().String(), Server: rsp.NewServer(tg, opts...), done: make(chan struct{})}
	go func() {
		s.err = s.Server.Serve(l)
		close(s.done)
	}()
	t.Cleanup(func() {
		s.Server.Close()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			assert.Fail(t, "the in-process server did not end after Close")
		}
	})
	return s
}

// Wait waits up to timeout for Serve to return by itself (a session
// that kills the guest or sees it exit ends it: rsp.ErrKilled,
// rsp.ErrExited) and returns its error; the test fails when the server
// still serves.
func (s *Served) Wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-s.done:
		return s.err
	case <-time.After(timeout):
		require.FailNow(t, "the in-process server did not end", "waited %v", timeout)
		return nil
	}
}
