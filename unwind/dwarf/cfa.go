package dwarf

// RuleKind is how a register of the caller is recovered (DWARF 5 section
// 6.4.1, "register rules").
type RuleKind uint8

const (
	// RuleUnspecified: no instruction mentioned the register. What that
	// means is the ABI's choice; Step applies a preserved-register set.
	RuleUnspecified RuleKind = iota
	// RuleUndefined: the register has no recoverable value. For the
	// return address column it marks the outermost frame.
	RuleUndefined
	// RuleSameValue: the caller's value is the callee's.
	RuleSameValue
	// RuleOffset: saved at address CFA+Offset.
	RuleOffset
	// RuleValOffset: the value is CFA+Offset.
	RuleValOffset
	// RuleRegister: the value is in register Reg of the callee.
	RuleRegister
	// RuleExpression: saved at the address Expr computes, with the CFA
	// pushed first.
	RuleExpression
	// RuleValExpression: the value is what Expr computes, with the CFA
	// pushed first.
	RuleValExpression
)

var ruleNames = [...]string{"unspecified", "undefined", "same_value", "offset", "val_offset", "register", "expression", "val_expression"}

func (k RuleKind) String() string {
	if int(k) < len(ruleNames) {
		return ruleNames[k]
	}
	return "rule?"
}

// Rule is one register rule. Offsets are already multiplied by the data
// alignment factor.
type Rule struct {
	Kind   RuleKind
	Offset int64
	Reg    uint64
	Expr   []byte
}

// CFAKind is how the CFA is computed.
type CFAKind uint8

const (
	CFAUnset     CFAKind = iota // no DW_CFA_def_cfa* yet
	CFARegOffset                // value of Reg plus Offset
	CFAExpr                     // the value Expr computes (nothing pushed)
)

// CFARule is the CFA rule of a row.
type CFARule struct {
	Kind   CFAKind
	Reg    uint64
	Offset int64
	Expr   []byte
}

// Row is one row of the call frame table: the rules valid for PCs in
// [Loc, End).
type Row struct {
	Loc, End uint64
	CFA      CFARule
	Regs     [NumRegs]Rule
	// ArgsSize is the last DW_CFA_GNU_args_size operand (bytes of
	// outgoing arguments pushed): landing pads need it, unwinding does
	// not.
	ArgsSize uint64
	// Untracked counts rules seen for registers >= NumRegs.
	Untracked int
}

// Limits of the interpreter.
const (
	// MaxStateDepth bounds the DW_CFA_remember_state stack. GCC nests
	// a handful at most.
	MaxStateDepth = 64
	// MaxInstructions bounds one CFA program (CIE plus FDE).
	MaxInstructions = 1 << 20
)

// machine interprets CFA programs. Each remembered state is a full copy of
// the row (arrays, no maps): restoring one can never alias the current
// row, which is the bug in interpreters that remember a map by reference.
type machine struct {
	cie     *CIE
	fde     *FDE
	row     Row
	initial Row
	stack   []Row
	loc     uint64
	steps   int
}

// stop tells run what to do on each row boundary: it gets the finished
// row (valid for [row.Loc, next)) and returns true to stop.
type stopFunc func(row *Row, next uint64) bool

