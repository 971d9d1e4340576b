package rsp

import "fmt"

// maxRangeSteps bounds the server's range-stepping loop (vCont;r) for
// targets that are not RangeSteppers.
const maxRangeSteps = 1 << 22

// parseSignal reads the two hex digits of C/S or a vCont action.
func parseSignal(p []byte) (int, []byte, bool) {
	if len(p) < 2 {
		return 0, p, false
	}
	v, ok := unhex8(p[0], p[1])
	return int(v), p[2:], ok
}

// oneThread reports whether the target has exactly one thread; then
// every resume collapses to a single AllThreads action.
func (s *session) oneThread() bool {
	return s.f.threads == nil || len(s.threadList()) <= 1
}

// plainResume handles c, C, s and S: an optional signal, an optional
// address (resume there).
func (s *session) plainResume(args []byte, step, withSignal bool) error {
	sig := 0
	if withSignal {
		var ok bool
		sig, args, ok = parseSignal(args)
		if !ok {
			return errSyntax
		}
		if len(args) > 0 {
			if args[0] != ';' {
				return errSyntax
			}
			args = args[1:]
		}
	}
	if len(args) > 0 {
		addr, ok := parseHexFull(args)
		if !ok {
			return errSyntax
		}
		tid := s.resolve(s.cThread)
		r := &s.desc.Registers[s.desc.PC]
		var b [8]byte
		for i := range b {
			b[i] = byte(addr >> (8 * i))
		}
		if err := s.t.WriteRegister(tid, s.desc.PC, b[:r.Size()]); err != nil {
			return targetErr(err, eFAULT)
		}
	}
	s.actions = s.actions[:0]
	if step && !s.oneThread() && s.cThread > 0 {
		// Step the Hc thread; the others keep still (no AllThreads
		// action).
		s.actions = append(s.actions, ResumeAction{Thread: s.cThread, Step: true, Signal: sig})
	} else {
		s.actions = append(s.actions, ResumeAction{Thread: AllThreads, Step: step, Signal: sig})
	}
	return s.resume()
}

func (s *session) handlec(args []byte) error { return s.plainResume(args, false, false) }
func (s *session) handleC(args []byte) error { return s.plainResume(args, false, true) }
func (s *session) handles(args []byte) error { return s.plainResume(args, true, false) }
func (s *session) handleS(args []byte) error { return s.plainResume(args, true, true) }

func (s *session) handlevContQuery(args []byte) error {
	return s.reply("vCont;c;C;s;S;r")
}

// handlevCont parses ";action[:tid]..." into ResumeActions. A thread not
// named by any action follows the action without a thread id; on a
// single-threaded target everything collapses into one AllThreads action.
func (s *session) handlevCont(args []byte) error {
	s.actions = s.actions[:0]
	for n := 0; len(args) > 0; n++ {
		if args[0] != ';' || n >= cap(s.actions) {
			return errSyntax
		}
		args = args[1:]
		var act []byte
		act, args = args, nil
		if i := indexByte(act, ';'); i >= 0 {
			act, args = act[:i], act[i:]
		}
		var a ResumeAction
		a.Thread = AllThreads
		if i := indexByte(act, ':'); i >= 0 {
			tid, ok := parseThreadID(act[i+1:])
			if !ok {
				return errSyntax
			}
			if tid > 0 {
				a.Thread = tid
			}
			act = act[:i]
		}
		if len(act) == 0 {
			return errSyntax
		}
		var ok bool
		switch act[0] {
		case 'c':
			ok = len(act) == 1
		case 's':
			a.Step, ok = true, len(act) == 1
		case 'C', 'S':
			a.Step = act[0] == 'S'
			var rest []byte
			a.Signal, rest, ok = parseSignal(act[1:])
			ok = ok && len(rest) == 0
		case 'r':
			a.Step = true
			var rest []byte
			a.RangeStart, a.RangeEnd, rest, _ = addrLen(act[1:])
			ok = len(rest) == 0 && a.RangeStart < a.RangeEnd
		case 't':
			// Stop a thread (non-stop mode); nothing to do in all-stop.
			continue
		default:
			return errUnsupported
		}
		if !ok {
			return errSyntax
		}
		// The first action naming a thread wins (vCont semantics).
		dup := false
		for _, b := range s.actions {
			if b.Thread == a.Thread {
				dup = true
			}
		}
		if !dup {
			s.actions = append(s.actions, a)
		}
	}
	if len(s.actions) == 0 {
		return errSyntax
	}
	if s.oneThread() {
		// One thread: the action for it (named or default) is the only
		// one that matters.
		a := s.actions[0]
		for _, b := range s.actions {
			if b.Thread == AllThreads {
				continue
			}
			a = b
			break
		}
		a.Thread = AllThreads
		s.actions = append(s.actions[:0], a)
	}
	// With several threads and no default action, only the named threads
	// move: the actions then hold no AllThreads entry.
	return s.resume()
}

