package unicorn

import (
	"testing"
	"time"

	"github.com/rspstub/rspstub/internal/arch"
)

// An endless counting loop in one translation block.
var countLoop = []byte{
	0x48, 0xff, 0xc0, // 10000: inc rax
	0x48, 0xff, 0xc3, // 10003: inc rbx
	0xeb, 0xf8, // 10006: jmp 0x10000
}

func TestBreakpointStopsBeforeInstruction(t *testing.T) {
	for _, hw := range []bool{false, true} {
		m := newMachine(t, countLoop)
		must(t, m.AddBreakpoint(codeBase+3, hw))
		want := StopBreakpoint
		if hw {
			want = StopHWBreakpoint
		}
		for i := uint64(1); i <= 3; i++ {
			wantStop(t, m, m.Run(), want, codeBase+3)
			// inc rbx at the breakpoint has not run; inc rax before it has.
			if rax, rbx := reg(t, m, arch.RAX), reg(t, m, arch.RBX); rax != i || rbx != i-1 {
				t.Fatalf("hit %d: rax=%d rbx=%d", i, rax, rbx)
			}
		}
		must(t, m.RemoveBreakpoint(codeBase+3, hw))
		if err := m.RemoveBreakpoint(codeBase+3, hw); err == nil {
			t.Fatal("removing a removed breakpoint succeeded")
		}
	}
}

// A breakpoint inserted after the code was translated (in the middle of
// a block) must still hit, and one removed must no longer hit.
func TestBreakpointAfterTranslation(t *testing.T) {
	m := newMachine(t, countLoop)
	must(t, m.AddBreakpoint(codeBase, false))
	// RIP was set by the caller, not stopped on: the breakpoint there is
	// reported at once, before its instruction runs.
	wantStop(t, m, m.Run(), StopBreakpoint, codeBase)
	if rax := reg(t, m, arch.RAX); rax != 0 {
		t.Fatalf("rax = %d after a stop at the first instruction", rax)
	}
	// Resuming where it stopped makes progress.
	wantStop(t, m, m.Run(), StopBreakpoint, codeBase)
	wantStop(t, m, m.Run(), StopBreakpoint, codeBase) // block now translated
	must(t, m.AddBreakpoint(codeBase+6, false))
	wantStop(t, m, m.Run(), StopBreakpoint, codeBase+6)
	must(t, m.RemoveBreakpoint(codeBase, false))
	wantStop(t, m, m.Run(), StopBreakpoint, codeBase+6)
	wantStop(t, m, m.Run(), StopBreakpoint, codeBase+6)
	// rax: 1 and 2 (stops at 0x10000), 3 (0x10006), 4 and 5 (0x10006 again).
	if rax := reg(t, m, arch.RAX); rax != 5 {
		t.Fatalf("rax = %d", rax)
	}
	// GDB's pattern: remove all after a stop, reinsert all before resuming.
	for i := 0; i < 100; i++ {
		must(t, m.RemoveBreakpoint(codeBase+6, false))
		must(t, m.AddBreakpoint(codeBase+6, false))
	}
	wantStop(t, m, m.Run(), StopBreakpoint, codeBase+6)
}

func TestStep(t *testing.T) {
	m := newMachine(t, countLoop)
	for i, pc := range []uint64{codeBase + 3, codeBase + 6, codeBase, codeBase + 3} {
		wantStop(t, m, m.Step(), StopStep, pc)
		_ = i
	}
	if rax, rbx := reg(t, m, arch.RAX), reg(t, m, arch.RBX); rax != 2 || rbx != 1 {
		t.Fatalf("rax=%d rbx=%d", rax, rbx)
	}
	// Stepping from a breakpoint executes it; stepping onto one is a step.
	must(t, m.AddBreakpoint(codeBase+3, false))
	must(t, m.AddBreakpoint(codeBase+6, false))
	wantStop(t, m, m.Step(), StopStep, codeBase+6)
	wantStop(t, m, m.Step(), StopStep, codeBase)
	// Run after steps: the tracer is gone, breakpoints still work.
	wantStop(t, m, m.Run(), StopBreakpoint, codeBase+3)
	wantStop(t, m, m.Run(), StopBreakpoint, codeBase+6)
	if rbx := reg(t, m, arch.RBX); rbx != 3 {
		t.Fatalf("rbx = %d", rbx)
	}
	// A self-loop: one step is one instruction.
	m2 := newMachine(t, []byte{0xeb, 0xfe}) // 10000: jmp 0x10000
	wantStop(t, m2, m2.Step(), StopStep, codeBase)
}

