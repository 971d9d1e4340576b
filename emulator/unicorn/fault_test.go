package unicorn

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/arch"
)

// Three instructions in one translation block; the third faults. The
// stop must name the third, and the first two must have run.
var faultPrologue = []byte{
	0x48, 0xc7, 0xc0, 0x01, 0x00, 0x00, 0x00, // 10000: mov rax, 1
	0x48, 0xc7, 0xc3, 0x02, 0x00, 0x00, 0x00, // 10007: mov rbx, 2
}

func TestFaults(t *testing.T) {
	const faulting = codeBase + 14
	tests := []struct {
		name   string
		insn   []byte
		setup  func(*Machine)
		reason StopReason
		pc     uint64
		addr   uint64
		access arch.Perm
	}{
		{
			name:   "read unmapped",
			insn:   []byte{0x48, 0x8b, 0x0c, 0x25, 0x00, 0x00, 0x50, 0x00}, // mov rcx, [0x500000]
			reason: StopFault, pc: faulting, addr: 0x500000, access: arch.PermRead,
		},
		{
			name:   "write unmapped",
			insn:   []byte{0x48, 0x89, 0x0c, 0x25, 0x08, 0x00, 0x50, 0x00}, // mov [0x500008], rcx
			reason: StopFault, pc: faulting, addr: 0x500008, access: arch.PermWrite,
		},
		{
			name:   "write read-only",
			insn:   []byte{0x48, 0x89, 0x0c, 0x25, 0x10, 0x00, 0x30, 0x00}, // mov [0x300010], rcx
			setup:  func(m *Machine) { must(t, m.Protect(dataBase, dataSize, arch.PermRead)) },
			reason: StopFault, pc: faulting, addr: 0x300010, access: arch.PermWrite,
		},
		{
			name:   "read no-access",
			insn:   []byte{0x8b, 0x0c, 0x25, 0x20, 0x00, 0x30, 0x00}, // mov ecx, [0x300020]
			setup:  func(m *Machine) { must(t, m.Protect(dataBase, dataSize, arch.PermNone)) },
			reason: StopFault, pc: faulting, addr: 0x300020, access: arch.PermRead,
		},
		{
			name:   "push into unmapped stack",
			insn:   []byte{0x51}, // push rcx
			setup:  func(m *Machine) { must(t, m.SetReg(arch.RSP, 0x500100)) },
			reason: StopFault, pc: faulting, addr: 0x5000f8, access: arch.PermWrite,
		},
		{
			name: "jump to unmapped",
			insn: []byte{
				0x48, 0xc7, 0xc1, 0x00, 0x00, 0x60, 0x00, // 1000e: mov rcx, 0x600000
				0xff, 0xe1, // 10015: jmp rcx
			},
			reason: StopFault, pc: 0x600000, addr: 0x600000, access: arch.PermExec,
		},
		{
			name: "call NULL",
			insn: []byte{
				0x31, 0xc9, // 1000e: xor ecx, ecx
				0xff, 0xd1, // 10010: call rcx
			},
			reason: StopFault, pc: 0, addr: 0, access: arch.PermExec,
		},
		{
			name:   "jump to non-executable",
			insn:   []byte{0xe9, 0xed, 0xff, 0x2e, 0x00}, // 1000e: jmp 0x300000 (rel32 = 0x300000-0x10013)
			reason: StopFault, pc: dataBase, addr: dataBase, access: arch.PermExec,
		},
		{
			name:   "ud2",
			insn:   []byte{0x0f, 0x0b}, // ud2
			reason: StopIllegal, pc: faulting,
		},
		{
			name:   "undefined opcode",
			insn:   []byte{0x0f, 0xff}, // (ud0 without modrm: invalid)
			reason: StopIllegal, pc: faulting,
		},
		{
			name: "divide by zero",
			insn: []byte{
				0x31, 0xc9, // 1000e: xor ecx, ecx
				0x31, 0xd2, // 10010: xor edx, edx
				0x48, 0xf7, 0xf1, // 10012: div rcx
			},
			reason: StopDivide, pc: faulting + 4,
		},
		{
			name:   "int3",
			insn:   []byte{0xcc, 0x90}, // int3; nop
			reason: StopInt3, pc: faulting + 1, addr: faulting,
		},
		{
			name:   "hlt",
			insn:   []byte{0xf4}, // hlt
			reason: StopHalt, pc: faulting + 1,
		},
	}
	for _, tc := range tests {
		for _, sync := range []bool{false, true} {
			name := tc.name
			if sync {
				name += "/sync"
			}
			t.Run(name, func(t *testing.T) {
				m := newMachine(t, cat(faultPrologue, tc.insn))
				m.SetPCSync(sync)
				if tc.setup != nil {
					tc.setup(m)
				}
				s := m.Run()
				wantStop(t, m, s, tc.reason, tc.pc)
				if s.Addr != tc.addr || s.Access != tc.access {
					t.Errorf("addr %#x access %v, want %#x %v", s.Addr, s.Access, tc.addr, tc.access)
				}
				if rax, rbx := reg(t, m, arch.RAX), reg(t, m, arch.RBX); rax != 1 || rbx != 2 {
					t.Errorf("rax=%d rbx=%d: the instructions before the fault did not run exactly once", rax, rbx)
				}
			})
		}
	}
}

