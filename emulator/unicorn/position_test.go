package unicorn

import (
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/arch"
)

// positionCode loops 50 times over a store and a call, then runs a rep
// stosb of 16 bytes and stops on hlt:
//
//	    xor rax, rax
//	    mov ecx, 50
//	L:  add rax, 3                     ; codeBase+0x08
//	    mov [rcx*8+0x300000], rax      ; codeBase+0x0c
//	    call f                         ; codeBase+0x14
//	    dec ecx                        ; codeBase+0x19
//	    jnz L
//	    mov edi, 0x300800
//	    mov ecx, 16
//	    rep stosb                      ; codeBase+0x27
//	    hlt
//	f:  add rbx, 1                     ; codeBase+0x2a
//	    ret
var positionCode = []byte{
	0x48, 0x31, 0xc0, 0xb9, 0x32, 0x00, 0x00, 0x00, 0x48, 0x83, 0xc0, 0x03,
	0x48, 0x89, 0x04, 0xcd, 0x00, 0x00, 0x30, 0x00, 0xe8, 0x11, 0x00, 0x00,
	0x00, 0xff, 0xc9, 0x75, 0xeb, 0xbf, 0x00, 0x08, 0x30, 0x00, 0xb9, 0x10,
	0x00, 0x00, 0x00, 0xf3, 0xaa, 0xf4, 0x48, 0x83, 0xc3, 0x01, 0xc3,
}

// stepTrace steps the program to its hlt one instruction (iteration) at
// a time and returns the registers before each step: trace[i] is the
// state at position i.
func stepTrace(t *testing.T) []Context { return stepTraceOf(t, positionCode) }

func stepTraceOf(t *testing.T, code []byte) []Context {
	m := newMachine(t, code)
	require.NoError(t, m.SetCounting(true))
	var trace []Context
	for i := 0; i < 10000; i++ {
		var c Context
		require.NoError(t, m.ReadContext(&c))
		trace = append(trace, c)
		require.Equal(t, uint64(i), m.Position(), "position before step %d", i)
		s := m.StepOne()
		if s.Reason == StopHalt {
			require.Equal(t, uint64(i+1), m.Position())
			return trace
		}
		require.Equal(t, StopStep, s.Reason, "step %d at %#x", i, s.PC)
	}
	t.Fatal("no hlt")
	return nil
}

func TestPositionCountsInstructions(t *testing.T) {
	trace := stepTrace(t)
	// 2 + 50*(5 + 2 called) + 2 + the rep (16 iterations and a last
	// entry that finds RCX zero) + hlt.
	require.Equal(t, 2+50*7+2+17+1, len(trace))

	m := newMachine(t, positionCode)
	require.NoError(t, m.SetCounting(true))
	s := m.Run()
	require.Equal(t, StopHalt, s.Reason)
	assert.Equal(t, uint64(len(trace)), m.Position(), "a plain run counts what steps count")

	// A breakpoint in the middle of a block stops with the position of
	// the first arrival there, and again one loop later.
	m = newMachine(t, positionCode)
	require.NoError(t, m.SetCounting(true))
	require.NoError(t, m.AddBreakpoint(codeBase+0x0c, false))
	var want []uint64
	for i, c := range trace {
		if c.RIP == codeBase+0x0c {
			want = append(want, uint64(i))
		}
	}
	for k := 0; k < 3; k++ {
		s := m.Run()
		require.Equal(t, StopBreakpoint, s.Reason)
		assert.Equal(t, want[k], m.Position(), "breakpoint hit %d", k)
	}
	require.NoError(t, m.RemoveBreakpoint(codeBase+0x0c, false))

	// A write watchpoint (page mode: the twin runs the store).
	require.NoError(t, m.AddWatchpoint(0x300000+40*8, 8, WatchWrite))
	s = m.Run()
	require.Equal(t, StopWatch, s.Reason)
	for i, c := range trace {
		if c.RIP == codeBase+0x14 && c.GPR[arch.RCX] == 40 {
			assert.Equal(t, uint64(i), m.Position(), "watchpoint stop")
			break
		}
	}
	s = m.Run()
	require.Equal(t, StopHalt, s.Reason)
	assert.Equal(t, uint64(len(trace)), m.Position(), "after the watchpoint")
}

