package qemu

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"

	"github.com/rspstub/rspstub/rsp"
	"golang.org/x/arch/x86/x86asm"
)

// maxSoftSteps bounds one run that emulates watchpoints or a range by
// single-stepping. A run that reaches it stops with SIGTRAP and says so.
const maxSoftSteps = 1 << 24

// maxSoftWatchSize bounds an emulated watchpoint (it is compared after
// every instruction).
const maxSoftWatchSize = 4096

// ---- breakpoints

// SupportsBreakpoint implements rsp.Breakpointer: every kind. QEMU holds
// Z0/Z1 (both are TCG breakpoints, no guest memory is patched) and, in
// system mode, Z2-Z4; qemu-user has no watchpoints, so they are emulated
// by single-stepping.
func (t *Target) SupportsBreakpoint(kind rsp.BreakKind) bool { return kind <= rsp.WatchAccess }

// insertBreakpoint implements rsp.Breakpointer.
func (t *Target) insertBreakpoint(kind rsp.BreakKind, addr uint64, size int) error {
	if t.gone.Load() {
		return ErrGone
	}
	isWatch := kind >= rsp.WatchWrite
	if t.bps[bpKey{kind, addr, size}] > 0 {
		// Already in QEMU. A debugger inserts a breakpoint again without
		// removing it (GDB re-sets its breakpoints after a library event)
		// and removes it once: QEMU would keep a second copy, hit forever.
		return nil
	}
	if !isWatch || !t.noWatch {
		err := t.c.SetBreakpoint(kind, addr, size)
		if err == nil {
			t.bps[bpKey{kind, addr, size}]++
			return nil
		}
		if !isWatch || !errors.Is(err, rsp.ErrUnsupported) {
			return t.check(fmt.Errorf("qemu: insert Z%d at %#x: %w", kind, addr, err))
		}
		t.noWatch = true
		t.log.Debug("QEMU has no watchpoints; emulating them by single-stepping")
	}
	if size <= 0 || size > maxSoftWatchSize {
		return fmt.Errorf("qemu: emulated watchpoints cover 1..%d bytes, not %d", maxSoftWatchSize, size)
	}
	w := softWatch{kind: kind, addr: addr, size: size}
	w.refresh(t)
	t.soft = append(t.soft, w)
	return nil
}

// removeBreakpoint implements rsp.Breakpointer.
func (t *Target) removeBreakpoint(kind rsp.BreakKind, addr uint64, size int) error {
	if t.gone.Load() {
		return ErrGone
	}
	for i, w := range t.soft {
		if w.kind == kind && w.addr == addr && w.size == size {
			t.soft = append(t.soft[:i], t.soft[i+1:]...)
			return nil
		}
	}
	k := bpKey{kind, addr, size}
	if err := t.c.RemoveBreakpoint(kind, addr, size); err != nil {
		return t.check(fmt.Errorf("qemu: remove Z%d at %#x: %w", kind, addr, err))
	}
	if t.bps[k] > 1 {
		t.bps[k]--
	} else {
		delete(t.bps, k)
	}
	return nil
}

// breakAt reports the kind of our breakpoint at pc, if any.
func (t *Target) breakAt(pc uint64) (rsp.StopKind, bool) {
	hw := false
	for k := range t.bps {
		if k.addr != pc {
			continue
		}
		switch k.kind {
		case rsp.BreakSoftware:
			return rsp.StopSWBreak, true
		case rsp.BreakHardware:
			hw = true
		}
	}
	if hw {
		return rsp.StopHWBreak, true
	}
	return 0, false
}

// softWatch is a watchpoint emulated by stepping: a write is seen as a
// change of the watched bytes (as GDB's own software watchpoints do); a
// read as an explicit memory operand of the instruction just run that
// overlaps the range.
type softWatch struct {
	kind rsp.BreakKind
	addr uint64
	size int
	old  []byte
	ok   bool // old holds the bytes (the range was readable)
}

func (w *softWatch) refresh(t *Target) {
	if cap(w.old) < w.size {
		w.old = make([]byte, w.size)
	}
	w.old = w.old[:w.size]
	n, _ := t.c.ReadMemory(w.addr, w.old)
	w.ok = n == w.size
}

