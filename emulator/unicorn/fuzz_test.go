package unicorn

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"golang.org/x/arch/x86/x86asm"

	"github.com/rspstub/rspstub/internal/arch"
)

// Options of FuzzGuestCode, the bits of its first argument.
const (
	fuzzExact  = 1 << iota // SetExactFaults(true): every data fault must be exact
	fuzzShadow             // the shadow call stack is on
	fuzzBreak              // a breakpoint at the code offset in bits 4-7 (times 4)
	fuzzWatch              // a write watchpoint on the first data qword
)

// fuzzMaxStops bounds one input: after a fault or an illegal instruction
// the harness moves RIP past it and goes on, as a debugger user would.
const fuzzMaxStops = 8

// fuzzRunLimit bounds one Run of a guest that loops (the blobs are small:
// a run that is not done by then loops).
const fuzzRunLimit = 5 * time.Millisecond

// fuzzStepLimit bounds the stepped run of the oracle.
const fuzzStepLimit = 5000

// FuzzGuestCode runs arbitrary bytes as guest code in a real machine: no
// input may end the process (libunicorn 2.0.1's translator aborts on some
// encodings, see doc.go), every stop must leave RIP at the stop's PC with
// registers and memory readable, an untranslatable instruction must stop
// as StopIllegal with its bytes, and the machine must run normal code
// afterwards. The first data fault, unless flagged Inexact, is compared
// with a run stepped one instruction at a time (exact by construction):
// the same PC, and the same registers (with fuzzExact, flags included). Seeds: the encodings that abort libunicorn, the fault
// cases of TestFaultPCExact, and loops; testdata/fuzz/FuzzGuestCode holds
// random blobs that aborted the process before the fix.
func FuzzGuestCode(f *testing.F) {
	for _, u := range untranslatable {
		f.Add(byte(0), cat(faultPrologue, u.insn, []byte{0xf4}))
		f.Add(byte(fuzzBreak|fuzzExact|3<<4), cat(faultPrologue, u.insn, []byte{0xf4}))
	}
	for _, lock := range [][]byte{
		{0xf0, 0x38, 0x00},             // lock cmp [rax], al
		{0xf0, 0x48, 0x39, 0x03},       // lock cmp [rbx], rax
		{0xf0, 0xa7},                   // lock cmpsd
		{0xf0, 0x0f, 0xa3, 0xc0},       // lock bt eax, eax
		{0xf0, 0x66, 0x0f, 0xba, 0xe0}, // lock bt ax, imm8 (with its byte below)
	} {
		f.Add(byte(fuzzShadow), cat(faultPrologue, lock, []byte{0x05, 0xf4}))
	}
	for _, tc := range faultPCTests {
		f.Add(byte(fuzzExact), tc.code)
		f.Add(byte(0), tc.code)
	}
	f.Add(byte(fuzzWatch|fuzzShadow), []byte{
		0x48, 0xc7, 0xc1, 0x10, 0x00, 0x00, 0x00, // mov rcx, 16
		0x48, 0x89, 0x0c, 0x25, 0x00, 0x00, 0x30, 0x00, // mov [0x300000], rcx
		0xe8, 0x02, 0x00, 0x00, 0x00, // call +2
		0xeb, 0x01, // jmp +1
		0xc3,             // ret
		0x48, 0xff, 0xc9, // dec rcx
		0x75, 0xe7, // jnz back to the store
		0xf4,
	})
	f.Add(byte(fuzzBreak|2<<4), countLoop)
	f.Fuzz(func(t *testing.T, opts byte, code []byte) {
		if len(code) == 0 || len(code) > 512 {
			return
		}
		first, m := fuzzRun(t, opts, code)
		// The machine still runs ordinary code afterwards.
		const probe = codeBase + 0x8000
		if _, err := m.WriteMemory(probe, []byte{0x48, 0xff, 0xc0, 0xf4}); err != nil {
			t.Fatalf("write after the run: %v", err)
		}
		m.SetExactFaults(false)
		m.SetShadowStack(false)
		for _, bp := range []bool{false, true} {
			m.RemoveBreakpoint(codeBase+uint64(opts>>4)*4, bp)
		}
		m.RemoveWatchpoint(dataBase, 8, WatchWrite)
		// The guest may have set the trap flag (popf): a clean RFLAGS.
		if err := m.SetReg(arch.RFLAGS, 2); err != nil {
			t.Fatal(err)
		}
		if err := m.SetReg(arch.RIP, probe); err != nil {
			t.Fatal(err)
		}
		if s := m.Run(); s.Reason != StopHalt || s.PC != probe+4 {
			t.Fatalf("after the input the machine no longer runs code: %+v", s)
		}
		if first.Reason == StopFault && first.Access != arch.PermExec && opts&(fuzzBreak|fuzzWatch) == 0 {
			fuzzOracle(t, opts, code, first)
		}
	})
}

