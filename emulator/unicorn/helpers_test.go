package unicorn

import (
	"testing"

	"github.com/rspstub/rspstub/internal/arch"
)

// Test address space: code at codeBase (r-x), a stack below stackTop
// (rw-), data at dataBase (rw-). Nothing else is mapped.
const (
	codeBase  = 0x10000
	codeSize  = 0x10000
	stackBase = 0x200000
	stackSize = 0x10000
	stackTop  = stackBase + stackSize - 0x100
	dataBase  = 0x300000
	dataSize  = 0x1000
)

func newMachine(t testing.TB, code []byte) *Machine {
	t.Helper()
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	must(t, m.Map(codeBase, codeSize, arch.PermRX))
	must(t, m.Map(stackBase, stackSize, arch.PermRW))
	must(t, m.Map(dataBase, dataSize, arch.PermRW))
	if len(code) > 0 {
		if _, err := m.WriteMemory(codeBase, code); err != nil {
			t.Fatal(err)
		}
	}
	must(t, m.SetReg(arch.RSP, stackTop))
	must(t, m.SetReg(arch.RIP, codeBase))
	return m
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func reg(t testing.TB, m *Machine, r arch.Reg) uint64 {
	t.Helper()
	v, err := m.Reg(r)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantStop checks reason and PC, and that RIP agrees with the PC.
func wantStop(t testing.TB, m *Machine, s Stop, reason StopReason, pc uint64) {
	t.Helper()
	if s.Reason != reason || s.PC != pc {
		t.Fatalf("stop = %v at %#x (addr %#x, err %v), want %v at %#x", s.Reason, s.PC, s.Addr, s.Err, reason, pc)
	}
	if rip := reg(t, m, arch.RIP); rip != pc {
		t.Fatalf("RIP = %#x, stop PC %#x", rip, pc)
	}
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
