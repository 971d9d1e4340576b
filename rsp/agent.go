package rsp

import "errors"

// Agent expressions: the bytecode GDB compiles a breakpoint condition to
// when the stub says ConditionalBreakpoints+ (GDB manual, appendix "The
// GDB Agent Expression Mechanism", sections "General Bytecode Design"
// and "Bytecode Descriptions"). A Z0/Z1 packet carries them after the
// kind:
//
//	Z0,addr,kind;X<len>,<hex bytecode>[;X<len>,<hex bytecode>...]
//
// The breakpoint is reported when any condition is true (non-zero). The
// machine is a stack of 64-bit values; operands follow their opcode
// big-endian. Jump targets are offsets from the start of the expression.
//
//	0x02 add  0x03 sub  0x04 mul  0x05 div_signed  0x06 div_unsigned
//	0x07 rem_signed  0x08 rem_unsigned  0x09 lsh  0x0a rsh_signed
//	0x0b rsh_unsigned  0x0e log_not  0x0f bit_and  0x10 bit_or
//	0x11 bit_xor  0x12 bit_not  0x13 equal  0x14 less_signed
//	0x15 less_unsigned  0x16 ext n  0x17-0x1a ref8/16/32/64
//	0x20 if_goto off16  0x21 goto off16  0x22-0x25 const8/16/32/64
//	0x26 reg n16  0x27 end  0x28 dup  0x29 pop  0x2a zero_ext n
//	0x2b swap  0x32 pick n  0x33 rot
//	trace ops (0x0c trace, 0x0d trace_quick n, 0x2e tracev n16,
//	0x2f tracenz, 0x30 trace16 n16) keep their stack effect and record
//	nothing (a condition has no trace frame)
//
// Not supported (evaluation fails): floating point (0x01 float, 0x1b-0x1f),
// trace state variables (0x2c getv, 0x2d setv) and printf (0x34). A
// condition that fails to evaluate counts as true, so the debugger sees
// the stop, as gdbserver does.
//
// The evaluator never trusts the bytecode: every operand and jump target
// is checked against the expression's length, the stack is a fixed array
// checked on every push and pop, and the number of executed instructions
// is bounded (a backward goto cannot loop forever). It allocates
// nothing.

// Agent expression opcodes (spec names).
const (
	axFloat        = 0x01
	axAdd          = 0x02
	axSub          = 0x03
	axMul          = 0x04
	axDivSigned    = 0x05
	axDivUnsigned  = 0x06
	axRemSigned    = 0x07
	axRemUnsigned  = 0x08
	axLsh          = 0x09
	axRshSigned    = 0x0a
	axRshUnsigned  = 0x0b
	axTrace        = 0x0c
	axTraceQuick   = 0x0d
	axLogNot       = 0x0e
	axBitAnd       = 0x0f
	axBitOr        = 0x10
	axBitXor       = 0x11
	axBitNot       = 0x12
	axEqual        = 0x13
	axLessSigned   = 0x14
	axLessUnsigned = 0x15
	axExt          = 0x16
	axRef8         = 0x17
	axRef16        = 0x18
	axRef32        = 0x19
	axRef64        = 0x1a
	axIfGoto       = 0x20
	axGoto         = 0x21
	axConst8       = 0x22
	axConst16      = 0x23
	axConst32      = 0x24
	axConst64      = 0x25
	axReg          = 0x26
	axEnd          = 0x27
	axDup          = 0x28
	axPop          = 0x29
	axZeroExt      = 0x2a
	axSwap         = 0x2b
	axGetv         = 0x2c
	axSetv         = 0x2d
	axTracev       = 0x2e
	axTracenz      = 0x2f
	axTrace16      = 0x30
	axPick         = 0x32
	axRot          = 0x33
	axPrintf       = 0x34
)

// Bounds of one evaluation.
const (
	axStackSize = 64     // values on the stack
	axMaxSteps  = 100000 // instructions executed
)

// axEnv is what an expression reads: the stopped thread's registers (by
// description number) and guest memory.
type axEnv interface {
	axReg(regnum int) (uint64, error)
	axMem(addr uint64, p []byte) error
}