func TestPositionLimit(t *testing.T) {
	trace := stepTrace(t)
	rng := rand.New(rand.NewSource(1))
	for k := 0; k < 40; k++ {
		n := uint64(rng.Intn(len(trace)))
		m := newMachine(t, positionCode)
		require.NoError(t, m.SetCounting(true))
		m.SetPositionLimit(n, true)
		s := m.Run()
		require.Equal(t, StopPosition, s.Reason, "limit %d", n)
		require.LessOrEqual(t, m.Position(), n)
		m.SetPositionLimit(0, false)
		for m.Position() < n {
			require.Equal(t, StopStep, m.StepOne().Reason)
		}
		var c Context
		require.NoError(t, m.ReadContext(&c))
		assert.Equal(t, trace[n], c, "registers at position %d", n)
	}
}

// TestPositionLimitResume: runs cut by the limit every few instructions
// and resumed end in the state of an uncut run.
func TestPositionLimitResume(t *testing.T) {
	trace := stepTrace(t)
	for _, every := range []uint64{1, 3, 7, 13} {
		m := newMachine(t, positionCode)
		require.NoError(t, m.SetCounting(true))
		var s Stop
		for i := 0; i < 10000; i++ {
			before := m.Position()
			m.SetPositionLimit(before+every, true)
			s = m.Run()
			m.SetPositionLimit(0, false)
			if s.Reason != StopPosition {
				break
			}
			if m.Position() == before {
				s = m.StepOne() // a block longer than every
				require.Equal(t, StopStep, s.Reason)
			}
			if p := m.Position(); p < uint64(len(trace)) {
				require.Equal(t, trace[p].RIP, s.PC, "every %d: position %d", every, p)
				// RIP itself, also after a block chained into this one.
				require.Equal(t, trace[p].RIP, reg(t, m, arch.RIP), "every %d: position %d: RIP", every, p)
			}
		}
		require.Equal(t, StopHalt, s.Reason, "every %d", every)
		assert.Equal(t, uint64(len(trace)), m.Position(), "every %d", every)
		assert.Equal(t, uint64(50*3), reg(t, m, arch.RAX), "every %d: rax", every)
		assert.Equal(t, uint64(50), reg(t, m, arch.RBX), "every %d: rbx", every)
	}
}

// chainedLoop is two blocks that jump into each other (chained by
// libunicorn after their first runs), over a string of 'A's:
//
//	    mov ecx, 100
//	A:  add rax, 1                 ; codeBase+0x05
//	    movzx edx, byte [rsi]
//	    cmp dl, 0x20
//	    jle C
//	    mov r8d, ecx               ; codeBase+0x11
//	    xor r8d, 1
//	    cmp dl, 0x22
//	    cmove ecx, r8d
//	    dec ecx
//	    jnz A
//	C:  hlt
var chainedLoop = []byte{0xb9, 0x64, 0x00, 0x00, 0x00, 0x48, 0x83, 0xc0, 0x01, 0x0f, 0xb6, 0x16,
	0x80, 0xfa, 0x20, 0x7e, 0x12, 0x41, 0x89, 0xc8, 0x41, 0x83, 0xf0, 0x01,
	0x80, 0xfa, 0x22, 0x41, 0x0f, 0x44, 0xc8, 0xff, 0xc9, 0x75, 0xe2, 0xf4}

// TestPositionLimitChained: a limit stop before a block that the block
// before jumped straight into leaves RIP on that block (libunicorn had
// not stored it: RIP named the block before).
func TestPositionLimitChained(t *testing.T) {
	setup := func(m *Machine) {
		_, err := m.WriteMemory(dataBase, []byte("AAAAAAAA"))
		require.NoError(t, err)
		require.NoError(t, m.SetReg(arch.RSI, dataBase))
	}
	ref := newMachine(t, chainedLoop)
	setup(ref)
	require.NoError(t, ref.SetCounting(true))
	var trace []Context
	for i := 0; i < 2000; i++ {
		var c Context
		require.NoError(t, ref.ReadContext(&c))
		trace = append(trace, c)
		if ref.StepOne().Reason != StopStep {
			break
		}
	}
	require.Equal(t, 1+100*10+1, len(trace))
	for lim := uint64(300); lim < 1000; lim += 37 {
		m := newMachine(t, chainedLoop)
		setup(m)
		require.NoError(t, m.SetCounting(true))
		m.SetPositionLimit(lim, true)
		s := m.Run()
		require.Equal(t, StopPosition, s.Reason)
		var c Context
		require.NoError(t, m.ReadContext(&c))
		assert.Equal(t, trace[m.Position()], c, "limit %d: registers at position %d", lim, m.Position())
	}
}