// run interprets prog. base is the target address of prog[0] (for
// DW_CFA_set_loc with a pc-relative encoding). It returns stopped=true when
// stop asked to.
func (m *machine) run(prog []byte, base uint64, isCIE bool, stop stopFunc) (bool, error) {
	c := cursor{B: prog}
	cie := m.cie
	entry := cie.Offset
	if !isCIE {
		entry = m.fde.Offset
	}
	for c.Left() > 0 {
		m.steps++
		start := c.Off
		op := c.U8()
		perr := func(err error) error {
			return &ProgramError{Entry: entry, CIE: isCIE, Offset: start, Opcode: op, Err: err}
		}
		if m.steps > MaxInstructions {
			return false, perr(ErrProgramLimit)
		}
		advance := func(delta uint64) bool {
			next := m.loc + delta*cie.CodeAlign
			m.row.Loc = m.loc
			if stop != nil && stop(&m.row, next) {
				return true
			}
			m.loc = next
			m.row.Loc = next
			return false
		}
		var (
			reg  uint64
			rule Rule
			set  bool
		)
		switch op & 0xc0 {
		case DW_CFA_advance_loc:
			if advance(uint64(op & 0x3f)) {
				return true, nil
			}
			continue
		case DW_CFA_offset:
			reg = uint64(op & 0x3f)
			rule = Rule{Kind: RuleOffset, Offset: int64(c.ULEB()) * cie.DataAlign}
			set = true
		case DW_CFA_restore:
			reg = uint64(op & 0x3f)
			rule = m.restored(reg, isCIE)
			set = true
		}
		if !set {
			switch op {
			case DW_CFA_nop:
			case DW_CFA_set_loc:
				var loc uint64
				if cie.sec != nil && cie.sec.Kind == EHFrame {
					enc := cie.FDEEncoding
					v, ind, err := decodePointer(&c, enc, base, int(cie.AddressSize), cie.sec.Bases, 0, false, nil)
					if err != nil || ind {
						if err == nil {
							err = ErrIndirect
						}
						return false, perr(err)
					}
					loc = v
				} else {
					c.Bytes(uint64(cie.SegmentSize))
					loc = uN(&c, int(cie.AddressSize))
				}
				if c.Err != nil {
					return false, perr(c.Err)
				}
				m.row.Loc = m.loc
				if stop != nil && stop(&m.row, loc) {
					return true, nil
				}
				m.loc = loc
				m.row.Loc = loc
			case DW_CFA_advance_loc1:
				d := uint64(c.U8())
				if c.Err == nil && advance(d) {
					return true, nil
				}
			case DW_CFA_advance_loc2:
				d := uint64(c.U16())
				if c.Err == nil && advance(d) {
					return true, nil
				}
			case DW_CFA_advance_loc4:
				d := uint64(c.U32())
				if c.Err == nil && advance(d) {
					return true, nil
				}
			case DW_CFA_MIPS_advance_loc8:
				d := c.U64()
				if c.Err == nil && advance(d) {
					return true, nil
				}
			case DW_CFA_offset_extended:
				reg = c.ULEB()
				rule = Rule{Kind: RuleOffset, Offset: int64(c.ULEB()) * cie.DataAlign}
				set = true
			case DW_CFA_offset_extended_sf:
				reg = c.ULEB()
				rule = Rule{Kind: RuleOffset, Offset: c.SLEB() * cie.DataAlign}
				set = true
			case DW_CFA_GNU_negative_offset_extended:
				reg = c.ULEB()
				rule = Rule{Kind: RuleOffset, Offset: -int64(c.ULEB()) * cie.DataAlign}
				set = true
			case DW_CFA_val_offset:
				// Factored like every other offset of a register rule.
				reg = c.ULEB()
				rule = Rule{Kind: RuleValOffset, Offset: int64(c.ULEB()) * cie.DataAlign}
				set = true
			case DW_CFA_val_offset_sf:
				reg = c.ULEB()
				rule = Rule{Kind: RuleValOffset, Offset: c.SLEB() * cie.DataAlign}
				set = true
			case DW_CFA_restore_extended:
				reg = c.ULEB()
				rule = m.restored(reg, isCIE)
				set = true
			case DW_CFA_undefined:
				reg = c.ULEB()
				rule = Rule{Kind: RuleUndefined}
				set = true
			case DW_CFA_same_value:
				reg = c.ULEB()
				rule = Rule{Kind: RuleSameValue}
				set = true
			case DW_CFA_register:
				reg = c.ULEB()
				rule = Rule{Kind: RuleRegister, Reg: c.ULEB()}
				set = true
			case DW_CFA_expression, DW_CFA_val_expression:
				reg = c.ULEB()
				n := c.ULEB()
				e := c.Bytes(n)
				k := RuleExpression
				if op == DW_CFA_val_expression {
					k = RuleValExpression
				}
				rule = Rule{Kind: k, Expr: e}
				set = true
			case DW_CFA_remember_state:
				if len(m.stack) >= MaxStateDepth {
					return false, perr(ErrStateStack)
				}
				m.stack = append(m.stack, m.row)
			case DW_CFA_restore_state:
				if len(m.stack) == 0 {
					return false, perr(ErrStateStack)
				}
				// The location is not part of the state; the CFA rule
				// is (as in libgcc, GDB and readelf).
				loc := m.row.Loc
				m.row = m.stack[len(m.stack)-1]
				m.row.Loc = loc
				m.stack = m.stack[:len(m.stack)-1]
			case DW_CFA_def_cfa:
				r := c.ULEB()
				off := c.ULEB()
				m.row.CFA = CFARule{Kind: CFARegOffset, Reg: r, Offset: int64(off)}
			case DW_CFA_def_cfa_sf:
				r := c.ULEB()
				off := c.SLEB()
				m.row.CFA = CFARule{Kind: CFARegOffset, Reg: r, Offset: off * cie.DataAlign}
			case DW_CFA_def_cfa_register:
				// Only meaningful after a register+offset rule; like
				// libgcc we keep the offset and switch to that form.
				m.row.CFA.Reg = c.ULEB()
				m.row.CFA.Kind = CFARegOffset
				m.row.CFA.Expr = nil
			case DW_CFA_def_cfa_offset:
				m.row.CFA.Offset = int64(c.ULEB())
				m.row.CFA.Kind = CFARegOffset
				m.row.CFA.Expr = nil
			case DW_CFA_def_cfa_offset_sf:
				m.row.CFA.Offset = c.SLEB() * cie.DataAlign
				m.row.CFA.Kind = CFARegOffset
				m.row.CFA.Expr = nil
			case DW_CFA_def_cfa_expression:
				n := c.ULEB()
				e := c.Bytes(n)
				// Register and offset stay for a later
				// DW_CFA_def_cfa_register or _offset, as in libgcc and GDB.
				m.row.CFA.Kind, m.row.CFA.Expr = CFAExpr, e
			case DW_CFA_GNU_args_size:
				m.row.ArgsSize = c.ULEB()
			default:
				return false, perr(ErrOpcode)
			}
		}
		if c.Err != nil {
			return false, perr(c.Err)
		}
		if set {
			if reg >= NumRegs {
				m.row.Untracked++
				continue
			}
			m.row.Regs[reg] = rule
		}
	}
	return false, nil
}