// After a fault the debugger fixes things and continues.
func TestContinueAfterFault(t *testing.T) {
	m := newMachine(t, cat(faultPrologue, []byte{
		0x48, 0x8b, 0x0c, 0x25, 0x00, 0x00, 0x50, 0x00, // 1000e: mov rcx, [0x500000]
		0x48, 0xff, 0xc1, // 10016: inc rcx
		0xf4, // 10019: hlt
	}))
	wantStop(t, m, m.Run(), StopFault, codeBase+14)
	// Stepping again faults again, in place.
	wantStop(t, m, m.Step(), StopFault, codeBase+14)
	must(t, m.Map(0x500000, 0x1000, arch.PermRW))
	if _, err := m.WriteMemory(0x500000, []byte{41}); err != nil {
		t.Fatal(err)
	}
	wantStop(t, m, m.Run(), StopHalt, codeBase+0x1a)
	if rcx := reg(t, m, arch.RCX); rcx != 42 {
		t.Fatalf("rcx = %d", rcx)
	}
	// The debugger moves RIP past a faulting instruction.
	must(t, m.SetReg(arch.RIP, codeBase+0x16))
	wantStop(t, m, m.Run(), StopHalt, codeBase+0x1a)
	if rcx := reg(t, m, arch.RCX); rcx != 43 {
		t.Fatalf("rcx = %d", rcx)
	}
}

// Decoding the block finds the faulting instruction among several memory
// instructions of one block, including implicit stack accesses.
func TestFaultPCDecode(t *testing.T) {
	body := []byte{
		0x48, 0x8b, 0x0c, 0x25, 0x00, 0x00, 0x30, 0x00, // 1000e: mov rcx, [0x300000]
		0x48, 0x89, 0x0c, 0x25, 0x08, 0x00, 0x30, 0x00, // 10016: mov [0x300008], rcx
		0x48, 0x8b, 0x73, 0x10, // 1001e: mov rsi, [rbx+0x10]  (rbx=2: unmapped)
		0xf4, // 10022: hlt
	}
	m := newMachine(t, cat(faultPrologue, body))
	wantStop(t, m, m.Run(), StopFault, codeBase+0x1e)

	// The fault is a push into an unmapped stack after two good pushes.
	m = newMachine(t, cat(faultPrologue, []byte{
		0x50,                                     // 1000e: push rax
		0x48, 0x81, 0xec, 0x00, 0x00, 0x10, 0x00, // 1000f: sub rsp, 0x100000
		0x53, // 10016: push rbx  (faults)
		0xf4, // 10017: hlt
	}))
	s := m.Run()
	wantStop(t, m, s, StopFault, codeBase+0x16)
	if s.Access != arch.PermWrite || s.Addr != stackTop-8-0x100000-8 {
		t.Fatalf("fault %+v", s)
	}

	// A read-modify-write instruction faulting on the read.
	m = newMachine(t, cat(faultPrologue, []byte{
		0x48, 0x01, 0x04, 0x25, 0x00, 0x00, 0x50, 0x00, // 1000e: add [0x500000], rax
	}))
	s = m.Run()
	wantStop(t, m, s, StopFault, codeBase+0xe)
}

