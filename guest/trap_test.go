package guest

import (
	"testing"

	"github.com/rspstub/rspstub/internal/arch"
)

// fakeCall sets up registers for a call to dll!name from returnTo and
// returns the stub address.
func fakeCall(t *testing.T, p *Process, m *fakeMachine, dll, name string, returnTo uint64, args ...uint64) uint64 {
	t.Helper()
	mod := p.findModule(dll)
	if mod == nil {
		t.Fatalf("no module %s", dll)
	}
	addr, err := p.resolveExport(mod, name, 0, false, false, 0)
	if err != nil || addr == 0 {
		t.Fatalf("%s!%s: %v", dll, name, err)
	}
	sp := p.StackBase() - 0x1008 // 8 mod 16, as after a call
	for i, r := range []arch.Reg{arch.RCX, arch.RDX, arch.R8, arch.R9} {
		if i < len(args) {
			m.SetReg(r, args[i])
		}
	}
	for i := 4; i < len(args); i++ {
		p.mem.WriteU64(sp+8+8*uint64(i), args[i])
	}
	p.mem.WriteU64(sp, returnTo)
	m.SetReg(arch.RSP, sp)
	m.SetReg(arch.RIP, addr)
	return addr
}

func mustTrap(t *testing.T, p *Process, pc uint64) TrapResult {
	t.Helper()
	res, err := p.HandleTrap(pc)
	if err != nil {
		t.Fatalf("HandleTrap(%#x): %v", pc, err)
	}
	return res
}

func TestHandleTrapArgumentsAndReturn(t *testing.T) {
	exe := buildC(t, "hello-O0", "hello.c", mingwGCC("-O0"))
	p, m, _, _ := loadFake(t, exe)
	h := p.heap
	fmtp, _ := h.allocBytes([]byte("%d-%s-%lld\x00"))
	sp, _ := h.allocBytes([]byte("six\x00"))
	buf, _ := h.alloc(64, true)
	// _snprintf(buf, 64, fmt, 5, "six", -7): the last two arguments are on the stack.
	pc := fakeCall(t, p, m, "msvcrt.dll", "_snprintf", 0x140001234, buf, 64, fmtp, 5, sp, uint64(0xFFFFFFFFFFFFFFF9))
	rsp0, _ := m.Reg(arch.RSP)
	res := mustTrap(t, p, pc)
	if res.Caller != 0x140001234 || res.Exited || res.Unimplemented != "" {
		t.Fatalf("result %+v", res)
	}
	got, _ := p.mem.ReadCString(buf, 64)
	rax, _ := m.Reg(arch.RAX)
	rip, _ := m.Reg(arch.RIP)
	rsp, _ := m.Reg(arch.RSP)
	if got != "5-six--7" || rax != 8 || rip != 0x140001234 || rsp != rsp0+8 {
		t.Errorf("buf %q rax %d rip %#x rsp %#x (entry rsp %#x)", got, rax, rip, rsp, rsp0)
	}
}

func TestHandleTrapGuestCallbacks(t *testing.T) {
	exe := buildC(t, "hello-O0", "hello.c", mingwGCC("-O0"))
	p, m, _, _ := loadFake(t, exe)
	table, _ := p.heap.allocBytes(make([]byte, 24))
	p.mem.WriteU64(table, 0x140001000)
	p.mem.WriteU64(table+16, 0x140002000) // the NULL entry in between is skipped
	pc := fakeCall(t, p, m, "msvcrt.dll", "_initterm", 0x140005555, table, table+24)
	apiRSP, _ := m.Reg(arch.RSP)
	stub := pc
	for i, fn := range []uint64{0x140001000, 0x140002000} {
		mustTrap(t, p, pc)
		rip, _ := m.Reg(arch.RIP)
		rsp, _ := m.Reg(arch.RSP)
		ret, _ := p.mem.ReadU64(rsp)
		if rip != fn || rsp != apiRSP-0x30 || ret != stub+stubRetOffset || rsp%16 != 8 {
			t.Fatalf("callback %d: rip %#x rsp %#x ret %#x", i, rip, rsp, ret)
		}
		// The callback returns.
		m.SetReg(arch.RSP, rsp+8)
		m.SetReg(arch.RIP, ret)
		pc = ret
	}
	mustTrap(t, p, pc)
	rip, _ := m.Reg(arch.RIP)
	rsp, _ := m.Reg(arch.RSP)
	if rip != 0x140005555 || rsp != apiRSP+8 || len(p.conts) != 0 {
		t.Errorf("after _initterm: rip %#x rsp %#x pending %d", rip, rsp, len(p.conts))
	}
	// A return to a stub's callback address with no pending call is an error.
	if _, err := p.HandleTrap(pc); err == nil {
		t.Error("unexpected callback return accepted")
	}
	if _, err := p.HandleTrap(0x140001000); err == nil {
		t.Error("trap outside any stub accepted")
	}
}

func TestExitProcessStopsHandling(t *testing.T) {
	exe := buildC(t, "hello-O0", "hello.c", mingwGCC("-O0"))
	p, m, _, _ := loadFake(t, exe)
	pc := fakeCall(t, p, m, "KERNEL32.dll", "ExitProcess", 0x140001000, 0xFFFFFFFE)
	res := mustTrap(t, p, pc)
	if !res.Exited || res.ExitCode != -2 {
		t.Fatalf("%+v", res)
	}
	if ex, code := p.Exited(); !ex || code != -2 {
		t.Errorf("Exited() = %v %d", ex, code)
	}
	if _, err := p.HandleTrap(pc); err == nil {
		t.Error("HandleTrap after exit succeeded")
	}
}