// changed reports whether the watched bytes differ from the copy, and
// takes the new value.
func (w *softWatch) changed(t *Target, scratch []byte) (bool, error) {
	cur := scratch[:w.size]
	n, err := t.c.ReadMemory(w.addr, cur)
	if err != nil && n == 0 {
		if isConnErr(err) {
			return false, t.check(err)
		}
	}
	ok := n == w.size
	diff := ok != w.ok || (ok && !bytes.Equal(cur, w.old))
	copy(w.old, cur)
	w.ok = ok
	return diff, nil
}

// ---- running

// Interrupt implements rsp.Target: 0x03 to qemu-system while it runs.
// qemu-user does not read its gdbstub socket while the guest runs, so
// there the QEMU process gets a SIGINT, which it reports as the guest's
// SIGINT stop (and the debugger's next resume discards).
func (t *Target) Interrupt() {
	t.interrupted.Store(true)
	if !t.running.Load() || t.gone.Load() {
		return
	}
	if t.mode == ModeUser {
		if t.pid > 0 && !t.signalled.Swap(true) {
			if err := syscall.Kill(t.pid, syscall.SIGINT); err != nil {
				t.log.Debug("interrupt qemu-user", "pid", t.pid, "err", err)
			}
		}
		return
	}
	// A write to a stub that reads nothing must not block the caller.
	go func() {
		if err := t.c.Interrupt(); err != nil {
			t.log.Debug("interrupt QEMU", "err", err)
		}
	}()
}

// resume implements rsp.Target.
func (t *Target) resume(actions []rsp.ResumeAction) (rsp.Stop, error) {
	if t.gone.Load() {
		return t.last, nil
	}
	defer t.interrupted.Store(false)
	step := true
	for _, a := range actions {
		step = step && a.Step
	}
	if len(t.soft) > 0 {
		// Emulated watchpoints: run as a loop of steps.
		stepping := make([]rsp.ResumeAction, len(actions))
		for i, a := range actions {
			a.Step = true
			stepping[i] = a
		}
		return t.stepLoop(stepping, step, func(uint64) bool { return false })
	}
	if t.sc.on {
		return t.catchResume(actions)
	}
	if t.sc.pending || len(t.sc.sites) > 0 {
		t.endCatch()
	}
	st, err := t.resumeOnce(actions)
	if err != nil || st.Kind != rsp.StopSignal || st.Signal != rsp.SIGTRAP || step {
		return st, err
	}
	// QEMU reports every stop as a plain SIGTRAP: ours at one of our
	// breakpoints is a breakpoint hit.
	if pc, err := t.reg64(st.Thread, t.desc.PC); err == nil {
		if k, ok := t.breakAt(pc); ok {
			st.Kind = k
		}
	}
	t.last = st
	return st, nil
}

// resumeOnce sends one resume to QEMU and waits for its stop.
func (t *Target) resumeOnce(actions []rsp.ResumeAction) (rsp.Stop, error) {
	t.running.Store(true)
	t.signalled.Store(false)
	if t.interrupted.Load() {
		// Interrupted before the resume was even sent.
		t.running.Store(false)
		st := t.last
		st.Kind, st.Signal, st.Addr = rsp.StopSignal, rsp.SIGINT, 0
		t.last = st
		return st, nil
	}
	t.aheadPC, t.aheadTID = t.cachedPC()
	if !stepsThread(actions, t.aheadTID) {
		t.aheadTID = 0 // only a step stays near its code (prefetch.go)
	}
	t.invalidate()
	t.gen++ // the modules may change while the guest runs
	t.hg = 0
	st, err := t.c.Resume(actions)
	t.running.Store(false)
	t.gsel = 0
	if err != nil {
		if e := t.check(err); t.gone.Load() {
			t.log.Debug("QEMU went away while running", "err", e)
			return t.last, nil
		}
		return rsp.Stop{}, fmt.Errorf("qemu: resume: %w", err)
	}
	if st.Thread <= 0 {
		st.Thread = t.last.Thread
	}
	switch st.Kind {
	case rsp.StopExited, rsp.StopTerminated:
		t.last = st
		t.gone.Store(true) // QEMU closes the connection after W/X
		return st, nil
	}
	// vCPUs never come or go; a program's threads do.
	if t.mode == ModeUser || len(t.threads) == 0 {
		if err := t.refreshThreads(); err != nil {
			return rsp.Stop{}, err
		}
	}
	if st.Thread <= 0 && len(t.threads) > 0 {
		st.Thread = t.threads[0]
	}
	if t.mode == ModeSystem {
		t.gsel = st.Thread // QEMU selects the vCPU that stopped
	}
	t.last = st
	return st, nil
}

