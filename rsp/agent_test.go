package rsp

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeAx is registers 0..15 (register n holds 0x100+n, register 3 holds
// -2) and 16 bytes of memory at 0x1000.
type fakeAx struct{ mem [16]byte }

func (f *fakeAx) axReg(n int) (uint64, error) {
	if n < 0 || n > 15 {
		return 0, errAxBadOperand
	}
	if n == 3 {
		return ^uint64(1), nil
	}
	return 0x100 + uint64(n), nil
}

func (f *fakeAx) axMem(addr uint64, p []byte) error {
	if addr < 0x1000 || addr+uint64(len(p)) > 0x1000+16 {
		return errNoMemory
	}
	copy(p, f.mem[addr-0x1000:])
	return nil
}

func newFakeAx() *fakeAx {
	f := &fakeAx{}
	binary.LittleEndian.PutUint64(f.mem[:], 0x8877665544332211)
	binary.LittleEndian.PutUint64(f.mem[8:], 5)
	return f
}

// TestAgentEval: expressions as GDB compiles conditions, with the bytes
// spelled out beside their meaning.
func TestAgentEval(t *testing.T) {
	for _, tc := range []struct {
		name string
		code []byte
		want uint64
		err  error
	}{
		{"i == 2 (GDB: reg rdi, ext 32, const8 2, equal)", []byte{
			0x26, 0x00, 0x05, // reg 5 (rdi = 0x105)
			0x16, 0x20, // ext 32
			0x22, 0x02, // const8 2
			0x13, // equal
			0x27, // end
		}, 0, nil},
		{"rdi == 0x105", []byte{0x26, 0x00, 0x05, 0x23, 0x01, 0x05, 0x13, 0x27}, 1, nil},
		{"*(int *)0x1008 > 4: const16 0x1008, ref32, const8 4, swap, less_signed", []byte{
			0x23, 0x10, 0x08, // const16 0x1008
			0x19,       // ref32 -> 5
			0x22, 0x04, // const8 4
			0x2b, // swap: 4 5
			0x14, // less_signed: 4 < 5
			0x27,
		}, 1, nil},
		{"ref8/16/64", []byte{0x23, 0x10, 0x00, 0x1a, 0x23, 0x10, 0x00, 0x17, 0x03, 0x27}, 0x8877665544332211 - 0x11, nil},
		{"ref16", []byte{0x23, 0x10, 0x01, 0x18, 0x27}, 0x3322, nil},
		{"signed compare of a negative register", []byte{0x26, 0x00, 0x03, 0x22, 0x00, 0x14, 0x27}, 1, nil},
		{"unsigned compare of it", []byte{0x26, 0x00, 0x03, 0x22, 0x00, 0x15, 0x27}, 0, nil},
		{"arithmetic: (7*6-2)/4%7 = 3", []byte{0x22, 7, 0x22, 6, 0x04, 0x22, 2, 0x03, 0x22, 4, 0x06, 0x22, 7, 0x08, 0x27}, 3, nil},
		{"signed division: -8/2", []byte{0x24, 0xff, 0xff, 0xff, 0xf8, 0x16, 32, 0x22, 2, 0x05, 0x27}, ^uint64(3), nil},
		{"signed remainder: -7%2", []byte{0x22, 0xf9, 0x16, 8, 0x22, 2, 0x07, 0x27}, ^uint64(0), nil},
		{"shifts", []byte{0x22, 1, 0x22, 4, 0x09, 0x22, 2, 0x0b, 0x27}, 4, nil},
		{"arithmetic right shift", []byte{0x22, 0x80, 0x16, 8, 0x22, 4, 0x0a, 0x27}, ^uint64(7), nil},
		{"bit ops: ~(0xf0 & 0x3c | 1) ^ 0", []byte{0x22, 0xf0, 0x22, 0x3c, 0x0f, 0x22, 1, 0x10, 0x12, 0x22, 0, 0x11, 0x27}, ^uint64(0x31), nil},
		{"log_not", []byte{0x22, 5, 0x0e, 0x27}, 0, nil},
		{"zero_ext 8 of 0x1ff", []byte{0x23, 0x01, 0xff, 0x2a, 8, 0x27}, 0xff, nil},
		{"const64", []byte{0x25, 1, 2, 3, 4, 5, 6, 7, 8, 0x27}, 0x0102030405060708, nil},
		{"dup, pop, pick 1, rot", []byte{
			0x22, 1, 0x22, 2, 0x22, 3, // 1 2 3
			0x33,    // rot: 3 1 2
			0x32, 2, // pick 2: 3 1 2 3
			0x29,       // pop: 3 1 2
			0x28,       // dup: 3 1 2 2
			0x03,       // sub: 3 1 0
			0x29, 0x29, // 3
			0x27,
		}, 3, nil},
		{"if_goto taken", []byte{0x22, 1, 0x20, 0x00, 0x07, 0x22, 9, 0x22, 4, 0x27}, 4, nil},
		{"if_goto not taken, goto", []byte{0x22, 0, 0x20, 0x00, 0x0a, 0x22, 9, 0x21, 0x00, 0x0c, 0x22, 4, 0x27}, 9, nil},
		{"trace ops keep their stack effect", []byte{0x22, 0x10, 0x22, 4, 0x0c, 0x22, 7, 0x0d, 4, 0x30, 0, 4, 0x2e, 0, 1, 0x27}, 7, nil},

		{"division by zero", []byte{0x22, 1, 0x22, 0, 0x05, 0x27}, 0, errAxDivZero},
		{"no end", []byte{0x22, 1}, 0, errAxNoEnd},
		{"truncated const32", []byte{0x24, 1, 2}, 0, errAxTruncated},
		{"underflow", []byte{0x02, 0x27}, 0, errAxUnderflow},
		{"end on an empty stack", []byte{0x27}, 0, errAxUnderflow},
		{"jump out", []byte{0x21, 0x00, 0x09, 0x27}, 0, errAxJump},
		{"backward goto forever", []byte{0x21, 0x00, 0x00}, 0, errAxSteps},
		{"floats", []byte{0x01, 0x27}, 0, errAxUnsupported},
		{"getv", []byte{0x2c, 0, 1, 0x27}, 0, errAxUnsupported},
		{"unassigned opcode", []byte{0xff}, 0, errAxUnsupported},
		{"ext 0", []byte{0x22, 1, 0x16, 0, 0x27}, 0, errAxBadOperand},
		{"no such register", []byte{0x26, 0x01, 0x00, 0x27}, 0, errAxBadOperand},
		{"unreadable memory", []byte{0x22, 0, 0x19, 0x27}, 0, errNoMemory},
	} {
		var m axMachine
		got, err := m.eval(tc.code, newFakeAx())
		if tc.err != nil {
			assert.True(t, errors.Is(err, tc.err), "%s: error %v, want %v", tc.name, err, tc.err)
			continue
		}
		if assert.NoError(t, err, tc.name) {
			assert.Equal(t, tc.want, got, "%s: %#x", tc.name, got)
		}
	}
	var m axMachine
	overflow := make([]byte, 0, 2*axStackSize+3)
	for i := 0; i <= axStackSize; i++ {
		overflow = append(overflow, 0x22, 1)
	}
	_, err := m.eval(append(overflow, 0x27), newFakeAx())
	assert.ErrorIs(t, err, errAxOverflow)
}

// FuzzAgentExpr: any bytecode evaluates (or fails) without a panic,
// within the step bound, and with the stack inside its array.
func FuzzAgentExpr(f *testing.F) {
	for _, seed := range [][]byte{
		{0x26, 0x00, 0x05, 0x16, 0x20, 0x22, 0x02, 0x13, 0x27},
		{0x23, 0x10, 0x08, 0x19, 0x22, 0x04, 0x2b, 0x14, 0x27},
		{0x22, 1, 0x20, 0x00, 0x07, 0x22, 9, 0x22, 4, 0x27},
		{0x21, 0x00, 0x00},
		{0x22, 1, 0x22, 2, 0x22, 3, 0x33, 0x32, 2, 0x29, 0x28, 0x03, 0x27},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, code []byte) {
		if len(code) > maxConditionLen {
			return
		}
		var m axMachine
		m.eval(code, newFakeAx())
		if m.sp < 0 || m.sp > axStackSize {
			t.Fatalf("stack pointer %d", m.sp)
		}
	})
}

