package dwarf

import "encoding/binary"

// Limits of the expression evaluator.
const (
	// MaxExprSteps bounds the operations one evaluation executes
	// (DW_OP_skip and DW_OP_bra can loop).
	MaxExprSteps = 10000
	// MaxExprStack bounds the stack depth.
	MaxExprStack = 256
)

// Eval evaluates a DWARF expression of call frame information and returns
// the value on top of the stack. The initial values are pushed first, in
// order: for DW_CFA_expression and DW_CFA_val_expression that is the CFA
// (DWARF 5 section 6.4.2.3); DW_CFA_def_cfa_expression pushes nothing, and
// its result is the CFA itself (not an address holding it).
//
// regs gives the values DW_OP_breg*, DW_OP_bregx and DW_OP_reg*/regx read
// (a register not known is an error); mem is read by DW_OP_deref and
// DW_OP_deref_size. Addresses are 8 bytes. Operations the DWARF standard
// calls meaningless in call frame information (DW_OP_call*,
// DW_OP_push_object_address, DW_OP_call_frame_cfa, DW_OP_fbreg, TLS,
// pieces) are rejected with ErrOpNotAllowed.
func Eval(expr []byte, regs *Registers, mem Memory, initial ...uint64) (uint64, error) {
	var stack [MaxExprStack]uint64
	sp := 0
	if len(initial) > MaxExprStack {
		return 0, &ExprError{Err: ErrStackOverflow}
	}
	sp += copy(stack[:], initial)
	c := cursor{B: expr}
	for steps := 0; c.Left() > 0; steps++ {
		start := c.Off
		op := c.U8()
		fail := func(err error) (uint64, error) {
			return 0, &ExprError{Offset: start, Op: op, Err: err}
		}
		if steps >= MaxExprSteps {
			return fail(ErrStepLimit)
		}
		// need checks the operands an operation pops.
		need := func(n int) bool { return sp >= n }
		push := true
		var v uint64
		switch {
		case op >= DW_OP_lit0 && op <= DW_OP_lit31:
			v = uint64(op - DW_OP_lit0)
		case op >= DW_OP_breg0 && op <= DW_OP_breg31, op == DW_OP_bregx, op >= DW_OP_reg0 && op <= DW_OP_reg31, op == DW_OP_regx:
			var r uint64
			var off int64
			switch {
			case op == DW_OP_bregx:
				r = c.ULEB()
				off = c.SLEB()
			case op == DW_OP_regx:
				r = c.ULEB()
			case op >= DW_OP_breg0:
				r = uint64(op - DW_OP_breg0)
				off = c.SLEB()
			default:
				// A register location: like libgcc and GDB, its
				// value.
				r = uint64(op - DW_OP_reg0)
			}
			if c.Err != nil {
				return fail(c.Err)
			}
			if regs == nil {
				return fail(ErrUnknownRegister)
			}
			rv, ok := regs.Get(r)
			if !ok {
				return fail(ErrUnknownRegister)
			}
			v = rv + uint64(off)
		default:
			switch op {
			case DW_OP_addr:
				v = c.U64()
			case DW_OP_const1u:
				v = uint64(c.U8())
			case DW_OP_const1s:
				v = uint64(int64(int8(c.U8())))
			case DW_OP_const2u:
				v = uint64(c.U16())
			case DW_OP_const2s:
				v = uint64(int64(int16(c.U16())))
			case DW_OP_const4u:
				v = uint64(c.U32())
			case DW_OP_const4s:
				v = uint64(int64(int32(c.U32())))
			case DW_OP_const8u, DW_OP_const8s:
				v = c.U64()
			case DW_OP_constu:
				v = c.ULEB()
			case DW_OP_consts:
				v = uint64(c.SLEB())
			case DW_OP_dup:
				if !need(1) {
					return fail(ErrStackUnderflow)
				}
				v = stack[sp-1]
			case DW_OP_drop:
				if !need(1) {
					return fail(ErrStackUnderflow)
				}
				sp--
				push = false
			case DW_OP_over:
				if !need(2) {
					return fail(ErrStackUnderflow)
				}
				v = stack[sp-2]
			case DW_OP_pick:
				i := int(c.U8())
				if c.Err != nil {
					return fail(c.Err)
				}
				if !need(i + 1) {
					return fail(ErrStackUnderflow)
				}
				v = stack[sp-1-i]
			case DW_OP_swap:
				if !need(2) {
					return fail(ErrStackUnderflow)
				}
				stack[sp-1], stack[sp-2] = stack[sp-2], stack[sp-1]
				push = false
			case DW_OP_rot:
				// a b c (c on top) becomes c a b.
				if !need(3) {
					return fail(ErrStackUnderflow)
				}
				a, b, t := stack[sp-3], stack[sp-2], stack[sp-1]
				stack[sp-3], stack[sp-2], stack[sp-1] = t, a, b
				push = false
			case DW_OP_deref, DW_OP_deref_size:
				size := 8
				if op == DW_OP_deref_size {
					size = int(c.U8())
					if c.Err == nil && (size < 1 || size > 8) {
						return fail(ErrTruncated)
					}
				}
				if c.Err != nil {
					return fail(c.Err)
				}
				if !need(1) {
					return fail(ErrStackUnderflow)
				}
				if mem == nil {
					return fail(ErrNoMemory)
				}
				var b [8]byte
				if err := readFull(mem, "DW_OP_deref", stack[sp-1], b[:size]); err != nil {
					return fail(err)
				}
				stack[sp-1] = binary.LittleEndian.Uint64(b[:])
				push = false
			case DW_OP_abs, DW_OP_neg, DW_OP_not, DW_OP_plus_uconst:
				var k uint64
				if op == DW_OP_plus_uconst {
					k = c.ULEB()
					if c.Err != nil {
						return fail(c.Err)
					}
				}
				if !need(1) {
					return fail(ErrStackUnderflow)
				}
				x := stack[sp-1]
				switch op {
				case DW_OP_abs:
					if int64(x) < 0 {
						x = -x
					}
				case DW_OP_neg:
					x = -x
				case DW_OP_not:
					x = ^x
				default:
					x += k
				}
				stack[sp-1] = x
				push = false
			case DW_OP_and, DW_OP_div, DW_OP_minus, DW_OP_mod, DW_OP_mul, DW_OP_or, DW_OP_plus,
				DW_OP_shl, DW_OP_shr, DW_OP_shra, DW_OP_xor,
				DW_OP_eq, DW_OP_ge, DW_OP_gt, DW_OP_le, DW_OP_lt, DW_OP_ne:
				if !need(2) {
					return fail(ErrStackUnderflow)
				}
				// first is the second entry, second the top:
				// "first op second".
				a, b := stack[sp-2], stack[sp-1]
				var r uint64
				switch op {
				case DW_OP_and:
					r = a & b
				case DW_OP_div:
					// Signed, as libgcc and GDB do; Go defines
					// MinInt64 / -1 without trapping.
					if b == 0 {
						return fail(ErrDivideByZero)
					}
					r = uint64(int64(a) / int64(b))
				case DW_OP_minus:
					r = a - b
				case DW_OP_mod:
					// Unsigned, as libgcc and GDB do for the
					// generic type.
					if b == 0 {
						return fail(ErrDivideByZero)
					}
					r = a % b
				case DW_OP_mul:
					r = a * b
				case DW_OP_or:
					r = a | b
				case DW_OP_plus:
					r = a + b
				case DW_OP_shl:
					r = a << b
				case DW_OP_shr:
					r = a >> b
				case DW_OP_shra:
					r = uint64(int64(a) >> b)
				case DW_OP_xor:
					r = a ^ b
				case DW_OP_eq:
					r = b2u(int64(a) == int64(b))
				case DW_OP_ge:
					r = b2u(int64(a) >= int64(b))
				case DW_OP_gt:
					r = b2u(int64(a) > int64(b))
				case DW_OP_le:
					r = b2u(int64(a) <= int64(b))
				case DW_OP_lt:
					r = b2u(int64(a) < int64(b))
				case DW_OP_ne:
					r = b2u(int64(a) != int64(b))
				}
				sp--
				stack[sp-1] = r
				push = false
			case DW_OP_skip, DW_OP_bra:
				d := int16(c.U16())
				if c.Err != nil {
					return fail(c.Err)
				}
				push = false
				take := true
				if op == DW_OP_bra {
					if !need(1) {
						return fail(ErrStackUnderflow)
					}
					sp--
					take = stack[sp] != 0
				}
				if take {
					t := c.Off + int(d)
					if t < 0 || t > len(expr) {
						return fail(ErrBranch)
					}
					c.Off = t
				}
			case DW_OP_nop:
				push = false
			case DW_OP_fbreg, DW_OP_xderef, DW_OP_xderef_size, DW_OP_piece, DW_OP_bit_piece,
				DW_OP_push_object_address, DW_OP_call2, DW_OP_call4, DW_OP_call_ref,
				DW_OP_form_tls_address, DW_OP_call_frame_cfa, DW_OP_implicit_value, DW_OP_stack_value,
				0xe0, 0xf3: // DW_OP_GNU_push_tls_address, DW_OP_GNU_entry_value
				return fail(ErrOpNotAllowed)
			default:
				return fail(ErrBadOp)
			}
		}
		if c.Err != nil {
			return fail(c.Err)
		}
		if push {
			if sp >= MaxExprStack {
				return fail(ErrStackOverflow)
			}
			stack[sp] = v
			sp++
		}
	}
	if sp == 0 {
		return 0, &ExprError{Offset: len(expr), Err: ErrStackUnderflow}
	}
	return stack[sp-1], nil
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