// restored is the rule DW_CFA_restore gives reg: the one the CIE's initial
// instructions left, whatever its kind. Inside the CIE there is no initial
// row yet: the register becomes unspecified.
func (m *machine) restored(reg uint64, isCIE bool) Rule {
	if isCIE || reg >= NumRegs {
		return Rule{}
	}
	return m.initial.Regs[reg]
}

func newMachine(f *FDE) (*machine, error) {
	m := &machine{cie: f.CIE, fde: f, loc: f.Begin}
	m.row.Loc = f.Begin
	if _, err := m.run(f.CIE.Instructions, f.CIE.instrAddr, true, nil); err != nil {
		return nil, err
	}
	// The CIE may advance the location (unusual); the FDE starts at its
	// own initial location regardless.
	m.loc = f.Begin
	m.row.Loc = f.Begin
	m.initial = m.row
	return m, nil
}

// RowAt returns the row of f's table that applies at pc, which must lie in
// [f.Begin, f.End).
func (f *FDE) RowAt(pc uint64) (*Row, error) {
	if !f.Covers(pc) {
		return nil, ErrNoFDE
	}
	m, err := newMachine(f)
	if err != nil {
		return nil, err
	}
	var out *Row
	stopped, err := m.run(f.Instructions, f.instrAddr, false, func(row *Row, next uint64) bool {
		if pc < next {
			r := *row
			r.End = next
			out = &r
			return true
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	if !stopped {
		r := m.row
		r.Loc = m.loc
		r.End = f.End
		out = &r
	}
	if out.End > f.End || out.End < out.Loc {
		out.End = f.End
	}
	return out, nil
}

// EachRow calls fn with every row of f's table that has a non-empty
// range, in order, until fn returns false. The row is reused between
// calls: copy it to keep it. Rows that start at or after f.End are not
// reported.
func (f *FDE) EachRow(fn func(row *Row) bool) error {
	m, err := newMachine(f)
	if err != nil {
		return err
	}
	stopped, err := m.run(f.Instructions, f.instrAddr, false, func(row *Row, next uint64) bool {
		if next > row.Loc && row.Loc < f.End {
			end := row.End
			row.End = min(next, f.End)
			stop := !fn(row)
			row.End = end
			return stop
		}
		return false
	})
	if err != nil || stopped {
		return err
	}
	if m.loc < f.End {
		m.row.Loc = m.loc
		m.row.End = f.End
		fn(&m.row)
	}
	return nil
}

// Rows returns every row of f's table with a non-empty range, in order.
func (f *FDE) Rows() ([]Row, error) {
	var rows []Row
	err := f.EachRow(func(r *Row) bool {
		rows = append(rows, *r)
		return true
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// InitialRow returns the row the CIE's initial instructions define.
func (f *FDE) InitialRow() (*Row, error) {
	m, err := newMachine(f)
	if err != nil {
		return nil, err
	}
	r := m.initial
	r.End = f.End
	return &r, nil
}