// Evaluation errors (preallocated: a bad expression costs nothing).
var (
	errAxTruncated   = errors.New("agent expression: operand runs past the end")
	errAxNoEnd       = errors.New("agent expression: no end")
	errAxUnderflow   = errors.New("agent expression: stack underflow")
	errAxOverflow    = errors.New("agent expression: stack overflow")
	errAxDivZero     = errors.New("agent expression: division by zero")
	errAxJump        = errors.New("agent expression: jump outside the expression")
	errAxSteps       = errors.New("agent expression: too many steps")
	errAxUnsupported = errors.New("agent expression: unsupported opcode")
	errAxBadOperand  = errors.New("agent expression: bad operand")
)

// axMachine is the evaluator's state; one per session, reused.
type axMachine struct {
	stack [axStackSize]uint64
	sp    int
	mem   [8]byte
}

func (m *axMachine) push(v uint64) error {
	if m.sp >= len(m.stack) {
		return errAxOverflow
	}
	m.stack[m.sp] = v
	m.sp++
	return nil
}

func (m *axMachine) pop() (uint64, error) {
	if m.sp == 0 {
		return 0, errAxUnderflow
	}
	m.sp--
	return m.stack[m.sp], nil
}

// pop2 pops b (the top) and then a: the operands of "a b => ...".
func (m *axMachine) pop2() (a, b uint64, err error) {
	if m.sp < 2 {
		return 0, 0, errAxUnderflow
	}
	m.sp -= 2
	return m.stack[m.sp], m.stack[m.sp+1], nil
}

