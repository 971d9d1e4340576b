package qemu

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/guest/winproc"
	"github.com/rspstub/rspstub/rsp"
)

// TestUser drives qemu-x86_64 running testdata/hello.c through rspstub
// with the Go client: registers by name, a read into unmapped memory, a
// breakpoint reported as swbreak, an emulated watchpoint, a step, and
// the exit.
func TestUser(t *testing.T) {
	prog := buildHello(t)
	bump, counter := symbol(t, prog, "bump"), symbol(t, prog, "counter")
	s := startStub(t, "qemu-x86_64", prog)
	require.Equal(t, ModeUser, s.target.Mode(), "mode")
	c := s.dial(t)

	d := c.Description()
	assert.Negative(t, d.Lookup("cr0"), "user mode description has cr0")
	for i, want := range []string{"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp"} {
		assert.Equal(t, want, d.Registers[i].Name, "register %d (GDB's order, not QEMU's)", i)
	}
	r := regs(t, c, "rip", "rsp", "eflags", "cs", "fs_base")
	assert.NotZero(t, r["rip"], "rip at entry")
	assert.NotZero(t, r["rsp"], "rsp at entry")
	assert.Equal(t, uint64(0x33), r["cs"], "cs at entry")
	// g agrees with p, mapped by name.
	g, err := c.ReadRegisters()
	require.NoError(t, err)
	assert.Equal(t, r["rip"], binary.LittleEndian.Uint64(g[d.Registers[rsp.AMD64RIP].Offset:]), "rip in g, against p")

	// Register writes: P, and G of the whole block, both mapped by name.
	require.NoError(t, c.WriteRegisterUint("r12", 0x1122334455667788))
	binary.LittleEndian.PutUint64(g[d.Registers[rsp.AMD64RBX].Offset:], 0xabcdef)
	binary.LittleEndian.PutUint64(g[d.Registers[rsp.AMD64R12].Offset:], 0x1122334455667788)
	_, err = c.Request("G" + hex.EncodeToString(g))
	require.NoError(t, err)
	assert.Equal(t, map[string]uint64{"rbx": 0xabcdef, "r12": 0x1122334455667788, "rip": r["rip"]}, regs(t, c, "rbx", "r12", "rip"), "after P and G")

	// The stack is the highest mapping: find its last page, then read
	// across its end.
	page := make([]byte, 4096)
	top := uint64(0)
	for a, i := r["rsp"]&^0xfff, 0; i < 256; a, i = a+4096, i+1 {
		n, err := c.ReadMemory(a, page)
		if n < len(page) {
			top = a + uint64(n)
			t.Logf("stack ends at %#x (read at %#x: %d bytes, %v)", top, a, n, err)
			break
		}
	}
	require.NotZero(t, top, "no end of the stack mapping found")
	buf := make([]byte, 0x200)
	n, err := c.ReadMemory(top-16, buf)
	assert.Equal(t, 16, n, "read across the end of the stack: want the 16 readable bytes (%v)", err)
	// Through `m` directly: one packet that crosses the edge.
	rep, err := c.Request("m" + hexAddr(top-8) + ",20")
	if assert.NoError(t, err, "m across the edge") {
		assert.Len(t, rep, 16, "m across the edge: want 8 bytes")
	}

	// A breakpoint is reported as swbreak at its address.
	require.NoError(t, c.SetBreakpoint(rsp.BreakSoftware, bump, 1))
	st, err := c.Continue()
	require.NoError(t, err)
	assert.Equal(t, rsp.StopSWBreak, st.Kind, "stop %+v, want swbreak", st)
	assert.Equal(t, bump, regs(t, c, "rip")["rip"], "stopped at, want bump")
	require.NoError(t, c.RemoveBreakpoint(rsp.BreakSoftware, bump, 1))

	// qemu-user has no watchpoints: rspstub emulates them.
	require.NoError(t, c.SetBreakpoint(rsp.WatchWrite, counter, 8))
	st, err = c.Continue()
	require.NoError(t, err)
	assert.Equal(t, rsp.StopWatch, st.Kind, "stop %+v, want watch", st)
	assert.Equal(t, counter, st.Addr, "stop %+v: watched address", st)
	var v [8]byte
	_, err = c.ReadMemory(counter, v[:])
	if assert.NoError(t, err, "read counter") {
		assert.Equal(t, uint64(1), binary.LittleEndian.Uint64(v[:]), "counter after the first write")
	}
	require.NoError(t, c.RemoveBreakpoint(rsp.WatchWrite, counter, 8))
	// A read watchpoint: bump reads counter before writing it back.
	require.NoError(t, c.SetBreakpoint(rsp.WatchRead, counter, 8))
	st, err = c.Continue()
	require.NoError(t, err)
	assert.Equal(t, rsp.StopRWatch, st.Kind, "stop %+v, want rwatch", st)
	assert.Equal(t, counter, st.Addr, "stop %+v: watched address", st)
	require.NoError(t, c.RemoveBreakpoint(rsp.WatchRead, counter, 8))

	// A step moves the PC by one instruction.
	before := regs(t, c, "rip")["rip"]
	st, err = c.Step()
	if assert.NoError(t, err, "step") {
		assert.Equal(t, rsp.StopSignal, st.Kind, "step: %+v", st)
		assert.Equal(t, rsp.SIGTRAP, st.Signal, "step: %+v", st)
	}
	after := regs(t, c, "rip")["rip"]
	assert.True(t, after != before && after-before <= 15, "step went from %#x to %#x", before, after)

	// Writes go through (X from us becomes M to QEMU). bump is between
	// its load and its store of counter, so the value does not last.
	binary.LittleEndian.PutUint64(v[:], 40)
	require.NoError(t, c.WriteMemory(counter, v[:]))
	_, err = c.ReadMemory(counter, v[:])
	if assert.NoError(t, err, "read counter") {
		assert.Equal(t, uint64(40), binary.LittleEndian.Uint64(v[:]), "counter after writing 40")
	}
	st, err = c.Continue()
	require.NoError(t, err)
	assert.Equal(t, rsp.StopExited, st.Kind, "stop %+v, want an exit with code 7", st)
	assert.Equal(t, 7, st.ExitCode, "stop %+v, want an exit with code 7", st)
	c.Close()
	s.waitServed(t, rsp.ErrExited)
}