// fuzzRun runs code with the options, checking every stop, and returns
// the first stop.
func fuzzRun(t *testing.T, opts byte, code []byte) (Stop, *Machine) {
	m := newMachine(t, code)
	if opts&fuzzExact != 0 {
		m.SetExactFaults(true)
	}
	if opts&fuzzShadow != 0 {
		m.SetShadowStack(true)
	}
	if opts&fuzzBreak != 0 {
		must(t, m.AddBreakpoint(codeBase+uint64(opts>>4)*4, opts&0x80 != 0))
	}
	if opts&fuzzWatch != 0 {
		must(t, m.AddWatchpoint(dataBase, 8, WatchWrite))
	}
	var first Stop
	for i := 0; i < fuzzMaxStops; i++ {
		timer := time.AfterFunc(fuzzRunLimit, m.Interrupt)
		s := m.Run()
		timer.Stop()
		if i == 0 {
			first = s
		}
		fuzzCheckStop(t, m, opts, s)
		if !fuzzResume(m, s) {
			break
		}
	}
	return first, m
}

// fuzzCheckStop checks what every stop must satisfy.
func fuzzCheckStop(t *testing.T, m *Machine, opts byte, s Stop) {
	t.Helper()
	var c Context
	if err := m.ReadContext(&c); err != nil {
		t.Fatalf("%v stop: registers unreadable: %v", s.Reason, err)
	}
	if c.RIP != s.PC {
		t.Fatalf("%v stop at %#x but RIP is %#x", s.Reason, s.PC, c.RIP)
	}
	switch s.Reason {
	case StopError:
		t.Fatalf("the machine failed: %+v", s)
	case StopIllegal:
		var b [1]byte
		if n, _ := m.ReadMemory(s.PC, b[:]); n == 1 && len(s.Insn) == 0 {
			t.Fatalf("illegal instruction at %#x without its bytes", s.PC)
		}
		if s.Untranslatable && !bytes.HasPrefix(fuzzBytes(m, s.PC, len(s.Insn)), s.Insn) {
			t.Fatalf("Insn % x is not the memory at %#x", s.Insn, s.PC)
		}
	}
}

func fuzzBytes(m *Machine, pc uint64, n int) []byte {
	b := make([]byte, n)
	got, _ := m.ReadMemory(pc, b)
	return b[:got]
}

// fuzzResume prepares the next run after s, as a debugger user would
// (skip a faulting instruction), and reports whether to go on.
func fuzzResume(m *Machine, s Stop) bool {
	switch s.Reason {
	case StopHalt, StopInterrupt, StopError:
		return false
	case StopFault:
		if s.Access == arch.PermExec {
			return false // RIP is outside the code
		}
	case StopIllegal, StopDivide, StopException, StopTrap:
	default:
		return true // breakpoint, watchpoint, int3, syscall: PC is where to go on
	}
	var buf [15]byte
	n, _ := m.ReadMemory(s.PC, buf[:])
	size := 1
	if inst, err := x86asm.Decode(buf[:n], 64); err == nil && inst.Len > 0 {
		size = inst.Len
	} else if len(s.Insn) > 0 {
		size = len(s.Insn)
	}
	return m.SetReg(arch.RIP, s.PC+uint64(size)) == nil
}

// mistranslated reports whether code may hold an encoding that libunicorn
// 2.0.1 translates with a temporary nothing set when it is not alone in
// its block (the families of doc.go: a lock prefix, or ff /3 or ff /5 with
// mod=3): such an instruction then computes junk, different from one
// translation to the next, so two runs cannot be compared.
func mistranslated(code []byte) bool {
	for i, b := range code {
		if b == 0xf0 {
			return true
		}
		if b == 0xff && i+1 < len(code) && code[i+1]>>6 == 3 && (code[i+1]>>3&7 == 3 || code[i+1]>>3&7 == 5) {
			return true
		}
	}
	return false
}

