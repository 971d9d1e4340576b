package qemu

import (
	"github.com/stretchr/testify/require"

	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

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
	if s.target.Mode() != ModeUser {
		t.Fatalf("mode %v, want user", s.target.Mode())
	}
	c := s.dial(t)

	d := c.Description()
	if d.Lookup("cr0") >= 0 {
		t.Errorf("user mode description has cr0")
	}
	for i, want := range []string{"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp"} {
		if d.Registers[i].Name != want {
			t.Errorf("register %d is %s, want %s (GDB's order, not QEMU's)", i, d.Registers[i].Name, want)
		}
	}
	r := regs(t, c, "rip", "rsp", "eflags", "cs", "fs_base")
	if r["rip"] == 0 || r["rsp"] == 0 || r["cs"] != 0x33 {
		t.Errorf("registers at entry: %#x", r)
	}
	// g agrees with p, mapped by name.
	g, err := c.ReadRegisters()
	require.NoError(t, err)
	if pc := binary.LittleEndian.Uint64(g[d.Registers[rsp.AMD64RIP].Offset:]); pc != r["rip"] {
		t.Errorf("g has rip %#x, p %#x", pc, r["rip"])
	}

	// Register writes: P, and G of the whole block, both mapped by name.
	require.NoError(t, c.WriteRegisterUint("r12", 0x1122334455667788))
	binary.LittleEndian.PutUint64(g[d.Registers[rsp.AMD64RBX].Offset:], 0xabcdef)
	binary.LittleEndian.PutUint64(g[d.Registers[rsp.AMD64R12].Offset:], 0x1122334455667788)
	if _, err := c.Request("G" + hex.EncodeToString(g)); err != nil {
		t.Fatal(err)
	}
	if w := regs(t, c, "rbx", "r12", "rip"); w["rbx"] != 0xabcdef || w["r12"] != 0x1122334455667788 || w["rip"] != r["rip"] {
		t.Errorf("after P and G: %#x", w)
	}

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
	if top == 0 {
		t.Fatal("no end of the stack mapping found")
	}
	buf := make([]byte, 0x200)
	n, err := c.ReadMemory(top-16, buf)
	if n != 16 {
		t.Errorf("read across the end of the stack: %d bytes (%v), want the 16 readable", n, err)
	}
	// Through `m` directly: one packet that crosses the edge.
	rep, err := c.Request("m" + hexAddr(top-8) + ",20")
	if err != nil || len(rep) != 16 {
		t.Errorf("m across the edge = %q, %v; want 8 bytes", rep, err)
	}

	// A breakpoint is reported as swbreak at its address.
	require.NoError(t, c.SetBreakpoint(rsp.BreakSoftware, bump, 1))
	st, err := c.Continue()
	require.NoError(t, err)
	if st.Kind != rsp.StopSWBreak {
		t.Errorf("stop %+v, want swbreak", st)
	}
	if pc := regs(t, c, "rip")["rip"]; pc != bump {
		t.Errorf("stopped at %#x, want bump %#x", pc, bump)
	}
	require.NoError(t, c.RemoveBreakpoint(rsp.BreakSoftware, bump, 1))

	// qemu-user has no watchpoints: rspstub emulates them.
	require.NoError(t, c.SetBreakpoint(rsp.WatchWrite, counter, 8))
	st, err = c.Continue()
	require.NoError(t, err)
	if st.Kind != rsp.StopWatch || st.Addr != counter {
		t.Errorf("stop %+v, want watch:%x", st, counter)
	}
	var v [8]byte
	if _, err := c.ReadMemory(counter, v[:]); err != nil || binary.LittleEndian.Uint64(v[:]) != 1 {
		t.Errorf("counter = %x (%v), want 1 after the first write", v, err)
	}
	require.NoError(t, c.RemoveBreakpoint(rsp.WatchWrite, counter, 8))
	// A read watchpoint: bump reads counter before writing it back.
	require.NoError(t, c.SetBreakpoint(rsp.WatchRead, counter, 8))
	st, err = c.Continue()
	require.NoError(t, err)
	if st.Kind != rsp.StopRWatch || st.Addr != counter {
		t.Errorf("stop %+v, want rwatch:%x", st, counter)
	}
	require.NoError(t, c.RemoveBreakpoint(rsp.WatchRead, counter, 8))

	// A step moves the PC by one instruction.
	before := regs(t, c, "rip")["rip"]
	st, err = c.Step()
	if err != nil || st.Kind != rsp.StopSignal || st.Signal != rsp.SIGTRAP {
		t.Errorf("step: %+v, %v", st, err)
	}
	if after := regs(t, c, "rip")["rip"]; after == before || after-before > 15 {
		t.Errorf("step went from %#x to %#x", before, after)
	}

	// Writes go through (X from us becomes M to QEMU). bump is between
	// its load and its store of counter, so the value does not last.
	binary.LittleEndian.PutUint64(v[:], 40)
	require.NoError(t, c.WriteMemory(counter, v[:]))
	if _, err := c.ReadMemory(counter, v[:]); err != nil || binary.LittleEndian.Uint64(v[:]) != 40 {
		t.Errorf("counter = %x (%v) after writing 40", v, err)
	}
	st, err = c.Continue()
	require.NoError(t, err)
	if st.Kind != rsp.StopExited || st.ExitCode != 7 {
		t.Errorf("stop %+v, want an exit with code 7", st)
	}
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
	// The SIGINT that stopped it is not delivered on the next resume:
	// the next stop is the breakpoint.
	bump, main := symbol(t, prog, "bump"), symbol(t, prog, "main")
	require.NoError(t, c.SetBreakpoint(rsp.BreakSoftware, bump, 1))
	st, err := c.Continue()
	if err != nil || st.Kind != rsp.StopSWBreak {
		t.Fatalf("stop %+v %v, want swbreak", st, err)
	}
	require.NoError(t, c.RemoveBreakpoint(rsp.BreakSoftware, bump, 1))
	// Range stepping (done locally: QEMU has no vCont;r) over bump ends
	// back in main.
	st, err = c.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads, Step: true, RangeStart: bump, RangeEnd: main}})
	if err != nil || st.Kind != rsp.StopSignal || st.Signal != rsp.SIGTRAP {
		t.Errorf("range step: %+v %v", st, err)
	}
	if pc := regs(t, c, "rip")["rip"]; pc < main || pc >= main+0x100 {
		t.Errorf("range step over bump stopped at %#x, want in main (%#x)", pc, main)
	}
	if err := c.Kill(); err != nil {
		t.Error(err)
	}
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
	if err != nil || len(auxv) < 32 || len(auxv)%16 != 0 || binary.LittleEndian.Uint64(auxv[len(auxv)-16:]) != 0 {
		t.Fatalf("ReadAuxv = %d bytes, %v; want AT_NULL-terminated pairs", len(auxv), err)
	}
	// The Windows-form library list is not offered for a Linux program
	// (the SVR4 one is); the seam's modules are what the monitor sees.
	if _, err := c.ReadXfer("libraries", ""); err == nil {
		t.Errorf("qXfer:libraries answered for a Linux program")
	}
	if out := mon(t, c, "modules"); !strings.Contains(out, prog) {
		t.Errorf("modules:\n%s", out)
	}
	if !bytes.Equal(gotAuxv, auxv) {
		t.Errorf("the seam got %d bytes of auxv, QEMU has %d", len(gotAuxv), len(auxv))
	}
	if out := mon(t, c, "discovery"); !strings.Contains(out, "ELF link map") || !strings.Contains(out, "problem: seam called") {
		t.Errorf("discovery:\n%s", out)
	}
	monErr(t, c, "teb", "no TEB")
}
