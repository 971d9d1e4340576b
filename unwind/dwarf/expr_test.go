package dwarf

import (
	"testing"
)

func TestEval(t *testing.T) {
	var regs Registers
	regs.Set(RBP, 0x7000)
	regs.Set(RSP, 0x6f00)
	regs.Set(R12, 5)
	mem := &fakeMem{}
	mem.Put64(0x6fd8, 0x1122334455667788)
	neg := func(v int64) uint64 { return uint64(v) }
	for _, tc := range []struct {
		name string
		expr []byte
		init []uint64
		want uint64
	}{
		{"lit0", b(0x30), nil, 0},
		{"lit31", b(0x4f), nil, 31},
		{"const1u", b(0x08, 0xff), nil, 0xff},
		{"const1s", b(0x09, 0xff), nil, neg(-1)},
		{"const2u", b(0x0a, 0x34, 0x12), nil, 0x1234},
		{"const2s", b(0x0b, 0xfe, 0xff), nil, neg(-2)},
		{"const4u", b(0x0c, 0x78, 0x56, 0x34, 0x12), nil, 0x12345678},
		{"const4s", b(0x0d, 0xfd, 0xff, 0xff, 0xff), nil, neg(-3)},
		{"const8u", cat(b(0x0e), u64(0x0102030405060708)), nil, 0x0102030405060708},
		{"const8s", cat(b(0x0f), u64(^uint64(3))), nil, neg(-4)},
		{"constu 624485", b(0x10, 0xe5, 0x8e, 0x26), nil, 624485},
		{"consts -123456", b(0x11, 0xc0, 0xbb, 0x78), nil, neg(-123456)},
		{"addr", cat(b(0x03), u64(0x401000)), nil, 0x401000},
		{"breg6 -40 (rbp-40)", b(0x76, 0x58), nil, 0x7000 - 40},
		{"breg7 +8", b(0x77, 0x08), nil, 0x6f08},
		{"bregx r12 +3", b(0x92, 12, 3), nil, 8},
		{"reg6 is rbp's value", b(0x56), nil, 0x7000},
		{"regx 12", b(0x90, 12), nil, 5},
		{"deref", b(0x76, 0x58, 0x06), nil, 0x1122334455667788},
		{"deref_size 2", b(0x76, 0x58, 0x94, 2), nil, 0x7788},
		{"deref_size 8", b(0x76, 0x58, 0x94, 8), nil, 0x1122334455667788},
		{"the initial value (CFA) is on the stack", b(0x23, 0x10), []uint64{0x100}, 0x110}, // plus_uconst 16
		{"dup plus", b(0x33, 0x12, 0x22), nil, 6},                                          // lit3 dup plus
		{"drop", b(0x31, 0x32, 0x13), nil, 1},                                              // lit1 lit2 drop
		{"over", b(0x31, 0x32, 0x14), nil, 1},                                              // lit1 lit2 over
		{"pick 2", b(0x31, 0x32, 0x33, 0x15, 2), nil, 1},                                   // lit1 lit2 lit3 pick 2
		{"swap minus", b(0x31, 0x35, 0x16, 0x1c), nil, 4},                                  // lit1 lit5 swap minus: 5-1
		{"rot: a b c -> c a b", b(0x31, 0x32, 0x33, 0x17), nil, 2},                         // top is b=2
		{"rot third", b(0x31, 0x32, 0x33, 0x17, 0x13, 0x13), nil, 3},                       // bottom is c=3
		{"abs", b(0x09, 0xf6, 0x19), nil, 10},                                              // const1s -10 abs
		{"and", b(0x3c, 0x3a, 0x1a), nil, 8},                                               // 12 & 10
		{"div signed", b(0x09, 0xf6, 0x33, 0x1b), nil, neg(-3)},                            // -10 / 3
		{"div MinInt64 by -1 does not trap", cat(b(0x0e), u64(1<<63), b(0x09, 0xff, 0x1b)), nil, 1 << 63},
		{"minus", b(0x3a, 0x33, 0x1c), nil, 7},
		{"mod unsigned", b(0x09, 0xf6, 0x33, 0x1d), nil, (1<<64 - 10) % 3},
		{"mul", b(0x36, 0x37, 0x1e), nil, 42},
		{"neg", b(0x35, 0x1f), nil, neg(-5)},
		{"not", b(0x30, 0x20), nil, ^uint64(0)},
		{"or", b(0x3c, 0x33, 0x21), nil, 15},
		{"plus", b(0x3c, 0x33, 0x22), nil, 15},
		{"shl", b(0x31, 0x44, 0x24), nil, 1 << 20},
		{"shl by 64 is 0", b(0x31, 0x08, 64, 0x24), nil, 0},
		{"shr logical", b(0x09, 0xf0, 0x34, 0x25), nil, neg(-16) >> 4},
		{"shra arithmetic", b(0x09, 0xf0, 0x34, 0x26), nil, neg(-1)},
		{"xor", b(0x3c, 0x3a, 0x27), nil, 6},
		{"eq", b(0x33, 0x33, 0x29), nil, 1},
		{"ge signed", b(0x09, 0xff, 0x31, 0x2a), nil, 0}, // -1 >= 1
		{"gt", b(0x32, 0x31, 0x2b), nil, 1},
		{"le", b(0x32, 0x31, 0x2c), nil, 0},
		{"lt signed", b(0x09, 0xff, 0x30, 0x2d), nil, 1}, // -1 < 0
		{"ne", b(0x32, 0x31, 0x2e), nil, 1},
		{"skip over lit5", b(0x31, 0x2f, 1, 0, 0x35), nil, 1},
		{"bra taken", b(0x37, 0x31, 0x28, 1, 0, 0x35), nil, 7},
		{"bra not taken", b(0x37, 0x30, 0x28, 1, 0, 0x35), nil, 5},
		{"skip to the very end", b(0x34, 0x2f, 0, 0), nil, 4},
		// A loop: count down from 3 to 0 with bra backwards.
		// 0: lit3; 1: lit1; 2: minus; 3: dup; 4: bra -6 (from 7 to 1)
		{"loop", b(0x33, 0x31, 0x1c, 0x12, 0x28, 0xfa, 0xff), nil, 0},
		{"nop", b(0x96, 0x39, 0x96), nil, 9},
	} {
		got, err := Eval(tc.expr, &regs, mem, tc.init...)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s: %#x, want %#x", tc.name, got, tc.want)
		}
	}
}

