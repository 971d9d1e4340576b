package unicorn

import (
	"testing"

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

// The decoder's known limit: an earlier instruction of the block with the
// same address expression, whose register changed in between, looks the
// same from the registers. SetPCSync(true) is exact.
func TestFaultPCAmbiguous(t *testing.T) {
	code := []byte{
		0x48, 0xc7, 0xc3, 0x00, 0xf0, 0x30, 0x00, // 10000: mov rbx, 0x30f000 (unmapped)
		0x48, 0x81, 0xeb, 0x00, 0xf0, 0x00, 0x00, // 10007: sub rbx, 0xf000 -> 0x300000 (mapped)
		0x48, 0x8b, 0x03, // 1000e: mov rax, [rbx]
		0x48, 0x81, 0xc3, 0x00, 0xf0, 0x00, 0x00, // 10011: add rbx, 0xf000
		0x48, 0x8b, 0x0b, // 10018: mov rcx, [rbx]  (faults)
		0xf4, // 1001b: hlt
	}
	m := newMachine(t, code)
	m.SetPCSync(true)
	wantStop(t, m, m.Run(), StopFault, codeBase+0x18)
	m = newMachine(t, code)
	s := m.Run()
	t.Logf("without sync the decoder reports %#x (exact: %#x)", s.PC, codeBase+0x18)
	if !s.Inexact {
		t.Fatal("ambiguous fault PC not flagged")
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