func TestRangeStep(t *testing.T) {
	m := newMachine(t, []byte{
		0x48, 0xc7, 0xc1, 0x05, 0x00, 0x00, 0x00, // 10000: mov rcx, 5
		0x48, 0xff, 0xc9, // 10007: dec rcx
		0x75, 0xfb, // 1000a: jnz 0x10007
		0xe8, 0x0f, 0x00, 0x00, 0x00, // 1000c: call 0x10020
		0xf4, // 10011: hlt
	})
	if _, err := m.WriteMemory(codeBase+0x20, []byte{0x90, 0xc3}); err != nil { // 10020: nop; ret
		t.Fatal(err)
	}
	wantStop(t, m, m.RangeStep(codeBase, codeBase+0xc), StopStep, codeBase+0xc)
	if rcx := reg(t, m, arch.RCX); rcx != 0 {
		t.Fatalf("rcx = %d", rcx)
	}
	// Leaving through a call stops at the callee.
	wantStop(t, m, m.RangeStep(codeBase+0xc, codeBase+0x11), StopStep, codeBase+0x20)
	// Starting outside the range still executes one instruction.
	wantStop(t, m, m.RangeStep(codeBase, codeBase+0x11), StopStep, codeBase+0x21)
	wantStop(t, m, m.Run(), StopHalt, codeBase+0x12)
}

func TestTrapRange(t *testing.T) {
	m := newMachine(t, []byte{
		0xe8, 0xfb, 0x0f, 0x00, 0x00, // 10000: call 0x11000
		0x48, 0x89, 0xc3, // 10005: mov rbx, rax
		0xf4, // 10008: hlt
	})
	must(t, m.AddTrapRange(codeBase+0x1000, codeBase+0x1010))
	wantStop(t, m, m.Run(), StopTrap, codeBase+0x1000)
	// Not skipped on resume: the handler must move RIP.
	wantStop(t, m, m.Run(), StopTrap, codeBase+0x1000)
	wantStop(t, m, m.Step(), StopTrap, codeBase+0x1000)
	// Emulate the API: rax = 7, return to the caller.
	rsp := reg(t, m, arch.RSP)
	var ret [8]byte
	if _, err := m.ReadMemory(rsp, ret[:]); err != nil {
		t.Fatal(err)
	}
	must(t, m.SetReg(arch.RAX, 7))
	must(t, m.SetReg(arch.RIP, uint64(ret[0])|uint64(ret[1])<<8|uint64(ret[2])<<16))
	must(t, m.SetReg(arch.RSP, rsp+8))
	wantStop(t, m, m.Run(), StopHalt, codeBase+9)
	if rbx := reg(t, m, arch.RBX); rbx != 7 {
		t.Fatalf("rbx = %d", rbx)
	}
	if err := m.AddTrapRange(5, 5); err == nil {
		t.Fatal("empty trap range accepted")
	}
}

// TestBreakpointOnTrap: a breakpoint on a trap address stops as a
// breakpoint first; resuming from it then reports the trap.
func TestBreakpointOnTrap(t *testing.T) {
	for _, hw := range []bool{false, true} {
		m := newMachine(t, []byte{
			0xe8, 0xfb, 0x0f, 0x00, 0x00, // 10000: call 0x11000
			0xf4, // 10005: hlt
		})
		must(t, m.AddTrapRange(codeBase+0x1000, codeBase+0x1010))
		must(t, m.AddBreakpoint(codeBase+0x1000, hw))
		want := StopBreakpoint
		if hw {
			want = StopHWBreakpoint
		}
		wantStop(t, m, m.Run(), want, codeBase+0x1000)
		wantStop(t, m, m.Run(), StopTrap, codeBase+0x1000)
		// Without the breakpoint the trap alone stops.
		must(t, m.RemoveBreakpoint(codeBase+0x1000, hw))
		wantStop(t, m, m.Run(), StopTrap, codeBase+0x1000)
	}
}

