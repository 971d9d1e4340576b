package rsp

// The session remembers the code breakpoints (Z0, Z1) its client
// inserted, for two jobs the target cannot do alone:
//
//   - range stepping (vCont;r) done by the server's loop of single steps
//     must stop on an inserted breakpoint inside the range, as gdbserver
//     does (GDB's `next` over a line with a breakpoint in its middle);
//   - target-side conditions (Z0,addr,kind;Xlen,bytecode...): a hit whose
//     conditions are all false is not reported, the target goes on.
//
// The table is a slice searched linearly (clients insert a few dozen
// breakpoints) and reused across stops: GDB removes every breakpoint
// after each stop and inserts them again before each resume, so the
// steady state reuses both the entries and their condition buffers.

// maxBreakpoints bounds the table; beyond it Z answers an error rather
// than growing without limit.
const maxBreakpoints = 4096

// maxConditions bounds the conditions of one breakpoint, maxConditionLen
// the bytes of one.
const (
	maxConditions   = 16
	maxConditionLen = 4096
)

type breakpoint struct {
	addr uint64
	kind BreakKind // BreakSoftware or BreakHardware
	size int       // the Z packet's kind field, for removing it again
	used bool
	// code holds the conditions' bytecodes back to back; ends[i] is where
	// condition i ends. No condition: always report.
	code []byte
	ends []int
}

type breakTable struct {
	bps []breakpoint
	n   int // live entries (bps[i].used)
}

func (t *breakTable) find(kind BreakKind, addr uint64) *breakpoint {
	if t.n == 0 {
		return nil
	}
	for i := range t.bps {
		b := &t.bps[i]
		if b.used && b.addr == addr && b.kind == kind {
			return b
		}
	}
	return nil
}

// at returns the breakpoint at addr, software first.
func (t *breakTable) at(addr uint64) *breakpoint {
	if b := t.find(BreakSoftware, addr); b != nil {
		return b
	}
	return t.find(BreakHardware, addr)
}

// insert records a breakpoint (again: an insert of one already there
// replaces its conditions) and returns it with its conditions cleared,
// or nil when the table is full.
func (t *breakTable) insert(kind BreakKind, addr uint64, size int) *breakpoint {
	b := t.find(kind, addr)
	if b == nil {
		for i := range t.bps {
			if !t.bps[i].used {
				b = &t.bps[i]
				break
			}
		}
		if b == nil {
			if len(t.bps) >= maxBreakpoints {
				return nil
			}
			t.bps = append(t.bps, breakpoint{})
			b = &t.bps[len(t.bps)-1]
		}
		b.used, b.kind, b.addr = true, kind, addr
		t.n++
	}
	b.size = size
	b.code, b.ends = b.code[:0], b.ends[:0]
	return b
}

func (t *breakTable) remove(kind BreakKind, addr uint64) {
	if b := t.find(kind, addr); b != nil {
		b.used = false
		t.n--
	}
}

func (t *breakTable) clear() {
	for i := range t.bps {
		t.bps[i].used = false
	}
	t.n = 0
}

// stopKind is the stop a breakpoint makes.
func (b *breakpoint) stopKind() StopKind {
	if b.kind == BreakHardware {
		return StopHWBreak
	}
	return StopSWBreak
}

// conditional reports whether the breakpoint has conditions.
func (b *breakpoint) conditional() bool { return len(b.ends) > 0 }

// conditionTrue evaluates b's conditions at a hit by thread tid: true
// when any is true, or when one fails to evaluate (the debugger then sees
// the stop and can tell), as gdbserver does.
func (s *session) conditionTrue(b *breakpoint, tid int) bool {
	s.axTID = tid
	start := 0
	for _, end := range b.ends {
		v, err := s.ax.eval(b.code[start:end], s)
		if err != nil {
			if s.srv.logPackets {
				s.log.Debug("breakpoint condition failed; reporting the hit", "addr", b.addr, "err", err)
			}
			return true
		}
		if v != 0 {
			return true
		}
		start = end
	}
	return false
}

// axReg implements axEnv: a register of the stopped thread, up to 64
// bits, by description number.
func (s *session) axReg(regnum int) (uint64, error) {
	if regnum < 0 || regnum >= len(s.desc.Registers) {
		return 0, errAxBadOperand
	}
	r := &s.desc.Registers[regnum]
	size := r.Size()
	if size > 8 {
		return 0, errAxBadOperand
	}
	buf := s.axBuf[:size]
	if err := s.t.ReadRegister(s.axTID, regnum, buf); err != nil {
		return 0, err
	}
	var v uint64
	for i := size - 1; i >= 0; i-- {
		v = v<<8 | uint64(buf[i])
	}
	return v, nil
}

// axMem implements axEnv: all of p, or an error.
func (s *session) axMem(addr uint64, p []byte) error {
	n, err := s.t.ReadMemory(addr, p)
	if n == len(p) {
		return nil
	}
	if err == nil {
		err = errNoMemory
	}
	return err
}