func indexByte(p []byte, b byte) int {
	for i, c := range p {
		if c == b {
			return i
		}
	}
	return -1
}

// resume starts the target on a goroutine of its own; the session keeps
// reading the connection for 0x03. The stop reply is sent from that
// goroutine when the target stops.
func (s *session) resume() error {
	actions := s.actions
	return s.startRun(func() (Stop, error) { return s.runConditions(actions) })
}

// handleb handles bs (reverse-stepi) and bc (reverse-continue), which
// run like a resume: interruptible, the stop reply sent when done.
func (s *session) handleb(args []byte) error {
	switch string(args) {
	case "s":
		tid := s.resolve(s.cThread)
		return s.startRun(func() (Stop, error) { return s.f.reverse.ReverseStep(tid) })
	case "c":
		return s.startRun(s.reverseConditions)
	}
	return errUnsupported
}

// reverseConditions reverse-continues past the breakpoint hits whose
// condition is false, as runConditions does forwards. Every call goes
// back to an earlier hit or to the history's start, so the loop ends.
func (s *session) reverseConditions() (Stop, error) {
	for {
		stop, err := s.f.reverse.ReverseContinue()
		if err != nil || stop.ReplayLog != "" {
			return stop, err
		}
		if _, skip := s.falseHit(stop); !skip {
			return stop, nil
		}
		if s.interrupted.Load() {
			return Stop{Kind: StopSignal, Signal: SIGINT, Thread: stop.Thread}, nil
		}
	}
}

// condHit is a breakpoint hit: the breakpoint, the thread and its pc.
type condHit struct {
	b   *breakpoint
	tid int
	pc  uint64
}

// falseHit reports whether stop is a hit of a conditional breakpoint
// whose conditions are all false (counted), which the client must not
// see.
func (s *session) falseHit(stop Stop) (condHit, bool) {
	if (stop.Kind != StopSWBreak && stop.Kind != StopHWBreak) || s.bps.n == 0 {
		return condHit{}, false
	}
	tid := s.resolve(stop.Thread)
	pc, err := s.readPC(tid)
	if err != nil {
		return condHit{}, false
	}
	kind := BreakSoftware
	if stop.Kind == StopHWBreak {
		kind = BreakHardware
	}
	b := s.bps.find(kind, pc)
	if b == nil || !b.conditional() || s.conditionTrue(b, tid) {
		return condHit{}, false
	}
	s.srv.condFalse.Add(1)
	return condHit{b, tid, pc}, true
}

// startRun runs the target (run) on a goroutine of its own; the session
// keeps reading the connection for 0x03.
func (s *session) startRun(run func() (Stop, error)) error {
	s.interrupted.Store(false)
	s.state.Store(int32(stateRunning))
	s.console.flushPending()
	done := make(chan struct{})
	s.resumeDone = done
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("target panicked while running; ending the session", "panic", r)
				s.inResume.Store(false)
				s.state.Store(int32(stateStopped))
				s.conn.Close()
			}
		}()
		s.inResume.Store(true)
		stop, err := s.runTarget(run)
		s.inResume.Store(false)
		s.state.Store(int32(stateStopped))
		if err != nil {
			s.log.Warn("resume failed", "err", err)
			if !s.finish(targetErr(err, ePERM)) {
				s.conn.Close()
			}
			return
		}
		if err := s.sendStop(stop); err != nil {
			s.conn.Close()
		}
	}()
	return nil
}

// runTarget resumes the target, doing range steps itself when the
// target cannot.
func (s *session) runTarget(run func() (Stop, error)) (Stop, error) {
	if s.held != nil {
		st := *s.held
		s.held = nil
		return st, nil
	}
	stop, err := run()
	if err != nil || !stop.Library || s.lldb || stop.Kind == StopExited || stop.Kind == StopTerminated {
		return stop, err
	}
	// GDB takes any stop reply with library: for a shared-library event
	// only: it refetches the library list and resumes, so a breakpoint
	// (or fault, or finished step) reported with it is lost. Report the
	// library change alone first and hold the real stop for the resume
	// GDB sends right after.
	held := stop
	held.Library = false
	s.held = &held
	return Stop{Kind: StopSignal, Signal: SIGTRAP, Thread: stop.Thread, Library: true}, nil
}