// TestBreakpointAtMovedRIP: a run that starts where the caller moved RIP
// (an emulated API calling back into guest code) reports a breakpoint on
// that first instruction; a step from there still executes it.
func TestBreakpointAtMovedRIP(t *testing.T) {
	m := newMachine(t, countLoop)
	must(t, m.AddBreakpoint(codeBase+6, false))
	wantStop(t, m, m.Run(), StopBreakpoint, codeBase+6)
	must(t, m.AddBreakpoint(codeBase+3, false))
	must(t, m.SetReg(arch.RIP, codeBase+3))
	wantStop(t, m, m.Run(), StopBreakpoint, codeBase+3)
	must(t, m.SetReg(arch.RIP, codeBase+3))
	if st := m.Step(); st.Reason != StopStep || st.PC == codeBase+3 {
		t.Fatalf("a step from a moved RIP made no progress: %+v", st)
	}
}

func TestWatchpoints(t *testing.T) {
	code := []byte{
		0x48, 0xc7, 0xc0, 0x2a, 0x00, 0x00, 0x00, // 10000: mov rax, 42
		0x48, 0x89, 0x04, 0x25, 0x08, 0x00, 0x30, 0x00, // 10007: mov [0x300008], rax
		0x90,                                           // 1000f: nop
		0x48, 0x8b, 0x1c, 0x25, 0x04, 0x00, 0x30, 0x00, // 10010: mov rbx, [0x300004] (overlaps)
		0x90, // 10018: nop
		0xf4, // 10019: hlt
	}
	type hit struct {
		pc       uint64
		addr     uint64
		access   arch.Perm
		accessPC uint64
	}
	tests := []struct {
		kind WatchKind
		hits []hit
	}{
		{WatchWrite, []hit{{codeBase + 0xf, dataBase + 8, arch.PermWrite, codeBase + 7}}},
		{WatchRead, []hit{{codeBase + 0x18, dataBase + 8, arch.PermRead, codeBase + 0x10}}},
		{WatchAccess, []hit{{codeBase + 0xf, dataBase + 8, arch.PermWrite, codeBase + 7}, {codeBase + 0x18, dataBase + 8, arch.PermRead, codeBase + 0x10}}},
	}
	for _, tc := range tests {
		m := newMachine(t, code)
		must(t, m.AddWatchpoint(dataBase+8, 4, tc.kind))
		for _, h := range tc.hits {
			s := m.Run()
			wantStop(t, m, s, StopWatch, h.pc)
			if s.Addr != h.addr || s.Access != h.access || s.Watch != tc.kind || s.AccessPC != h.accessPC {
				t.Fatalf("kind %d: hit addr %#x access %v watch %d by %#x, want %#x %v by %#x",
					tc.kind, s.Addr, s.Access, s.Watch, s.AccessPC, h.addr, h.access, h.accessPC)
			}
		}
		// The write has completed when the stop is reported.
		var b [1]byte
		if _, err := m.ReadMemory(dataBase+8, b[:]); err != nil || b[0] != 42 {
			t.Fatalf("value %d, %v", b[0], err)
		}
		wantStop(t, m, m.Run(), StopHalt, codeBase+0x1a)
		must(t, m.RemoveWatchpoint(dataBase+8, 4, tc.kind))
		must(t, m.SetReg(arch.RIP, codeBase))
		wantStop(t, m, m.Run(), StopHalt, codeBase+0x1a)
	}
	// Accesses next to the watched range do not hit.
	m := newMachine(t, code)
	must(t, m.AddWatchpoint(dataBase+0x10, 8, WatchAccess))
	wantStop(t, m, m.Run(), StopHalt, codeBase+0x1a)
	// A write watch hit while stepping reports the watch.
	must(t, m.AddWatchpoint(dataBase+8, 8, WatchWrite))
	must(t, m.SetReg(arch.RIP, codeBase+7))
	s := m.Step()
	wantStop(t, m, s, StopWatch, codeBase+0xf)
	for _, bad := range []int{0, -1} {
		if err := m.AddWatchpoint(dataBase, bad, WatchWrite); err == nil {
			t.Fatalf("size %d accepted", bad)
		}
	}
	if err := m.RemoveWatchpoint(dataBase, 4, WatchRead); err == nil {
		t.Fatal("removing an unknown watchpoint succeeded")
	}
}

