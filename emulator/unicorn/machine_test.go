package unicorn

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/arch"
)

func TestMapRegions(t *testing.T) {
	m := newMachine(t, nil)
	got := m.Regions()
	want := []Region{
		{codeBase, codeSize, arch.PermRX},
		{stackBase, stackSize, arch.PermRW},
		{dataBase, dataSize, arch.PermRW},
	}
	if len(got) != len(want) {
		t.Fatalf("regions %+v", got)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("regions %+v, want %+v", got, want)
		}
	}
	for _, bad := range [][2]uint64{{0x1001, 0x1000}, {0x1000, 0x800}, {0x1000, 0}, {^uint64(0) &^ 0xfff, 0x2000}} {
		if err := m.Map(bad[0], bad[1], arch.PermRW); err == nil {
			t.Errorf("Map(%#x, %#x) accepted", bad[0], bad[1])
		}
	}
	if err := m.Map(codeBase, 0x1000, arch.PermRW); err == nil {
		t.Error("overlapping Map accepted")
	}
	must(t, m.Protect(dataBase, dataSize, arch.PermRead))
	must(t, m.Unmap(stackBase, stackSize))
	if r := m.Regions(); len(r) != 2 || r[1].Perm != arch.PermRead {
		t.Fatalf("regions %+v", r)
	}
}

func TestMemoryPrefix(t *testing.T) {
	m := newMachine(t, nil)
	// The data page is followed by unmapped memory: a read across the end
	// returns the readable prefix.
	end := uint64(dataBase + dataSize)
	if _, err := m.WriteMemory(end-4, []byte{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0x200)
	n, err := m.ReadMemory(end-4, buf)
	if n != 4 || err != nil || !bytes.Equal(buf[:4], []byte{1, 2, 3, 4}) {
		t.Fatalf("read across the end: n=%d err=%v % x", n, err, buf[:4])
	}
	if n, err := m.ReadMemory(end, buf); n != 0 || err == nil {
		t.Fatalf("read of unmapped memory: n=%d err=%v", n, err)
	}
	if n, err := m.WriteMemory(end-2, []byte{9, 9, 9, 9}); n != 2 || err != nil {
		t.Fatalf("write across the end: n=%d err=%v", n, err)
	}
	if n, err := m.ReadMemory(^uint64(0)-1, buf[:8]); n != 0 || err == nil {
		t.Fatalf("read at the top of the address space: n=%d err=%v", n, err)
	}
	// A read spanning two adjacent regions with different permissions is
	// whole; debugger access ignores guest protections.
	must(t, m.Map(end, 0x1000, arch.PermNone))
	if n, err := m.ReadMemory(end-4, buf[:8]); n != 8 || err != nil {
		t.Fatalf("read across regions: n=%d err=%v", n, err)
	}
	if n, err := m.WriteMemory(codeBase, []byte{0x90}); n != 1 || err != nil {
		t.Fatalf("write to r-x code: n=%d err=%v", n, err)
	}
	if n, err := m.WriteMemory(end, []byte{7}); n != 1 || err != nil {
		t.Fatalf("write to no-access page: n=%d err=%v", n, err)
	}
	if n, err := m.ReadMemory(0, nil); n != 0 || err != nil {
		t.Fatalf("empty read: %d %v", n, err)
	}
}

func TestContext(t *testing.T) {
	m := newMachine(t, []byte{
		0x66, 0x48, 0x0f, 0x6e, 0xc8, // 10000: movq xmm1, rax
		0xd9, 0xe8, // 10005: fld1
		0xf4, // 10007: hlt
	})
	var c Context
	must(t, m.ReadContext(&c))
	for i := range c.GPR {
		c.GPR[i] = uint64(i+1) * 0x1111
	}
	c.GPR[arch.RSP] = stackTop
	c.GPR[arch.RAX] = 0x0123456789abcdef
	c.FSBase = 0x7000
	c.GSBase = 0x8000
	c.RIP = codeBase
	must(t, m.WriteContext(&c))
	for r := arch.RAX; r <= arch.R15; r++ {
		if v := reg(t, m, r); v != c.GPR[r] {
			t.Fatalf("%v = %#x, want %#x", r, v, c.GPR[r])
		}
	}
	if v := reg(t, m, arch.GSBase); v != 0x8000 {
		t.Fatalf("gs_base %#x", v)
	}
	wantStop(t, m, m.Run(), StopHalt, codeBase+8)
	var d Context
	must(t, m.ReadContext(&d))
	if got := binary.LittleEndian.Uint64(d.XMM[1][:]); got != 0x0123456789abcdef {
		t.Fatalf("xmm1 = %#x", got)
	}
	one := [10]byte{0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f} // 1.0 as float80
	top := (d.FSTAT >> 11) & 7
	_ = top
	if d.ST[0] != one {
		t.Fatalf("st0 = % x (fstat %#x ftag %#x)", d.ST[0], d.FSTAT, d.FTAG)
	}
	if d.FCTRL != 0x37f || d.MXCSR != 0x1f80 {
		t.Fatalf("fctrl %#x mxcsr %#x", d.FCTRL, d.MXCSR)
	}
	if d.RIP != codeBase+8 || d.FSBase != 0x7000 || d.GSBase != 0x8000 {
		t.Fatalf("rip %#x fs_base %#x gs_base %#x", d.RIP, d.FSBase, d.GSBase)
	}
	if d.CS == 0 && d.SS == 0 {
		t.Logf("selectors are zero (flat 64-bit machine)")
	}
	// Writing the same context back is accepted (selectors unchanged).
	must(t, m.WriteContext(&d))
	if n := testing.AllocsPerRun(100, func() { m.ReadContext(&d) }); n != 0 {
		t.Fatalf("ReadContext allocates %v times", n)
	}
}

func TestMSR(t *testing.T) {
	m := newMachine(t, nil)
	const msrGSBase = 0xc0000101
	must(t, m.WriteMSR(msrGSBase, 0x123000))
	if v, err := m.ReadMSR(msrGSBase); err != nil || v != 0x123000 {
		t.Fatalf("msr = %#x, %v", v, err)
	}
	if v := reg(t, m, arch.GSBase); v != 0x123000 {
		t.Fatalf("gs_base = %#x", v)
	}
}

func TestClosedAndBadInput(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Reg(arch.NumRegs); err == nil {
		t.Error("bad register accepted")
	}
	if err := m.SetReg(arch.Reg(200), 1); err == nil {
		t.Error("bad register accepted")
	}
	// Running with nothing mapped is a fetch fault, not a crash.
	if s := m.Run(); s.Reason != StopFault || s.Access != arch.PermExec {
		t.Errorf("run on empty machine: %+v", s)
	}
	if s := m.Step(); s.Reason != StopFault {
		t.Errorf("step on empty machine: %+v", s)
	}
	must(t, m.Close())
	must(t, m.Close())
	var c Context
	if m.Map(0, 0x1000, arch.PermRW) == nil || m.ReadContext(&c) == nil || m.WriteContext(&c) == nil ||
		m.AddBreakpoint(1, false) == nil || m.AddWatchpoint(0, 1, WatchRead) == nil || m.AddTrapRange(0, 1) == nil {
		t.Error("closed machine accepted a call")
	}
	if _, err := m.ReadMemory(0, make([]byte, 4)); err == nil {
		t.Error("closed machine read memory")
	}
	if s := m.Run(); s.Reason != StopError || s.Err == nil {
		t.Errorf("run on closed machine: %+v", s)
	}
	m.Interrupt()
	m.SetShadowStack(true)
	if m.Regions() != nil || m.ShadowStack() != nil {
		t.Error("closed machine has state")
	}
}

func TestNoAllocs(t *testing.T) {
	m := newMachine(t, countLoop)
	must(t, m.AddBreakpoint(codeBase+3, false))
	var buf [64]byte
	for name, f := range map[string]func(){
		"breakpoint toggle": func() { m.RemoveBreakpoint(codeBase+3, false); m.AddBreakpoint(codeBase+3, false) },
		"reg":               func() { m.Reg(arch.RIP) },
		"read memory":       func() { m.ReadMemory(codeBase, buf[:]) },
		"run":               func() { m.Run() },
		"step":              func() { m.Step() },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %v times", name, n)
		}
	}
}