// TestVirtualTSC: with the counter on and a virtual time stamp counter,
// rdtsc reads the position after it times the multiplier, also when a
// stop splits its block, and rdtscp too:
//
//	nop                 ; position 0
//	rdtsc               ; 1 -> EDX:EAX = 2*3
//	mov rbx, rax        ; 2
//	nop                 ; 3
//	rdtsc               ; 4 -> 5*3
//	mov rsi, rax        ; 5
//	rdtscp              ; 6 -> 7*3
//	hlt
func TestVirtualTSC(t *testing.T) {
	code := []byte{0x90, 0x0f, 0x31, 0x48, 0x89, 0xc3, 0x90, 0x0f, 0x31, 0x48, 0x89, 0xc6, 0x0f, 0x01, 0xf9, 0xf4}
	for _, stopAt := range []uint64{0, 1, 3, 5} {
		m := newMachine(t, code)
		require.NoError(t, m.SetCounting(true))
		m.SetVirtualTSC(true, 3)
		if stopAt > 0 {
			m.SetPositionLimit(stopAt, true)
			s := m.Run()
			require.Equal(t, StopPosition, s.Reason)
			m.SetPositionLimit(0, false)
			for m.Position() < stopAt {
				require.Equal(t, StopStep, m.StepOne().Reason)
			}
		}
		s := m.Run()
		require.Equal(t, StopHalt, s.Reason, "stop at %d", stopAt)
		assert.Equal(t, uint64(2*3), reg(t, m, arch.RBX), "first rdtsc (stop at %d)", stopAt)
		assert.Equal(t, uint64(5*3), reg(t, m, arch.RSI), "second rdtsc (stop at %d)", stopAt)
		assert.Equal(t, uint64(7*3), reg(t, m, arch.RAX), "rdtscp (stop at %d)", stopAt)
		assert.Equal(t, uint64(0), reg(t, m, arch.RDX))
		assert.Equal(t, uint64(8), m.Position())
	}
}

// TestCoverageWithPositionLimit: with the position counter and coverage
// both on, a block the position limit stops before is not recorded (it
// did not run), and a run resumed to the end records what a run with
// coverage alone records.
func TestCoverageWithPositionLimit(t *testing.T) {
	const after = codeBase + 0x1d // the block after the loop, entered once
	plain := newMachine(t, positionCode)
	require.NoError(t, plain.SetCoverage(true))
	require.Equal(t, StopHalt, plain.Run().Reason)
	want, lost := plain.Coverage()
	require.False(t, lost)
	require.Contains(t, want, Block{Addr: after, Size: 12}, "%x", want)

	// Where the block after the loop starts.
	m := newMachine(t, positionCode)
	require.NoError(t, m.SetCounting(true))
	var at uint64
	for i := 0; i < 10000; i++ {
		pc, err := m.Reg(arch.RIP)
		require.NoError(t, err)
		if pc == after {
			at = m.Position()
			break
		}
		require.Equal(t, StopStep, m.StepOne().Reason)
	}
	require.NotZero(t, at)

	for _, counting := range []bool{true, false} {
		m := newMachine(t, positionCode)
		require.NoError(t, m.SetCoverage(true))
		require.NoError(t, m.SetCounting(true))
		if !counting {
			// Counting switched off again: coverage goes back to its
			// own hook.
			require.NoError(t, m.SetCounting(false))
			require.Equal(t, StopHalt, m.Run().Reason)
			got, _ := m.Coverage()
			assert.Equal(t, want, got, "coverage after counting was turned off")
			continue
		}
		m.SetPositionLimit(at, true)
		s := m.Run()
		require.Equal(t, StopPosition, s.Reason)
		assert.Equal(t, uint64(after), s.PC)
		assert.Equal(t, at, m.Position())
		got, _ := m.Coverage()
		for _, b := range got {
			assert.NotEqual(t, uint64(after), b.Addr, "a block the limit stopped before is recorded")
		}
		m.SetPositionLimit(0, false)
		require.Equal(t, StopHalt, m.Run().Reason)
		got, _ = m.Coverage()
		assert.Equal(t, want, got, "coverage of the resumed run")
	}
}