// stepsThread reports whether actions single-step thread tid (named,
// or through the AllThreads action when it is not named).
func stepsThread(actions []rsp.ResumeAction, tid int) bool {
	if tid <= 0 {
		return false
	}
	all := false
	for _, a := range actions {
		switch a.Thread {
		case tid:
			return a.Step
		case rsp.AllThreads:
			all = a.Step
		}
	}
	return all
}

// rangeStep implements rsp.RangeStepper with local steps: QEMU has no
// vCont;r. It stops early at one of our breakpoints.
func (t *Target) rangeStep(tid int, start, end uint64) (rsp.Stop, error) {
	if t.gone.Load() {
		return t.last, nil
	}
	defer t.interrupted.Store(false)
	a := []rsp.ResumeAction{{Thread: tid, Step: true}}
	if len(t.threads) <= 1 || tid <= 0 {
		a[0].Thread = rsp.AllThreads
	}
	return t.stepLoop(a, false, func(pc uint64) bool { return pc < start || pc >= end })
}

// stepLoop steps until done(pc) holds, a breakpoint or an emulated
// watchpoint is hit, the guest stops for another reason, or the
// debugger interrupts. With once it makes one step (a debugger's step
// while watchpoints are emulated).
func (t *Target) stepLoop(actions []rsp.ResumeAction, once bool, done func(pc uint64) bool) (rsp.Stop, error) {
	for i := 0; i < maxSoftSteps; i++ {
		var access []memRange
		if t.needDecode() {
			access = t.accesses(actions)
		}
		st, err := t.resumeOnce(actions)
		if err != nil || st.Kind != rsp.StopSignal || st.Signal != rsp.SIGTRAP {
			return st, err
		}
		if t.interrupted.Load() {
			st.Signal = rsp.SIGINT
			t.last = st
			return st, nil
		}
		if len(t.soft) > 0 {
			w, err := t.checkSoft(st, access)
			if err != nil || w.Kind != rsp.StopSignal || once {
				return w, err
			}
		}
		if once {
			return st, nil
		}
		pc, err := t.reg64(st.Thread, t.desc.PC)
		if err != nil {
			return st, err
		}
		if k, ok := t.breakAt(pc); ok {
			st.Kind = k
			t.last = st
			return st, nil
		}
		if done(pc) {
			return st, nil
		}
	}
	st := t.last
	st.Description = fmt.Sprintf("rspstub: stopped after %d single steps", maxSoftSteps)
	return st, nil
}

// checkSoft turns a step's stop into a watchpoint stop when an emulated
// watchpoint fired. access lists the explicit memory operands of the
// instruction that ran.
func (t *Target) checkSoft(st rsp.Stop, access []memRange) (rsp.Stop, error) {
	var scratch [maxSoftWatchSize]byte
	for i := range t.soft {
		w := &t.soft[i]
		changed, err := w.changed(t, scratch[:])
		if err != nil {
			return st, err
		}
		read := false
		for _, a := range access {
			if a.addr < w.addr+uint64(w.size) && w.addr < a.addr+uint64(a.size) && !a.writeOnly {
				read = true
			}
		}
		hit := false
		switch w.kind {
		case rsp.WatchWrite:
			hit, st.Kind = changed, rsp.StopWatch
		case rsp.WatchRead:
			hit, st.Kind = read, rsp.StopRWatch
		case rsp.WatchAccess:
			hit, st.Kind = changed || read || overlapsAny(access, w), rsp.StopAWatch
		}
		if hit {
			st.Addr = w.addr
			t.last = st
			return st, nil
		}
		st.Kind = rsp.StopSignal
	}
	t.last = st
	return st, nil
}

func overlapsAny(access []memRange, w *softWatch) bool {
	for _, a := range access {
		if a.addr < w.addr+uint64(w.size) && w.addr < a.addr+uint64(a.size) {
			return true
		}
	}
	return false
}

// needDecode reports whether a read or access watchpoint is emulated:
// only those need the instruction's operands.
func (t *Target) needDecode() bool {
	for _, w := range t.soft {
		if w.kind != rsp.WatchWrite {
			return true
		}
	}
	return false
}

// memRange is one explicit memory operand of an instruction.
type memRange struct {
	addr      uint64
	size      int
	writeOnly bool
}