// runConditions resumes until a stop the client must see: a hit of a
// breakpoint whose conditions are all false is not one, and the target
// goes on with the same actions (gdbserver does the same; GDB, told
// ConditionalBreakpoints+, does not evaluate them again).
func (s *session) runConditions(actions []ResumeAction) (Stop, error) {
	library := false
	for {
		stop, err := s.runTarget1(actions)
		if err != nil {
			return stop, err
		}
		stop.Library = stop.Library || library
		hit, skip := s.falseHit(stop)
		if !skip {
			return stop, nil
		}
		b, tid, pc := hit.b, hit.tid, hit.pc
		if s.interrupted.Load() {
			return Stop{Kind: StopSignal, Signal: SIGINT, Thread: stop.Thread, Library: stop.Library}, nil
		}
		rng := rangeAction(actions)
		if rng != nil && (pc < rng.RangeStart || pc >= rng.RangeEnd) {
			// A range step that left its range on a breakpoint whose
			// condition is false: the step is over.
			stop.Kind = StopSignal
			return stop, nil
		}
		// Step off the breakpoint the way GDB does (remove, step,
		// insert): a target may hit a breakpoint again at once when
		// resumed on it (QEMU does).
		off, err := s.stepOff(b, tid)
		if err != nil {
			return off, err
		}
		if off.Kind != StopSignal || off.Signal != SIGTRAP {
			off.Library = off.Library || stop.Library
			return off, nil
		}
		if rng != nil {
			if pc, err := s.readPC(tid); err == nil && (pc < rng.RangeStart || pc >= rng.RangeEnd) {
				off.Library = off.Library || stop.Library
				return off, nil
			}
		}
		library = stop.Library
	}
}

// stepOff single-steps thread tid off breakpoint b (removed for the
// step, inserted again after it).
func (s *session) stepOff(b *breakpoint, tid int) (Stop, error) {
	if err := s.f.bp.RemoveBreakpoint(b.kind, b.addr, b.size); err != nil {
		return Stop{}, fmt.Errorf("step off breakpoint %#x: %w", b.addr, err)
	}
	s.stepAct[0] = ResumeAction{Thread: tid, Step: true}
	if s.oneThread() {
		s.stepAct[0].Thread = AllThreads
	}
	stop, err := s.t.Resume(s.stepAct[:])
	if ierr := s.f.bp.InsertBreakpoint(b.kind, b.addr, b.size); err == nil && ierr != nil {
		err = fmt.Errorf("step off breakpoint %#x: %w", b.addr, ierr)
	}
	return stop, err
}

// rangeAction is the range-step action of actions, or nil.
func rangeAction(actions []ResumeAction) *ResumeAction {
	for i := range actions {
		if actions[i].RangeStart < actions[i].RangeEnd {
			return &actions[i]
		}
	}
	return nil
}

// readPC reads thread tid's program counter.
func (s *session) readPC(tid int) (uint64, error) {
	r := &s.desc.Registers[s.desc.PC]
	buf := s.axBuf[:r.Size()]
	if err := s.t.ReadRegister(tid, s.desc.PC, buf); err != nil {
		return 0, err
	}
	var pc uint64
	for j := len(buf) - 1; j >= 0; j-- {
		pc = pc<<8 | uint64(buf[j])
	}
	return pc, nil
}

func (s *session) runTarget1(actions []ResumeAction) (Stop, error) {
	var rng *ResumeAction
	for i := range actions {
		if actions[i].RangeStart < actions[i].RangeEnd {
			rng = &actions[i]
			break
		}
	}
	if rng == nil {
		return s.t.Resume(actions)
	}
	tid := rng.Thread
	if tid == AllThreads {
		tid = s.resolve(s.cThread)
	}
	if s.f.rangeStep != nil {
		return s.f.rangeStep.RangeStep(tid, rng.RangeStart, rng.RangeEnd)
	}
	s.stepAct[0] = ResumeAction{Thread: rng.Thread, Step: true}
	pcReg := &s.desc.Registers[s.desc.PC]
	var pcBuf [8]byte
	for i := 0; i < maxRangeSteps; i++ {
		stop, err := s.t.Resume(s.stepAct[:])
		if err != nil || stop.Kind != StopSignal || stop.Signal != SIGTRAP {
			return stop, err
		}
		if s.interrupted.Load() {
			stop.Signal = SIGINT
			return stop, nil
		}
		if err := s.t.ReadRegister(tid, s.desc.PC, pcBuf[:pcReg.Size()]); err != nil {
			return stop, fmt.Errorf("range step: read pc: %w", err)
		}
		var pc uint64
		for j := pcReg.Size() - 1; j >= 0; j-- {
			pc = pc<<8 | uint64(pcBuf[j])
		}
		if b := s.bps.at(pc); b != nil {
			// The step ended on an inserted breakpoint (not yet run):
			// that is a hit, inside the range or not.
			stop.Kind = b.stopKind()
			return stop, nil
		}
		if pc < rng.RangeStart || pc >= rng.RangeEnd {
			return stop, nil
		}
	}
	return s.t.LastStop(), nil
}