func hexAddr(a uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	i := len(b)
	for {
		i--
		b[i] = digits[a&15]
		a >>= 4
		if a == 0 {
			return string(b[i:])
		}
	}
}

// TestUserInterrupt: Ctrl-C stops a spinning qemu-user program.
func TestUserInterrupt(t *testing.T) {
	prog := buildHello(t)
	s := startStub(t, "qemu-x86_64", prog, "spin")
	c := s.dial(t)
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
	// The SIGINT that stopped it is not delivered on the next resume:
	// the next stop is the breakpoint.
	bump, main := symbol(t, prog, "bump"), symbol(t, prog, "main")
	require.NoError(t, c.SetBreakpoint(rsp.BreakSoftware, bump, 1))
	st, err := c.Continue()
	require.NoError(t, err, "continue to bump")
	require.Equal(t, rsp.StopSWBreak, st.Kind, "stop %+v, want swbreak", st)
	require.NoError(t, c.RemoveBreakpoint(rsp.BreakSoftware, bump, 1))
	// Range stepping (done locally: QEMU has no vCont;r) over bump ends
	// back in main.
	st, err = c.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads, Step: true, RangeStart: bump, RangeEnd: main}})
	if assert.NoError(t, err, "range step") {
		assert.Equal(t, rsp.StopSignal, st.Kind, "range step: %+v", st)
		assert.Equal(t, rsp.SIGTRAP, st.Signal, "range step: %+v", st)
	}
	pc := regs(t, c, "rip")["rip"]
	assert.True(t, pc >= main && pc < main+0x100, "range step over bump stopped at %#x, want in main (%#x)", pc, main)
	assert.NoError(t, c.Kill())
	s.waitServed(t, rsp.ErrKilled)
}

// TestUserModulesSeam: in qemu-user the target reads the auxiliary
// vector once and hands it, with guest memory, to Options.UserModules;
// what that returns is the module list (monitor modules, bt).
func TestUserModulesSeam(t *testing.T) {
	prog := buildHello(t)
	var gotAuxv []byte
	seam := func(mem winproc.Memory, auxv []byte) ([]winproc.Module, []string, error) {
		gotAuxv = auxv
		// AT_PHDR (3): the program headers are readable through mem.
		var phdr uint64
		for i := 0; i+16 <= len(auxv); i += 16 {
			if binary.LittleEndian.Uint64(auxv[i:]) == 3 {
				phdr = binary.LittleEndian.Uint64(auxv[i+8:])
			}
		}
		var b [4]byte
		if n, err := mem.ReadMemory(phdr, b[:]); n != 4 {
			return nil, nil, fmt.Errorf("read AT_PHDR %#x: %v", phdr, err)
		}
		return []winproc.Module{{Name: "hello", Path: prog, Base: phdr &^ 0xfff, Size: 0x1000}}, []string{"seam called"}, nil
	}
	s := startStubWith(t, Options{UserModules: seam}, "qemu-x86_64", prog)
	c := s.dial(t)
	auxv, err := s.target.Client().ReadAuxv()
	require.NoError(t, err, "ReadAuxv")
	require.GreaterOrEqual(t, len(auxv), 32, "ReadAuxv: want AT_NULL-terminated pairs")
	require.Zero(t, len(auxv)%16, "ReadAuxv = %d bytes: want pairs", len(auxv))
	require.Zero(t, binary.LittleEndian.Uint64(auxv[len(auxv)-16:]), "ReadAuxv: want AT_NULL last")
	// The Windows-form library list is not offered for a Linux program
	// (the SVR4 one is); the seam's modules are what the monitor sees.
	_, err = c.ReadXfer("libraries", "")
	assert.Error(t, err, "qXfer:libraries answered for a Linux program")
	assert.Contains(t, mon(t, c, "modules"), prog, "modules")
	assert.Equal(t, auxv, gotAuxv, "the auxv the seam got, against QEMU's")
	disc := mon(t, c, "discovery")
	assert.Contains(t, disc, "ELF link map", "discovery")
	assert.Contains(t, disc, "problem: seam called", "discovery")
	monErr(t, c, "teb", "no TEB")
}