// runStepped runs m one instruction at a time until something other than
// the end of a step stops it (at most limit steps). Each step translates
// a block whose first instruction is the only one to run, so the PC and
// registers at a fault are exact without any analysis: the oracle the
// block analysis is checked against.
func runStepped(m *Machine, limit int) Stop {
	for i := 0; i < limit; i++ {
		if s := m.Step(); s.Reason != StopStep {
			return s
		}
	}
	return Stop{Reason: StopStep}
}

// faultMode is how a run finds the PC of a data fault.
type faultMode int

const (
	byPaging  faultMode = iota // the default: page tables mirror the map (SetFaultPaging)
	bySync                     // paging off, SetExactFaults's sync points
	byDecoder                  // paging off, the block decoder alone
)

// setFaultMode puts m in mode.
func setFaultMode(t testing.TB, m *Machine, mode faultMode) {
	t.Helper()
	require.NoError(t, m.SetFaultPaging(mode == byPaging))
	m.SetExactFaults(mode == bySync)
	require.Equal(t, mode == byPaging, m.FaultPaging())
}

// wantSameFault runs code to its first stop twice, with Run (exact faults
// found the way mode says) and stepping, and wants the same stop with the
// same registers.
func wantSameFault(t *testing.T, code []byte, setup func(*Machine), mode faultMode) Stop {
	t.Helper()
	run := newMachine(t, code)
	setFaultMode(t, run, mode)
	step := newMachine(t, code)
	if setup != nil {
		setup(run)
		setup(step)
	}
	got := run.Run()
	want := runStepped(step, 10000)
	require.NotEqual(t, StopStep, want.Reason, "the stepped run did not stop")
	assert.Equal(t, want.Reason, got.Reason, "reason")
	assert.Equal(t, want.PC, got.PC, "pc %#x, stepped %#x", got.PC, want.PC)
	assert.Equal(t, want.Addr, got.Addr, "fault address")
	assert.Equal(t, want.Access, got.Access, "access")
	assert.False(t, got.Inexact, "Inexact")
	var cr, cs Context
	require.NoError(t, run.ReadContext(&cr))
	require.NoError(t, step.ReadContext(&cs))
	assert.Equal(t, cs, cr, "registers at the stop differ from the stepped run's")
	return got
}