// nondeterministic reports code that may read a value that differs
// between two runs (the time stamp counter, hardware random numbers):
// the stepped run may then fault at another address. Bytes are matched,
// not decoded, so some deterministic inputs are skipped too.
func nondeterministic(code []byte) bool {
	for i := 0; i+2 < len(code); i++ {
		// libunicorn also runs rdtsc behind a VEX prefix (#UD on a CPU):
		// c5 xx 31, and c4 xx yy 31 with map 0f.
		if code[i] == 0xc5 && code[i+2] == 0x31 ||
			code[i] == 0xc4 && code[i+1]&0x1f == 1 && i+3 < len(code) && code[i+3] == 0x31 {
			return true
		}
	}
	for i := 0; i+1 < len(code); i++ {
		if code[i] != 0x0f {
			continue
		}
		switch code[i+1] {
		case 0x31: // rdtsc
			return true
		case 0x01: // rdtscp is 0f 01 f9
			if i+2 < len(code) && code[i+2] == 0xf9 {
				return true
			}
		case 0xc7: // rdrand, rdseed, rdpid: 0f c7 /6, /7
			if i+2 < len(code) && code[i+2]>>3&7 >= 6 {
				return true
			}
		}
	}
	return false
}

// fuzzOracle runs code again one instruction at a time and compares the
// first stop, a data fault, with the stepped run's.
func fuzzOracle(t *testing.T, opts byte, code []byte, got Stop) {
	t.Helper()
	if mistranslated(code) || nondeterministic(code) {
		return
	}
	run := newMachine(t, code)
	if opts&fuzzExact != 0 {
		run.SetExactFaults(true)
	}
	if opts&fuzzShadow != 0 {
		run.SetShadowStack(true)
	}
	timer := time.AfterFunc(fuzzRunLimit, run.Interrupt)
	got = run.Run()
	timer.Stop()
	if got.Reason != StopFault {
		return // interrupted this time
	}
	step := newMachine(t, code)
	var want Stop
	deadline := time.Now().Add(200 * time.Millisecond)
	for i := 0; i < fuzzStepLimit && time.Now().Before(deadline); i++ {
		if want = step.Step(); want.Reason != StopStep {
			break
		}
	}
	if want.Reason == StopIllegal && want.Untranslatable {
		// libunicorn translates such an encoding differently inside a
		// longer block: there it may run with a garbage temporary instead
		// of aborting (lock cmp [rax], al faults at a junk address).
		return
	}
	if want.Reason != StopFault || want.Addr != got.Addr || want.Access != got.Access {
		// A different first stop: the stepped run reached something else
		// first (it cannot: both run the same instructions), or timed out.
		if want.Reason != StopStep {
			t.Fatalf("Run stopped with %v at %#x (addr %#x), stepping with %v at %#x (addr %#x)",
				got.Reason, got.PC, got.Addr, want.Reason, want.PC, want.Addr)
		}
		return
	}
	if got.Inexact {
		return // flagged: allowed without exact faults (checked above with)
	}
	if got.PC != want.PC {
		t.Fatalf("fault at addr %#x reported at %#x, stepping finds %#x (exact=%v)", got.Addr, got.PC, want.PC, opts&fuzzExact != 0)
	}
	var cg, cw Context
	must(t, run.ReadContext(&cg))
	must(t, step.ReadContext(&cw))
	if opts&fuzzExact == 0 || flagsBeforeAccess(fuzzBytes(run, got.PC, 15)) {
		// Stale without exact faults, and inside rcl, rcr and setcc
		// with a memory operand in any case (doc.go).
		cg.RFLAGS, cw.RFLAGS = 0, 0
	}
	if cg != cw {
		t.Fatalf("registers at the fault at %#x differ from the stepped run's:\nrun  %+v\nstep %+v", got.PC, cg, cw)
	}
}

// flagsBeforeAccess reports whether code starts with an instruction whose
// translation computes the flags before its memory access (rcl, rcr and
// setcc with a memory operand): QEMU's state at a fault inside it may mix
// two flag computations (doc.go, "Fault paging").
func flagsBeforeAccess(code []byte) bool {
	inst, err := x86asm.Decode(code, 64)
	if err != nil {
		return false
	}
	switch inst.Op {
	case x86asm.RCL, x86asm.RCR,
		x86asm.SETA, x86asm.SETAE, x86asm.SETB, x86asm.SETBE, x86asm.SETE, x86asm.SETNE,
		x86asm.SETG, x86asm.SETGE, x86asm.SETL, x86asm.SETLE, x86asm.SETO, x86asm.SETNO,
		x86asm.SETP, x86asm.SETNP, x86asm.SETS, x86asm.SETNS:
	default:
		return false
	}
	for _, a := range inst.Args {
		if _, ok := a.(x86asm.Mem); ok {
			return true
		}
	}
	return false
}