// TestConditionalBreakpoints: a Z0 with conditions is reported only
// when one of them is true; GDB re-inserting it replaces them; a
// condition that cannot be evaluated reports the hit.
func TestConditionalBreakpoints(t *testing.T) {
	tt := newTestTarget()
	conn, srv, _ := startPipe(t, tt)
	p := newRawPeer(t, conn)
	assert.Contains(t, p.ask("qSupported:swbreak+"), ";ConditionalBreakpoints+")
	tt.setReg(AMD64RAX, 7)
	// The test target's continue stops at the next breakpoint above rip.
	// rax == 8: false at 0x140001100; rax == 7: true at 0x140001200.
	require.Equal(t, "OK", p.ask("Z0,140001100,1;X7,26000022081327"))
	require.Equal(t, "OK", p.ask("Z0,140001200,1;X7,26000022071327;X3,220027"))
	got := askStop(p, "c")
	assert.Regexp(t, `^T05thread:1;10:0012004001000000;.*swbreak:;$`, got, "the false condition was not reported")
	assert.Equal(t, uint64(1), srv.Stats().CondFalse)

	// Re-inserted without a condition: reported.
	tt.setReg(AMD64RIP, testCodeBase+0x10)
	require.Equal(t, "OK", p.ask("Z0,140001100,1"))
	assert.Regexp(t, `^T05thread:1;10:0011004001000000;`, askStop(p, "c"))

	// A condition that fails (division by zero) reports the hit.
	tt.setReg(AMD64RIP, testCodeBase+0x10)
	require.Equal(t, "OK", p.ask("Z0,140001100,1;X6,220122000527"))
	assert.Regexp(t, `^T05thread:1;10:0011004001000000;`, askStop(p, "c"))

	for _, bad := range []string{
		"Z0,140001100,1;X3,2200",  // length and bytes disagree
		"Z0,140001100,1;X0,",      // empty
		"Z0,140001100,1;Xzz,00",   // bad length
		"Z0,140001100,1;X1,zz",    // bad hex
		"Z0,140001100,1;X2001,00", // too long
	} {
		assert.Equal(t, "E16", p.ask(bad), bad)
	}
	assert.Equal(t, "OK", p.ask("Z0,140001100,1;X1,27;cmds:0,X1,27"), "commands are ignored")
}

func TestConditionalBreakpointAllocs(t *testing.T) {
	s, _ := newLoopSession(t, "Z0,140001100,1;X9,260005162022021327", true)
	allocs := testing.AllocsPerRun(200, func() { stepOnce(t, s) })
	assert.Zero(t, allocs)
	b := s.bps.find(BreakSoftware, 0x140001100)
	require.NotNil(t, b)
	assert.Equal(t, []int{9}, b.ends)
	s.axTID = 1
	allocs = testing.AllocsPerRun(200, func() { s.conditionTrue(b, 1) })
	assert.Zero(t, allocs, "evaluation allocates")
}

// askStop sends a resume and returns its stop reply, skipping console
// output.
func askStop(p *rawPeer, pkt string) string {
	p.send(frame(pkt))
	for {
		r := p.recv()
		if len(r) == 0 || r[0] != 'O' || r == "OK" {
			return r
		}
	}
}