// faultPCTests are blocks where the fault position is hard: the
// registers alone cannot tell which instruction faulted (the old
// decoder's limit), a flag-setting instruction runs before the fault in
// the same block, or an instruction the model does not describe.
var faultPCTests = []struct {
	name  string
	code  []byte
	setup func(t *testing.T, m *Machine)
	pc    uint64
	// ambiguous: without SetExactFaults the decoder cannot prove the
	// instruction (the state after either candidate is the same).
	ambiguous bool
}{
	{name: "base register moved", pc: 0x10018, ambiguous: true, code: []byte{
		0x48, 0xc7, 0xc3, 0x00, 0xf0, 0x30, 0x00, // 10000: mov rbx, 0x30f000 (unmapped)
		0x48, 0x81, 0xeb, 0x00, 0xf0, 0x00, 0x00, // 10007: sub rbx, 0xf000 -> 0x300000 (mapped)
		0x48, 0x8b, 0x03, // 1000e: mov rax, [rbx]
		0x48, 0x81, 0xc3, 0x00, 0xf0, 0x00, 0x00, // 10011: add rbx, 0xf000
		0x48, 0x8b, 0x0b, // 10018: mov rcx, [rbx]  (faults)
		0xf4, // 1001b: hlt
	}},
	{name: "same address twice", pc: 0x10007, code: []byte{
		0x48, 0xc7, 0xc3, 0x00, 0x00, 0x50, 0x00, // 10000: mov rbx, 0x500000 (unmapped)
		0x48, 0x8b, 0x03, // 10007: mov rax, [rbx]  (faults)
		0x48, 0x8b, 0x0b, // 1000a: mov rcx, [rbx]
		0xf4,
	}},
	{name: "negative 32-bit displacement", pc: 0x10007, code: []byte{
		0x48, 0xc7, 0xc3, 0x00, 0x00, 0x30, 0x00, // 10000: mov rbx, 0x300000
		0x48, 0x8b, 0x83, 0x00, 0xff, 0xff, 0xff, // 10007: mov rax, [rbx-0x100] (disp32: 0x2fff00 is unmapped)
		0xf4,
	}},
	{name: "loop of three chained blocks", pc: 0x10021, code: []byte{
		0x48, 0xc7, 0xc3, 0x00, 0x00, 0x30, 0x00, // 10000: mov rbx, 0x300000
		0x48, 0x31, 0xc9, // 10007: xor rcx, rcx
		0x48, 0x81, 0xf9, 0x00, 0x10, 0x00, 0x00, // 1000a: cmp rcx, 0x1000
		0x7d, 0x20, // 10011: jge 0x10033
		0x48, 0xff, 0xc2, // 10013: inc rdx
		0xeb, 0x09, // 10016: jmp 0x10021
		0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, // 10018
		0x48, 0x8b, 0x04, 0xcb, // 10021: mov rax, [rbx+rcx*8]  (faults at rcx = 0x200)
		0x48, 0xff, 0xc1, // 10025: inc rcx
		0xeb, 0xe0, // 10028: jmp 0x1000a
		0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, // 1002a
		0xf4, // 10033: hlt
	}},
	{name: "block ending in bytes x86asm rejects", pc: 0x1000f, ambiguous: true, code: []byte{
		0x48, 0xc7, 0xc3, 0xff, 0xff, 0x4f, 0x00, // 10000: mov rbx, 0x4fffff
		0x48, 0x8b, 0x04, 0x24, // 10007: mov rax, [rsp]
		0x48, 0x83, 0xc3, 0x01, // 1000b: add rbx, 1 (flags)
		0x48, 0x8b, 0x0b, // 1000f: mov rcx, [rbx]  (faults at 0x500000)
		0x1f, // 10012: pop ds (invalid in 64-bit mode; x86asm rejects it)
	}},
	{name: "second of two equal pushes", pc: 0x10007, ambiguous: true, code: []byte{
		0x48, 0x31, 0xc0, // 10000: xor rax, rax
		0x48, 0x31, 0xdb, // 10003: xor rbx, rbx
		0x50, // 10006: push rax
		0x53, // 10007: push rbx  (faults: rsp was the stack's lowest qword + 8)
		0xf4,
	}, setup: func(t *testing.T, m *Machine) { must(t, m.SetReg(arch.RSP, stackBase+8)) }},
	{name: "second of two different pushes", pc: 0x1000f, code: []byte{
		0x48, 0xc7, 0xc0, 0x01, 0x00, 0x00, 0x00, // 10000: mov rax, 1
		0x48, 0xc7, 0xc3, 0x02, 0x00, 0x00, 0x00, // 10007: mov rbx, 2
		0x50, // 1000e: push rax
		0x53, // 1000f: push rbx  (faults)
		0xf4,
	}, setup: func(t *testing.T, m *Machine) { must(t, m.SetReg(arch.RSP, stackBase+8)) }},
	{name: "pointer chase", pc: 0x1000b, ambiguous: true, code: []byte{
		0x48, 0xc7, 0xc0, 0x00, 0x00, 0x30, 0x00, // 10000: mov rax, 0x300000
		0x48, 0x8b, 0x40, 0x08, // 10007: mov rax, [rax+8]  (reads 0x500000 from data)
		0x48, 0x8b, 0x40, 0x08, // 1000b: mov rax, [rax+8]  (faults at 0x500008)
		0xf4,
	}, setup: func(t *testing.T, m *Machine) {
		_, err := m.WriteMemory(dataBase+8, []byte{0, 0, 0x50, 0, 0, 0, 0, 0})
		must(t, err)
	}},
	{name: "flags before the fault", pc: 0x1000b, code: []byte{
		0x48, 0xc7, 0xc0, 0x05, 0x00, 0x00, 0x00, // 10000: mov rax, 5
		0x48, 0x83, 0xf8, 0x07, // 10007: cmp rax, 7
		0x48, 0x8b, 0x0c, 0x25, 0x00, 0x00, 0x50, 0x00, // 1000b: mov rcx, [0x500000]
		0xf4,
	}},
	{name: "undescribed instruction after a load", pc: 0x10010, code: []byte{
		0x48, 0xc7, 0xc0, 0x00, 0x00, 0x30, 0x00, // 10000: mov rax, 0x300000
		0x48, 0x8b, 0x18, // 10007: mov rbx, [rax]
		0x48, 0x05, 0x00, 0x10, 0x00, 0x00, // 1000a: add rax, 0x1000
		0x0f, 0xae, 0x00, // 10010: fxsave [rax]  (faults)
		0xf4,
	}},
	{name: "load after an undescribed instruction", pc: 0x1000e, ambiguous: true, code: []byte{
		0x48, 0xc7, 0xc0, 0x00, 0x00, 0x30, 0x00, // 10000: mov rax, 0x300000
		0x0f, 0xae, 0x00, // 10007: fxsave [rax]
		0x48, 0x8b, 0x58, 0x08, // 1000a: mov rbx, [rax+8]
		0x48, 0x8b, 0x1b, // 1000e: mov rbx, [rbx]  (faults: 0 is unmapped)
		0xf4,
	}},
	{name: "string loads", pc: 0x1000b, ambiguous: true, code: []byte{
		0x48, 0xc7, 0xc6, 0xf0, 0x0f, 0x30, 0x00, // 10000: mov rsi, 0x300ff0
		0x48, 0xad, // 10007: lodsq
		0x48, 0xad, // 10009: lodsq
		0x48, 0xad, // 1000b: lodsq  (faults at 0x301000)
		0xf4,
	}},
	{name: "rmw on a read-only page", pc: 0x1000a, code: []byte{
		0x48, 0xc7, 0xc3, 0x00, 0x00, 0x30, 0x00, // 10000: mov rbx, 0x300000
		0x48, 0x8b, 0x03, // 10007: mov rax, [rbx]
		0x48, 0xff, 0x03, // 1000a: inc qword [rbx]  (faults on the write)
		0xf4,
	}, setup: func(t *testing.T, m *Machine) { must(t, m.Protect(dataBase, dataSize, arch.PermRead)) }},
}