// sendStop sends the stop reply for st.
//
//	T05thread:1;10:<rip>;07:<rsp>;06:<rbp>;swbreak:;library:;
//	W00 (exited with code 0)   X09 (ended by signal 9)
func (s *session) sendStop(st Stop) error {
	if st.Description != "" && !s.lldb && st.Kind <= StopAWatch {
		// GDB has no stop-reply field for text: print it.
		msg := st.Description
		if msg[len(msg)-1] != '\n' {
			msg += "\n"
		}
		if err := s.sendO([]byte(msg)); err != nil {
			return err
		}
	}
	switch st.Kind {
	case StopExited, StopTerminated:
		s.start()
		if st.Kind == StopExited {
			s.c.putByte('W')
			s.c.putHex8(byte(st.ExitCode))
		} else {
			s.c.putByte('X')
			s.c.putHex8(byte(st.Signal))
		}
		if s.multiprocess {
			s.c.putString(";process:")
			s.c.putUint(uint64(s.pid))
		}
		return s.end()
	}
	tid := s.resolve(st.Thread)
	sig := st.Signal
	if sig <= 0 || sig > 0xff {
		sig = SIGTRAP
	}
	// Read the expedited registers before taking the writer, unless
	// they would cost the target a round trip of its own.
	var exp [3]int
	n := 0
	lazy := s.f.regHolder != nil && !s.f.regHolder.HasRegisters(tid)
	for _, rn := range [3]int{s.desc.PC, s.desc.SP, s.desc.FP} {
		if rn < 0 || lazy {
			continue
		}
		r := &s.desc.Registers[rn]
		if s.t.ReadRegister(tid, rn, s.regs[r.Offset:r.Offset+r.Size()]) == nil {
			exp[n] = rn
			n++
		}
	}
	var th []ThreadInfo
	if s.listThreads {
		th = s.threadList()
	}
	s.start()
	s.c.putByte('T')
	s.c.putHex8(byte(sig))
	s.c.putString("thread:")
	s.putThreadID(tid)
	s.c.putByte(';')
	for _, rn := range exp[:n] {
		r := &s.desc.Registers[rn]
		s.c.putUint(uint64(rn))
		s.c.putByte(':')
		s.c.putHex(s.regs[r.Offset : r.Offset+r.Size()])
		s.c.putByte(';')
	}
	switch st.Kind {
	case StopSWBreak:
		if s.swbreak {
			s.c.putString("swbreak:;")
		}
	case StopHWBreak:
		if s.hwbreak {
			s.c.putString("hwbreak:;")
		}
	case StopWatch:
		s.c.putString("watch:")
		s.c.putUint(st.Addr)
		s.c.putByte(';')
	case StopRWatch:
		s.c.putString("rwatch:")
		s.c.putUint(st.Addr)
		s.c.putByte(';')
	case StopAWatch:
		s.c.putString("awatch:")
		s.c.putUint(st.Addr)
		s.c.putByte(';')
	case StopSyscallEntry:
		s.c.putString("syscall_entry:")
		s.c.putUint(uint64(st.Syscall))
		s.c.putByte(';')
	case StopSyscallReturn:
		s.c.putString("syscall_return:")
		s.c.putUint(uint64(st.Syscall))
		s.c.putByte(';')
	}
	if st.Library {
		s.c.putString("library:;")
	}
	if st.ReplayLog != "" {
		s.c.putString("replaylog:")
		s.c.putString(st.ReplayLog)
		s.c.putByte(';')
	}
	if s.lldb {
		if len(th) > 0 {
			s.c.putString("threads:")
			for i, t := range th {
				if i > 0 {
					s.c.putByte(',')
				}
				s.c.putUint(uint64(t.ID))
				if s.c.payloadLen() > s.c.maxSize/2 {
					break
				}
			}
			s.c.putByte(';')
		}
		switch st.Kind {
		case StopSWBreak, StopHWBreak:
			s.c.putString("reason:breakpoint;")
		}
		if st.Description != "" {
			s.c.putString("description:")
			s.c.putHexString(st.Description)
			s.c.putByte(';')
		}
	}
	return s.end()
}