// TestFaultFlagsTranslatorLimit: the input FuzzGuestCode found in CI
// (rcr with a memory operand faulting after a sub in the same block)
// stops at the exact instruction with exact general registers; its flags
// are QEMU's mix (doc.go), the exception the oracle makes. An adc to the
// same address, which computes the carry into a temporary, keeps exact
// flags: the exception is no wider than the instructions it names.
func TestFaultFlagsTranslatorLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		code  []byte
		exact bool // flags exact at the fault
	}{
		{"rcr", []byte{0x2c, 0x30, 0xb0, 0xea, 0xd1, 0x1b, 0xf4}, false},        // sub al,0x30; mov al,0xea; rcr dword [rbx],1
		{"setl", []byte{0xb0, 0x7f, 0x04, 0x01, 0x0f, 0x9c, 0x03, 0xf4}, false}, // mov al,0x7f; add al,1; setl byte [rbx]
		{"adc", []byte{0x2c, 0x30, 0xb0, 0xea, 0x83, 0x13, 0x01, 0xf4}, true},   // sub al,0x30; mov al,0xea; adc dword [rbx],1
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := newMachine(t, tc.code)
			got := run.Run()
			require.Equal(t, StopFault, got.Reason)
			step := newMachine(t, tc.code)
			var want Stop
			for i := 0; i < 10; i++ {
				if want = step.Step(); want.Reason != StopStep {
					break
				}
			}
			require.Equal(t, StopFault, want.Reason)
			assert.Equal(t, want.PC, got.PC)
			assert.False(t, got.Inexact)
			var cg, cw Context
			must(t, run.ReadContext(&cg))
			must(t, step.ReadContext(&cw))
			t.Logf("RFLAGS at the fault: %#x, stepped: %#x", cg.RFLAGS, cw.RFLAGS)
			assert.Equal(t, !tc.exact, flagsBeforeAccess(tc.code[4:]), "the oracle's exception")
			if tc.exact {
				assert.Equal(t, cw.RFLAGS, cg.RFLAGS)
			} else {
				assert.NotEqual(t, cw.RFLAGS, cg.RFLAGS,
					"the translator no longer mixes the flags here: drop the exception (doc.go, flagsBeforeAccess)")
			}
			cg.RFLAGS, cw.RFLAGS = 0, 0
			assert.Equal(t, cw, cg)
		})
	}
}

// TestAbortCorpus: every input of FuzzGuestCode's corpus named abort-*
// made libunicorn's translator abort the process before the fix (the
// random ones: 48-byte blobs found by running 20,000 of them; the others:
// one of each family of doc.go). Each must still reach an abort, now
// survived, and end in clean stops.
func TestAbortCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/fuzz/FuzzGuestCode/abort-*")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			opts, code := readFuzzInput(t, name)
			_, m := fuzzRun(t, opts, code)
			assert.NotZero(t, m.TranslationAborts(), "the input no longer reaches a translator abort")
		})
	}
}

// readFuzzInput parses a corpus file of FuzzGuestCode (go test fuzz v1:
// a byte and a []byte, one Go literal a line).
func readFuzzInput(t *testing.T, name string) (byte, []byte) {
	t.Helper()
	data, err := os.ReadFile(name)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	require.Len(t, lines, 3, "%s", name)
	require.Equal(t, "go test fuzz v1", lines[0])
	b, ok := strings.CutPrefix(lines[1], "byte(")
	require.True(t, ok, "%s: %q", name, lines[1])
	r, _, _, err := strconv.UnquoteChar(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(b, ")"), "'"), "'"), '\'')
	require.NoError(t, err, "%s: %q", name, lines[1])
	s, ok := strings.CutPrefix(lines[2], "[]byte(")
	require.True(t, ok, "%s: %q", name, lines[2])
	code, err := strconv.Unquote(strings.TrimSuffix(s, ")"))
	require.NoError(t, err, "%s: %q", name, lines[2])
	return byte(r), []byte(code)
}