// TestFaultPCExact: by default (paging) and with SetExactFaults, every
// case stops at the right instruction with the registers (flags
// included) of a stepped run.
func TestFaultPCExact(t *testing.T) {
	for _, mode := range []faultMode{byPaging, bySync} {
		for _, tc := range faultPCTests {
			t.Run(fmt.Sprintf("%s/mode%d", tc.name, mode), func(t *testing.T) {
				var setup func(*Machine)
				if tc.setup != nil {
					setup = func(m *Machine) { tc.setup(t, m) }
				}
				s := wantSameFault(t, tc.code, setup, mode)
				assert.Equal(t, StopFault, s.Reason)
				assert.Equal(t, tc.pc, s.PC)
			})
		}
	}
}

// TestFaultPaging: with paging, an unmapped read, an unmapped write (its
// value and size kept), a write to a read-only page and a read of a
// PROT_NONE page each stop exactly, the machine's memory map is unchanged
// after (the scratch page is gone), and the run can go on once the cause
// is fixed.
func TestFaultPaging(t *testing.T) {
	code := []byte{
		0x48, 0xc7, 0xc3, 0x00, 0x00, 0x50, 0x00, // 10000: mov rbx, 0x500000 (unmapped)
		0x48, 0xff, 0xc0, //                         10007: inc rax
		0x48, 0x89, 0x03, //                         1000a: mov [rbx], rax (faults: write of 1)
		0x48, 0x8b, 0x0b, //                         1000d: mov rcx, [rbx]
		0xf4, //                                     10010: hlt
	}
	m := newMachine(t, code)
	require.NoError(t, m.SetFaultPaging(true))
	require.True(t, m.FaultPaging())
	regions := m.Regions()
	s := m.Run()
	wantStop(t, m, s, StopFault, 0x1000a)
	assert.False(t, s.Inexact)
	assert.Equal(t, arch.PermWrite, s.Access)
	assert.Equal(t, uint64(0x500000), s.Addr)
	assert.Equal(t, uint64(1), reg(t, m, arch.RAX), "inc ran once, the store did not")
	assert.Equal(t, regions, m.Regions(), "the scratch page is gone")
	assert.Equal(t, regions, m.ucRegions())
	st := m.WatchStats()
	assert.Equal(t, uint64(1), st.PageFaults)
	assert.Zero(t, st.Stale)

	// Fixed: mapped read-only, the write faults again (a protection
	// fault); writable, the run reaches hlt.
	require.NoError(t, m.Map(0x500000, 0x1000, arch.PermRead))
	wantStop(t, m, m.Run(), StopFault, 0x1000a)
	require.NoError(t, m.Protect(0x500000, 0x1000, arch.PermNone))
	wantStop(t, m, m.Run(), StopFault, 0x1000a)
	require.NoError(t, m.Protect(0x500000, 0x1000, arch.PermRW))
	wantStop(t, m, m.Run(), StopHalt, 0x10011)
	assert.Equal(t, uint64(1), reg(t, m, arch.RCX))
	assert.Equal(t, uint64(3), m.WatchStats().PageFaults)
}