func TestEvalErrors(t *testing.T) {
	var regs Registers
	regs.Set(RBP, 0x7000)
	mem := &fakeMem{}
	loop := b(0x2f, 0xfd, 0xff) // DW_OP_skip -3: itself, forever
	deep := make([]byte, MaxExprStack+1)
	for i := range deep {
		deep[i] = 0x30
	}
	for _, tc := range []struct {
		name string
		expr []byte
		want error
	}{
		{"empty", nil, ErrStackUnderflow},
		{"plus on one value", b(0x31, 0x22), ErrStackUnderflow},
		{"drop on empty", b(0x13), ErrStackUnderflow},
		{"pick past the bottom", b(0x31, 0x15, 1), ErrStackUnderflow},
		{"rot on two", b(0x31, 0x31, 0x17), ErrStackUnderflow},
		{"overflow", deep, ErrStackOverflow},
		{"endless loop", loop, ErrStepLimit},
		{"div by zero", b(0x31, 0x30, 0x1b), ErrDivideByZero},
		{"mod by zero", b(0x31, 0x30, 0x1d), ErrDivideByZero},
		{"branch before the start", b(0x2f, 0xf0, 0xff), ErrBranch},
		{"branch past the end", b(0x2f, 0x10, 0x00), ErrBranch},
		{"unknown register value", b(0x73, 0), ErrUnknownRegister},
		{"unreadable deref", b(0x76, 0, 0x06), nil},
		{"deref_size 9", b(0x31, 0x94, 9), ErrTruncated},
		{"fbreg has no frame base here", b(0x91, 0), ErrOpNotAllowed},
		{"call_frame_cfa", b(0x9c), ErrOpNotAllowed},
		{"push_object_address", b(0x97), ErrOpNotAllowed},
		{"call2", b(0x98, 0, 0), ErrOpNotAllowed},
		{"stack_value", b(0x31, 0x9f), ErrOpNotAllowed},
		{"unknown op", b(0x01), ErrBadOp},
		{"truncated const4u", b(0x0c, 1, 2), ErrTruncated},
		{"truncated breg", b(0x76, 0x80), ErrTruncated},
	} {
		_, err := Eval(tc.expr, &regs, mem)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if tc.want == nil {
			var re *ReadError
			if !asErr(err, &re) || re.Addr != 0x7000 {
				t.Errorf("%s: %v, want a ReadError at 0x7000", tc.name, err)
			}
			continue
		}
		if !isErr(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		var ee *ExprError
		if !asErr(err, &ee) {
			t.Errorf("%s: %T is not an ExprError", tc.name, err)
		}
	}
	if _, err := Eval(b(0x06), nil, nil, 0x1000); !isErr(err, ErrNoMemory) {
		t.Errorf("deref without memory: %v", err)
	}
	if _, err := Eval(b(0x76, 0), nil, nil); !isErr(err, ErrUnknownRegister) {
		t.Errorf("breg without registers: %v", err)
	}
}

// TestEvalAllocs: evaluation allocates nothing (the stack is an array);
// only a memory read costs its buffer, which escapes through the Memory
// interface.
func TestEvalAllocs(t *testing.T) {
	var regs Registers
	regs.Set(RBP, 0x7000)
	mem := &fakeMem{}
	expr := b(0x76, 0x58, 0x23, 8, 0x12, 0x1e, 0x31, 0x28, 0, 0)
	n := testing.AllocsPerRun(100, func() {
		if _, err := Eval(expr, &regs, mem, 0x10); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per Eval", n)
	}
}