// accesses decodes the instruction the stepping thread is about to run
// and returns its explicit memory operands. Implicit accesses (push,
// pop, call, string instructions) are not listed.
func (t *Target) accesses(actions []rsp.ResumeAction) []memRange {
	tid := t.last.Thread
	for _, a := range actions {
		if a.Thread != rsp.AllThreads {
			tid = a.Thread
		}
	}
	regs := make([]byte, t.desc.Size())
	if err := t.readRegisters(tid, regs); err != nil {
		return nil
	}
	get := func(n int) uint64 {
		r := &t.desc.Registers[n]
		var v uint64
		for i := r.Size() - 1; i >= 0; i-- {
			v = v<<8 | uint64(regs[r.Offset+i])
		}
		return v
	}
	pc := get(t.desc.PC)
	var code [15]byte
	n, _ := t.c.ReadMemory(pc, code[:])
	inst, err := x86asm.Decode(code[:n], 64)
	if err != nil {
		return nil
	}
	var out []memRange
	for i, arg := range inst.Args {
		m, ok := arg.(x86asm.Mem)
		if !ok {
			continue
		}
		if inst.Op == x86asm.LEA || inst.Op == x86asm.NOP || inst.Op == x86asm.PREFETCHT0 {
			continue
		}
		addr := uint64(int64(m.Disp))
		if m.Base == x86asm.RIP {
			addr += pc + uint64(inst.Len)
		} else if m.Base != 0 {
			addr += regValue(m.Base, get)
		}
		if m.Index != 0 {
			addr += regValue(m.Index, get) * uint64(m.Scale)
		}
		switch m.Segment {
		case x86asm.FS:
			addr += get(rsp.AMD64FSBase)
		case x86asm.GS:
			addr += get(rsp.AMD64GSBase)
		}
		size := inst.MemBytes
		if size <= 0 {
			size = 1
		}
		out = append(out, memRange{addr: addr, size: size, writeOnly: i == 0 && writesOnlyDest(inst.Op)})
	}
	return out
}

// writesOnlyDest lists instructions whose first operand is written
// without being read.
func writesOnlyDest(op x86asm.Op) bool {
	switch op {
	case x86asm.MOV, x86asm.MOVD, x86asm.MOVQ, x86asm.MOVAPS, x86asm.MOVAPD, x86asm.MOVUPS, x86asm.MOVUPD,
		x86asm.MOVDQA, x86asm.MOVDQU, x86asm.MOVSS, x86asm.MOVSD_XMM, x86asm.MOVNTI, x86asm.MOVNTDQ,
		x86asm.MOVNTPS, x86asm.MOVNTPD, x86asm.MOVLPS, x86asm.MOVHPS, x86asm.MOVLPD, x86asm.MOVHPD,
		x86asm.SETA, x86asm.SETAE, x86asm.SETB, x86asm.SETBE, x86asm.SETE, x86asm.SETG, x86asm.SETGE,
		x86asm.SETL, x86asm.SETLE, x86asm.SETNE, x86asm.SETNO, x86asm.SETNP, x86asm.SETNS, x86asm.SETO,
		x86asm.SETP, x86asm.SETS, x86asm.FSTP, x86asm.FST, x86asm.FISTP, x86asm.FIST, x86asm.STMXCSR,
		x86asm.FNSTCW, x86asm.FNSTSW, x86asm.SGDT, x86asm.SIDT, x86asm.STR, x86asm.SLDT:
		return true
	}
	return false
}

// regValue is the value of an addressing register (64- or 32-bit).
func regValue(r x86asm.Reg, get func(int) uint64) uint64 {
	gprs := [16]int{rsp.AMD64RAX, rsp.AMD64RCX, rsp.AMD64RDX, rsp.AMD64RBX, rsp.AMD64RSP, rsp.AMD64RBP, rsp.AMD64RSI, rsp.AMD64RDI,
		rsp.AMD64R8, rsp.AMD64R9, rsp.AMD64R10, rsp.AMD64R11, rsp.AMD64R12, rsp.AMD64R13, rsp.AMD64R14, rsp.AMD64R15}
	switch {
	case r >= x86asm.RAX && r <= x86asm.R15:
		return get(gprs[r-x86asm.RAX])
	case r >= x86asm.EAX && r <= x86asm.R15L:
		return get(gprs[r-x86asm.EAX]) & 0xffffffff
	case r == x86asm.RIP:
		return get(rsp.AMD64RIP)
	}
	return 0
}