// TestFaultPCChained: libunicorn leaves RIP in an earlier block when it
// enters the faulting one through a chained jump; a code hook (here a
// disabled breakpoint, which keeps its hook) in the loop moves that RIP.
func TestFaultPCChained(t *testing.T) {
	var loop []byte
	for _, tc := range faultPCTests {
		if tc.name == "loop of three chained blocks" {
			loop = tc.code
		}
	}
	require.NotNil(t, loop)
	for _, hook := range []uint64{0x10011, 0x10016, 0x10025} {
		for _, mode := range []faultMode{byDecoder, bySync, byPaging} {
			m := newMachine(t, loop)
			setFaultMode(t, m, mode)
			require.NoError(t, m.AddBreakpoint(hook, false))
			require.NoError(t, m.RemoveBreakpoint(hook, false))
			s := m.Run()
			wantStop(t, m, s, StopFault, 0x10021)
			assert.False(t, s.Inexact, "hook at %#x, mode %d", hook, mode)
			assert.Equal(t, uint64(0x200), reg(t, m, arch.RCX))
		}
	}
}

// TestFaultPCDefault: the decoder alone (paging off, no SetExactFaults):
// a fault it can prove is exact, and one it cannot is flagged Inexact.
func TestFaultPCDefault(t *testing.T) {
	for _, tc := range faultPCTests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t, tc.code)
			setFaultMode(t, m, byDecoder)
			if tc.setup != nil {
				tc.setup(t, m)
			}
			s := m.Run()
			require.Equal(t, StopFault, s.Reason)
			assert.Equal(t, tc.ambiguous, s.Inexact, "Inexact")
			if !tc.ambiguous {
				assert.Equal(t, tc.pc, s.PC)
			}
		})
	}
}

// TestRepeatedDivideError: a divide error stopped in the interrupt hook
// is never delivered, and QEMU would take a second one for a double
// fault (vector 8) unless the machine clears the first. A guest whose
// handler skips the instruction and divides again must see two divide
// errors (Windows SEH code does exactly this).
func TestRepeatedDivideError(t *testing.T) {
	m := newMachine(t, []byte{
		0x31, 0xc9, // 10000: xor ecx, ecx
		0x31, 0xd2, // 10002: xor edx, edx
		0xf7, 0xf1, // 10004: div ecx
		0xf7, 0xf1, // 10006: div ecx
		0xf4, //       10008: hlt
	})
	wantStop(t, m, m.Run(), StopDivide, codeBase+4)
	must(t, m.SetReg(arch.RIP, codeBase+6)) // as a handler skipping it would
	wantStop(t, m, m.Run(), StopDivide, codeBase+6)
	must(t, m.SetReg(arch.RIP, codeBase+4))
	wantStop(t, m, m.Run(), StopDivide, codeBase+4)
}