// operand reads an n-byte big-endian operand at pc.
func operand(code []byte, pc, n int) (uint64, error) {
	if pc+n > len(code) {
		return 0, errAxTruncated
	}
	var v uint64
	for _, b := range code[pc : pc+n] {
		v = v<<8 | uint64(b)
	}
	return v, nil
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// eval runs one expression and returns the value on top of the stack at
// `end`.
func (m *axMachine) eval(code []byte, env axEnv) (uint64, error) {
	m.sp = 0
	pc := 0
	for steps := 0; ; steps++ {
		if steps >= axMaxSteps {
			return 0, errAxSteps
		}
		if pc >= len(code) {
			return 0, errAxNoEnd
		}
		op := code[pc]
		pc++
		switch op {
		case axAdd, axSub, axMul, axDivSigned, axDivUnsigned, axRemSigned, axRemUnsigned,
			axLsh, axRshSigned, axRshUnsigned, axBitAnd, axBitOr, axBitXor,
			axEqual, axLessSigned, axLessUnsigned:
			a, b, err := m.pop2()
			if err != nil {
				return 0, err
			}
			var v uint64
			switch op {
			case axAdd:
				v = a + b
			case axSub:
				v = a - b
			case axMul:
				v = a * b
			case axDivSigned, axRemSigned:
				if b == 0 {
					return 0, errAxDivZero
				}
				// MinInt64 / -1 wraps in Go (no trap), as on the stub
				// side of gdbserver.
				if op == axDivSigned {
					v = uint64(int64(a) / int64(b))
				} else {
					v = uint64(int64(a) % int64(b))
				}
			case axDivUnsigned, axRemUnsigned:
				if b == 0 {
					return 0, errAxDivZero
				}
				if op == axDivUnsigned {
					v = a / b
				} else {
					v = a % b
				}
			case axLsh:
				v = a << b
			case axRshSigned:
				v = uint64(int64(a) >> min(b, 63))
			case axRshUnsigned:
				v = a >> b
			case axBitAnd:
				v = a & b
			case axBitOr:
				v = a | b
			case axBitXor:
				v = a ^ b
			case axEqual:
				v = b2u(a == b)
			case axLessSigned:
				v = b2u(int64(a) < int64(b))
			case axLessUnsigned:
				v = b2u(a < b)
			}
			m.push(v) // two popped: room for one
		case axLogNot, axBitNot:
			a, err := m.pop()
			if err != nil {
				return 0, err
			}
			if op == axLogNot {
				a = b2u(a == 0)
			} else {
				a = ^a
			}
			m.push(a)
		case axExt, axZeroExt:
			n, err := operand(code, pc, 1)
			if err != nil {
				return 0, err
			}
			pc++
			if n == 0 || n > 64 {
				return 0, errAxBadOperand
			}
			a, err := m.pop()
			if err != nil {
				return 0, err
			}
			if n < 64 {
				if op == axExt {
					a = uint64(int64(a<<(64-n)) >> (64 - n))
				} else {
					a &= 1<<n - 1
				}
			}
			m.push(a)
		case axRef8, axRef16, axRef32, axRef64:
			size := 1 << (op - axRef8)
			addr, err := m.pop()
			if err != nil {
				return 0, err
			}
			buf := m.mem[:size]
			if err := env.axMem(addr, buf); err != nil {
				return 0, err
			}
			var v uint64
			for i := size - 1; i >= 0; i-- { // x86: little-endian
				v = v<<8 | uint64(buf[i])
			}
			m.push(v)
		case axIfGoto, axGoto:
			to, err := operand(code, pc, 2)
			if err != nil {
				return 0, err
			}
			pc += 2
			if to >= uint64(len(code)) {
				return 0, errAxJump
			}
			jump := true
			if op == axIfGoto {
				a, err := m.pop()
				if err != nil {
					return 0, err
				}
				jump = a != 0
			}
			if jump {
				pc = int(to)
			}
		case axConst8, axConst16, axConst32, axConst64:
			n := 1 << (op - axConst8)
			v, err := operand(code, pc, n)
			if err != nil {
				return 0, err
			}
			pc += n
			if err := m.push(v); err != nil {
				return 0, err
			}
		case axReg:
			n, err := operand(code, pc, 2)
			if err != nil {
				return 0, err
			}
			pc += 2
			v, err := env.axReg(int(n))
			if err != nil {
				return 0, err
			}
			if err := m.push(v); err != nil {
				return 0, err
			}
		case axEnd:
			return m.pop()
		case axDup:
			if m.sp == 0 {
				return 0, errAxUnderflow
			}
			if err := m.push(m.stack[m.sp-1]); err != nil {
				return 0, err
			}
		case axPop:
			if _, err := m.pop(); err != nil {
				return 0, err
			}
		case axSwap:
			if m.sp < 2 {
				return 0, errAxUnderflow
			}
			m.stack[m.sp-1], m.stack[m.sp-2] = m.stack[m.sp-2], m.stack[m.sp-1]
		case axPick:
			n, err := operand(code, pc, 1)
			if err != nil {
				return 0, err
			}
			pc++
			if uint64(m.sp) <= n {
				return 0, errAxUnderflow
			}
			if err := m.push(m.stack[m.sp-1-int(n)]); err != nil {
				return 0, err
			}
		case axRot:
			// a b c => c a b: the top (c) goes third, b comes to the top.
			if m.sp < 3 {
				return 0, errAxUnderflow
			}
			s := m.stack[m.sp-3 : m.sp]
			a, b, c := s[0], s[1], s[2]
			s[0], s[1], s[2] = c, a, b
		case axTrace, axTracenz:
			if _, _, err := m.pop2(); err != nil { // addr size =>
				return 0, err
			}
		case axTraceQuick:
			if pc+1 > len(code) {
				return 0, errAxTruncated
			}
			pc++
			if m.sp == 0 { // addr => addr
				return 0, errAxUnderflow
			}
		case axTrace16:
			if pc+2 > len(code) {
				return 0, errAxTruncated
			}
			pc += 2
			if m.sp == 0 {
				return 0, errAxUnderflow
			}
		case axTracev:
			if pc+2 > len(code) {
				return 0, errAxTruncated
			}
			pc += 2
		default:
			// float, ref_float.., l_to_d, d_to_l, getv, setv, printf
			// and unassigned opcodes.
			return 0, errAxUnsupported
		}
	}
}