// TestContextCopy: the registers kept between two ReadContexts are
// dropped by everything that changes them: a register write, a context
// write, an MSR write and a run.
func TestContextCopy(t *testing.T) {
	m := newMachine(t, []byte{
		0x48, 0xff, 0xc0, // 10000: inc rax
		0xf4, // 10003: hlt
	})
	var c Context
	must(t, m.ReadContext(&c))
	c.GPR[arch.RSP], c.RIP = stackTop, codeBase
	must(t, m.WriteContext(&c))
	read := func() Context {
		var d Context
		must(t, m.ReadContext(&d))
		return d
	}
	require.Equal(t, uint64(codeBase), read().RIP, "after WriteContext")
	must(t, m.SetReg(arch.RAX, 41))
	require.Equal(t, uint64(41), read().GPR[arch.RAX], "after SetReg")
	must(t, m.WriteMSR(0xc0000100, 0x5000)) // fs_base
	require.Equal(t, uint64(0x5000), read().FSBase, "after WriteMSR")
	st := m.Step()
	require.Equal(t, StopStep, st.Reason, "%+v", st)
	d := read()
	assert.Equal(t, uint64(42), d.GPR[arch.RAX], "after a step")
	assert.Equal(t, uint64(codeBase+3), d.RIP, "after a step")
	assert.Equal(t, d, read(), "the copy")
}