// TestFaultPagingAfterLookup: stepping a branch whose target is on an
// unmapped page makes libunicorn look code up there (the step's temporary
// breakpoints), which the tables refuse with a page fault QEMU keeps as
// in flight; the next fault must still be a fault, not a double fault.
func TestFaultPagingAfterLookup(t *testing.T) {
	m := newMachine(t, []byte{
		0x78, 0xc3, // 10000: js 0xffc5 (unmapped page, not taken)
		0x00, 0x00, // 10002: add [rax], al (rax 0: faults)
	})
	require.NoError(t, m.SetFaultPaging(true))
	wantStop(t, m, m.Step(), StopStep, 0x10002)
	s := m.Step()
	wantStop(t, m, s, StopFault, 0x10002)
	assert.Equal(t, uint64(0), s.Addr)
	assert.False(t, s.Inexact)
	// A run from there faults the same way.
	require.NoError(t, m.SetReg(arch.RIP, 0x10002))
	wantStop(t, m, m.Run(), StopFault, 0x10002)
}

// TestFaultPagingOverflow: a memory map that needs more table pages than
// the reserved MiB holds (a page every 2 MiB, each needing a page table
// of its own) turns fault paging off, and faults are placed by the
// decoder again (this one it can prove).
func TestFaultPagingOverflow(t *testing.T) {
	m := newMachine(t, []byte{
		0x48, 0xc7, 0xc3, 0x00, 0x00, 0x50, 0x00, // 10000: mov rbx, 0x500000 (unmapped)
		0x48, 0x8b, 0x03, //                         10007: mov rax, [rbx]
		0xf4,
	})
	require.NoError(t, m.SetFaultPaging(true))
	require.True(t, m.FaultPaging())
	const spread = 400 // > 253 table pages
	for i := uint64(0); i < spread; i++ {
		require.NoError(t, m.Map(0x100000000+i<<21, PageSize, arch.PermRW))
	}
	s := m.Run()
	wantStop(t, m, s, StopFault, 0x10007)
	assert.False(t, s.Inexact, "the decoder proves this one")
	assert.False(t, m.FaultPaging(), "given up")
	assert.Equal(t, uint64(1), m.WatchStats().Overflows)
	assert.Zero(t, m.WatchStats().PageFaults)
}

// TestStepFaultAfterUnmappedSuccessor: a step's temporary breakpoint on an
// unmapped successor (a call's target) makes libunicorn look code up
// there, which leaves a page fault in flight; the step's own page fault
// (the call's push) must still stop as a page fault at the call, not as a
// double fault (FuzzGuestCode found "pop rsp" with a zero stack, then a
// call, stopping on vector 8).
func TestStepFaultAfterUnmappedSuccessor(t *testing.T) {
	code := []byte{
		0x5c,                         // pop rsp (the stack holds 0)
		0xe8, 0x30, 0x30, 0x30, 0x00, // call +0x303030 (unmapped)
	}
	m := newMachine(t, code)
	require.Equal(t, StopStep, m.Step().Reason)
	s := m.Step()
	require.Equal(t, StopFault, s.Reason, "%+v", s)
	assert.Equal(t, uint64(codeBase+1), s.PC)
	assert.Equal(t, uint64(0xfffffffffffffff8), s.Addr)
	assert.Equal(t, arch.PermWrite, s.Access)
	// And a run from there stops on the same fault.
	r := m.Run()
	assert.Equal(t, StopFault, r.Reason, "%+v", r)
	assert.Equal(t, uint64(codeBase+1), r.PC)
}