func TestInterruptTightLoop(t *testing.T) {
	m := newMachine(t, []byte{0xeb, 0xfe}) // 10000: jmp 0x10000
	m.Interrupt()                          // nothing running: no effect
	for i := 0; i < 3; i++ {
		done := make(chan Stop)
		go func() { done <- m.Run() }()
		time.Sleep(20 * time.Millisecond)
		t0 := time.Now()
		m.Interrupt()
		select {
		case s := <-done:
			if s.Reason != StopInterrupt || s.PC != codeBase {
				t.Fatalf("stop %v at %#x", s.Reason, s.PC)
			}
			if d := time.Since(t0); d > 100*time.Millisecond {
				t.Fatalf("interrupt took %v", d)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Run did not return after Interrupt")
		}
	}
	// Interrupting right as Run starts must not be lost.
	for i := 0; i < 20; i++ {
		done := make(chan Stop)
		go func() { done <- m.Run() }()
		go m.Interrupt()
		for {
			m.Interrupt()
			select {
			case <-done:
			case <-time.After(time.Millisecond):
				continue
			}
			break
		}
	}
}

// The caller calls f1 (direct), f1 calls f2 through a register; f2 hits a
// breakpoint; everything returns; then a longjmp-like stack cut.
func TestShadowStack(t *testing.T) {
	m := newMachine(t, []byte{
		0xe8, 0x1b, 0x00, 0x00, 0x00, // 10000: call 0x10020 (f1)
		0xe8, 0x36, 0x00, 0x00, 0x00, // 10005: call 0x10040 (f3)
		0xf4, // 1000a: hlt
	})
	f1 := []byte{
		0x48, 0xc7, 0xc0, 0x30, 0x00, 0x01, 0x00, // 10020: mov rax, 0x10030
		0xff, 0xd0, // 10027: call rax (f2)
		0xc3, // 10029: ret
	}
	f2 := []byte{
		0x90, // 10030: nop
		0x90, // 10031: nop   <- breakpoint
		0xc3, // 10032: ret
	}
	f3 := []byte{
		0xe8, 0x0b, 0x00, 0x00, 0x00, // 10040: call 0x10050 (f4)
		0xf4, // 10045: hlt (never)
	}
	f4 := []byte{
		0x48, 0x83, 0xc4, 0x08, // 10050: add rsp, 8  (drop f3's frame: longjmp-like)
		0xc3, // 10054: ret  (returns to 0x1000a from f3's call)
	}
	for addr, b := range map[uint64][]byte{0x10020: f1, 0x10030: f2, 0x10040: f3, 0x10050: f4} {
		if _, err := m.WriteMemory(addr, b); err != nil {
			t.Fatal(err)
		}
	}
	if m.ShadowStack() != nil {
		t.Fatal("shadow stack on by default")
	}
	m.SetShadowStack(true)
	must(t, m.AddBreakpoint(0x10031, false))
	must(t, m.AddBreakpoint(0x10054, false))
	must(t, m.AddBreakpoint(0x1000a, false))
	wantStop(t, m, m.Run(), StopBreakpoint, 0x10031)
	want := []ShadowFrame{
		{CallSite: 0x10000, Target: 0x10020, ReturnAddress: 0x10005, SP: stackTop - 8},
		{CallSite: 0x10027, Target: 0x10030, ReturnAddress: 0x10029, SP: stackTop - 16},
	}
	checkShadow(t, m, want)
	// Single steps keep it right too: nop, ret -> back in f1.
	wantStop(t, m, m.Step(), StopStep, 0x10032)
	wantStop(t, m, m.Step(), StopStep, 0x10029)
	checkShadow(t, m, want[:1])
	wantStop(t, m, m.Run(), StopBreakpoint, 0x10054)
	// The stack cut inside f4's block is seen at the next block start.
	checkShadow(t, m, []ShadowFrame{
		{CallSite: 0x10005, Target: 0x10040, ReturnAddress: 0x1000a, SP: stackTop - 8},
		{CallSite: 0x10040, Target: 0x10050, ReturnAddress: 0x10045, SP: stackTop - 16},
	})
	wantStop(t, m, m.Run(), StopBreakpoint, 0x1000a)
	checkShadow(t, m, nil)
	m.SetShadowStack(false)
	if m.ShadowStack() != nil {
		t.Fatal("shadow stack still on")
	}
}

func checkShadow(t *testing.T, m *Machine, want []ShadowFrame) {
	t.Helper()
	got := m.ShadowStack()
	if len(got) != len(want) {
		t.Fatalf("shadow stack %+v, want %+v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("shadow stack %+v, want %+v", got, want)
		}
	}
}

// Each kind of control transfer steps to the right place.
func TestStepSuccessors(t *testing.T) {
	m := newMachine(t, []byte{
		0x48, 0x31, 0xc0, // 10000: xor rax, rax
		0x74, 0x02, // 10003: je 0x10007 (taken)
		0x90, 0x90, // 10005: nop; nop
		0x75, 0x10, // 10007: jne 0x10019 (not taken)
		0xff, 0x15, 0x11, 0x00, 0x00, 0x00, // 10009: call [rip+0x11] -> [0x10020] = 0x10030
		0x48, 0xc7, 0xc0, 0x40, 0x00, 0x01, 0x00, // 1000f: mov rax, 0x10040
		0xff, 0xe0, // 10016: jmp rax
		0x90,                                     // 10018
		0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, // 10019..1001f
		0x30, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, // 10020: dq 0x10030
	})
	if _, err := m.WriteMemory(0x10030, []byte{0xc3}); err != nil { // 10030: ret
		t.Fatal(err)
	}
	if _, err := m.WriteMemory(0x10040, []byte{0x0f, 0x05}); err != nil { // 10040: syscall
		t.Fatal(err)
	}
	for _, pc := range []uint64{0x10003, 0x10007, 0x10009, 0x10030, 0x1000f, 0x10016, 0x10040} {
		wantStop(t, m, m.Step(), StopStep, pc)
	}
	wantStop(t, m, m.Step(), StopSyscall, 0x10042)

	// A 32-bit displacement is sign-extended (x86asm reports it
	// zero-extended): jmp [rip-0x16] reads the pointer before it.
	m = newMachine(t, []byte{
		0x50, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, // 10000: dq 0x10050
		0xff, 0x25, 0xf2, 0xff, 0xff, 0xff, // 10008: jmp [rip-0xe] -> [0x10000]
	})
	must(t, m.SetReg(arch.RIP, 0x10008))
	wantStop(t, m, m.Step(), StopStep, 0x10050)
}

// Interrupt also ends a range step and a run with watchpoints (tracer on).
func TestInterruptTracer(t *testing.T) {
	m := newMachine(t, []byte{0xeb, 0xfe}) // 10000: jmp 0x10000
	for _, f := range []func() Stop{
		func() Stop { return m.RangeStep(codeBase, codeBase+2) },
		func() Stop {
			must(t, m.AddWatchpoint(dataBase, 8, WatchAccess))
			return m.Run()
		},
	} {
		done := make(chan Stop)
		go func() { done <- f() }()
		time.Sleep(20 * time.Millisecond)
		m.Interrupt()
		select {
		case s := <-done:
			if s.Reason != StopInterrupt {
				t.Fatalf("stop %+v", s)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("not interrupted")
		}
	}
}
