package wine

import (
	"fmt"
	"sort"
	"time"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/arch"
)

// Threads are scheduled in Go, deterministically: the running thread goes
// on until it blocks (a wait that cannot be satisfied yet, a sleep, a
// yield) or has made quantumSyscalls system calls while another thread
// could run; then the next thread in creation order that can run gets the
// machine. Every switch saves and loads a whole arch.Context (GPRs, flags,
// segment bases, x87, SSE, MXCSR) in one crossing each way. When every
// thread waits, the clock jumps to the earliest timeout; when none has
// one, the process is deadlocked and the debugger is told.

type threadState int

const (
	threadReady threadState = iota
	threadRunning
	threadWaiting
	threadSuspended
	threadTerminated
)

const quantumSyscalls = 64

// Thread is one guest thread.
type Thread struct {
	p     *Process
	tid   uint32
	teb   uint64
	ctx   arch.Context // its registers while another thread runs
	state threadState

	stack      *allocation
	tebAlloc   *allocation
	stackBase  uint64
	stackLimit uint64

	suspend  int
	exitCode uint32
	wait     *waitBlock
	alerted  bool // NtAlertThreadByThreadId arrived
	name     string
	// onTimeout undoes a wait's registration (keyed events) when it
	// times out.
	onTimeout func()
}

func (t *Thread) typeName() string { return "Thread" }

// signaled: a thread object is signaled once it has ended.
func (t *Thread) signaled(*Thread) bool { return t.state == threadTerminated }
func (t *Thread) acquire(*Thread)       {}

// ThreadInfo describes a thread for a debugger.
type ThreadInfo struct {
	TID   uint32
	TEB   uint64
	Name  string
	State string
}

// Threads lists the live threads in creation order.
func (p *Process) Threads() []ThreadInfo {
	out := make([]ThreadInfo, 0, len(p.threads))
	for _, t := range p.threads {
		if t.state == threadTerminated {
			continue
		}
		st := [...]string{"ready", "running", "waiting", "suspended", "terminated"}[t.state]
		out = append(out, ThreadInfo{TID: t.tid, TEB: t.teb, Name: t.name, State: st})
	}
	return out
}

// LiveThreads is the number of threads that have not ended: with more
// than one, the integrator gives the running one time slices (Yield when
// one runs out), so a thread that spins without system calls cannot
// starve the others.
func (p *Process) LiveThreads() int {
	n := 0
	for _, t := range p.threads {
		if t.state != threadTerminated {
			n++
		}
	}
	return n
}

// CurrentThread is the id of the thread whose registers are in the
// machine.
func (p *Process) CurrentThread() uint32 {
	if p.cur == nil {
		return 0
	}
	return p.cur.tid
}

func (p *Process) thread(tid uint32) *Thread {
	for _, t := range p.threads {
		if t.tid == tid && t.state != threadTerminated {
			return t
		}
	}
	return nil
}

// ThreadContext returns the registers of a thread that is not running
// (the running one's are in the machine).
func (p *Process) ThreadContext(tid uint32) (*arch.Context, error) {
	t := p.thread(tid)
	if t == nil {
		return nil, fmt.Errorf("no thread %d", tid)
	}
	if t == p.cur {
		if err := p.m.ReadContext(&t.ctx); err != nil {
			return nil, err
		}
	}
	return &t.ctx, nil
}

// SetThreadContext replaces the registers of a thread.
func (p *Process) SetThreadContext(tid uint32, c *arch.Context) error {
	t := p.thread(tid)
	if t == nil {
		return fmt.Errorf("no thread %d", tid)
	}
	t.ctx = *c
	if t == p.cur {
		return p.m.WriteContext(c)
	}
	return nil
}

// SwitchTo makes tid the running thread (a debugger steps it). A thread
// that is waiting cannot run.
func (p *Process) SwitchTo(tid uint32) error {
	t := p.thread(tid)
	if t == nil {
		return fmt.Errorf("no thread %d", tid)
	}
	if t == p.cur {
		return nil
	}
	if t.state != threadReady {
		return fmt.Errorf("thread %d is not ready to run", tid)
	}
	return p.switchTo(t)
}

func (p *Process) switchTo(t *Thread) error {
	if old := p.cur; old != nil && old != t && old.state == threadRunning {
		if err := p.m.ReadContext(&old.ctx); err != nil {
			return &vmError{"read context", err}
		}
		old.state = threadReady
	}
	p.cur = t
	t.state = threadRunning
	p.sinceSwitch = 0
	if err := p.m.WriteContext(&t.ctx); err != nil {
		return &vmError{"write context", err}
	}
	return nil
}

// TEB is the address of a thread's environment block.
func (p *Process) TEB(tid uint32) (uint64, error) {
	t := p.thread(tid)
	if t == nil {
		return 0, fmt.Errorf("no thread %d", tid)
	}
	return t.teb, nil
}

// newThread makes a thread that starts as Wine's call_init_thunk starts
// one: a CONTEXT for RtlUserThreadStart(entry, arg) below the top of its
// stack, and RIP at LdrInitializeThunk(&context).
func (p *Process) newThread(entry, arg, stackReserve, stackCommit uint64) (*Thread, error) {
	if len(p.threads) >= 4096 {
		return nil, fmt.Errorf("more than 4096 threads")
	}
	t := &Thread{p: p, tid: p.nextTID, state: threadReady}
	p.nextTID += 4
	tebAlloc, err := p.allocate(0x7ff0_0000, tebBlockSize, process.PAGE_READWRITE, process.MEM_PRIVATE, true, fmt.Sprintf("TEB of thread %#x", t.tid))
	if err != nil {
		return nil, err
	}
	t.teb, t.tebAlloc = tebAlloc.base, tebAlloc
	if stackReserve < 0x100000 {
		stackReserve = 0x100000
	}
	if stackReserve > 256<<20 {
		stackReserve = 256 << 20
	}
	stackReserve = (stackReserve + allocGranule - 1) &^ (allocGranule - 1)
	base, ok := p.vm.findFree(stackReserve, allocGranule, 0x100000, false)
	if !ok {
		return nil, fmt.Errorf("no room for a %d-byte stack", stackReserve)
	}
	stack, err := p.vm.reserve(base, stackReserve, process.PAGE_READWRITE, process.MEM_PRIVATE, fmt.Sprintf("stack of thread %#x", t.tid))
	if err != nil {
		return nil, err
	}
	// Everything but the lowest page is committed; that page stays
	// reserved, so running off the stack faults.
	if err := p.vm.commit(stack, base+process.PageSize, stackReserve-process.PageSize, process.PAGE_READWRITE); err != nil {
		return nil, err
	}
	t.stack, t.stackBase, t.stackLimit = stack, base+stackReserve, base+process.PageSize

	b := make(memw, 0x3000)
	tb := process.ThreadBlock{TEB: t.teb, PEB: p.peb, StackBase: t.stackBase, StackLimit: t.stackLimit,
		DeallocationStack: base, ProcessID: pid, ThreadID: uint64(t.tid)}
	for _, f := range tb.Fields() {
		b.u64(int(f[0]), f[1])
	}
	b.u64(process.TEBExceptionList, ^uint64(0))
	b.u32(process.TEBCurrentLocale, 0x409)
	b.u64(process.TEBActCtxStackPointer, t.teb+process.TEBActCtxStack)
	b.u64(process.TEBActCtxStack+8, t.teb+process.TEBActCtxStack+8) // FrameListCache: an empty list
	b.u64(process.TEBActCtxStack+16, t.teb+process.TEBActCtxStack+8)
	b.ustr(process.TEBStaticUnicodeString, 0, process.TEBStaticUnicodeBufSize, t.teb+process.TEBStaticUnicodeBuffer)
	b.u64(process.TEBTLSLinks, t.teb+process.TEBTLSLinks) // an unlinked LIST_ENTRY
	b.u64(process.TEBTLSLinks+8, t.teb+process.TEBTLSLinks)
	// The 32-bit TEB Wine keeps at +0x2000.
	b.u32(teb32Offset+teb32ExcList, ^uint32(0))
	b.u32(teb32Offset+teb32Self, uint32(t.teb+teb32Offset))
	b.u32(teb32Offset+teb32WowTebOf, uint32(0x1_0000_0000-teb32Offset))
	if err := p.mem.Write(t.teb, b); err != nil {
		return nil, err
	}

	// The initial context, as call_init_thunk builds it.
	var cur arch.Context
	if err := p.m.ReadContext(&cur); err != nil {
		return nil, &vmError{"read context", err}
	}
	start := cur
	start.GPR = [16]uint64{}
	start.GPR[arch.RCX] = entry
	start.GPR[arch.RDX] = arg
	start.GPR[arch.RSP] = t.stackBase - 0x28
	start.RIP = p.ntdll.rtlUserThreadStart
	start.RFLAGS = 0x200
	start.FCTRL = 0x27f
	start.FTAG = 0xffff
	start.MXCSR = 0x1f80
	start.GSBase = t.teb
	ctxAddr := (start.GPR[arch.RSP] &^ 15) - ctxSize
	img := make(memw, ctxSize)
	encodeContext(img, &start, CONTEXT_FULL)
	if err := p.mem.Write(ctxAddr, img); err != nil {
		return nil, err
	}
	t.ctx = start
	t.ctx.GPR = [16]uint64{}
	t.ctx.GPR[arch.RSP] = ctxAddr - 8
	t.ctx.GPR[arch.RCX] = ctxAddr
	t.ctx.RIP = p.ntdll.ldrInitializeThunk
	p.threads = append(p.threads, t)
	return t, nil
}

// waitBlock is what a waiting thread waits for.
type waitBlock struct {
	objs      []waitable
	all       bool
	alertable bool
	alertWait bool  // NtWaitForAlertByThreadId
	deadline  int64 // clock.sinceBoot() value; -1: forever
	delay     bool  // NtDelayExecution: only the deadline ends it
}

// waitable is an object a thread can wait for.
type waitable interface {
	object
	signaled(t *Thread) bool // whether t's wait would be satisfied now
	acquire(t *Thread)       // consume the signal (auto-reset events, semaphores, mutants)
}

// tryWait completes t's wait if it can: it returns the status and true.
func (p *Process) tryWait(t *Thread, w *waitBlock) (ntstatus, bool) {
	if w.alertWait && t.alerted {
		t.alerted = false
		return STATUS_ALERTED, true
	}
	if w.delay || w.alertWait {
		return 0, false
	}
	if w.all {
		for _, o := range w.objs {
			if !o.signaled(t) {
				return 0, false
			}
		}
		abandoned := false
		for _, o := range w.objs {
			if m, ok := o.(*mutant); ok && m.abandoned {
				abandoned = true
			}
			o.acquire(t)
		}
		if abandoned {
			return STATUS_ABANDONED_WAIT_0, true
		}
		return STATUS_WAIT_0, true
	}
	for i, o := range w.objs {
		if o.signaled(t) {
			st := STATUS_WAIT_0 + ntstatus(i)
			if m, ok := o.(*mutant); ok && m.abandoned {
				st = STATUS_ABANDONED_WAIT_0 + ntstatus(i)
			}
			o.acquire(t)
			return st, true
		}
	}
	return 0, false
}

// block makes the current thread wait; the system call's status is set
// when the wait ends.
func (c *call) block(w *waitBlock) {
	c.t.wait = w
	c.blocked = true
}

// schedule picks the next thread to run after the current one blocked
// (blocked != nil) or ended, and loads it.
func (p *Process) schedule(blocked *Thread) (Event, error) {
	prev := p.cur
	if blocked != nil {
		blocked.state = threadWaiting
	}
	for rounds := 0; rounds < 1<<20; rounds++ {
		if t := p.nextReady(prev); t != nil {
			if err := p.switchTo(t); err != nil {
				return Event{}, err
			}
			return Event{Switched: t != prev}, nil
		}
		// Nobody can run: jump the clock to the earliest deadline.
		var first *Thread
		for _, t := range p.threads {
			if t.state == threadWaiting && t.wait.deadline >= 0 && (first == nil || t.wait.deadline < first.wait.deadline) {
				first = t
			}
		}
		if first == nil {
			p.cur = nil
			return Event{Kind: EventDeadlock, Description: p.deadlockReport()}, nil
		}
		now := p.clock.sinceBoot()
		if d := first.wait.deadline - now; d > 0 {
			if p.clock.real {
				time.Sleep(time.Duration(d) * 100)
			} else {
				p.clock.advance(d)
			}
			p.updateUserShared()
		}
		p.finishWait(first, STATUS_TIMEOUT)
	}
	return Event{Kind: EventError, Description: "scheduler did not converge"}, nil
}

// nextReady finds the next thread after prev (in creation order,
// wrapping) that is ready or whose wait is now satisfied.
func (p *Process) nextReady(prev *Thread) *Thread {
	n := len(p.threads)
	start := 0
	for i, t := range p.threads {
		if t == prev {
			start = i + 1
			break
		}
	}
	now := p.clock.sinceBoot()
	for k := 0; k < n; k++ {
		t := p.threads[(start+k)%n]
		switch t.state {
		case threadReady, threadRunning:
			if t.suspend == 0 {
				return t
			}
		case threadWaiting:
			if st, ok := p.tryWait(t, t.wait); ok {
				p.finishWait(t, st)
				return t
			}
			if t.wait.deadline >= 0 && t.wait.deadline <= now {
				p.finishWait(t, STATUS_TIMEOUT)
				return t
			}
		}
	}
	return nil
}

// finishWait ends t's wait with status (its system call returns it).
func (p *Process) finishWait(t *Thread, status ntstatus) {
	if status == STATUS_TIMEOUT {
		if t.wait.delay {
			status = STATUS_SUCCESS
		} else if t.onTimeout != nil {
			t.onTimeout()
		}
	}
	t.onTimeout = nil
	t.wait = nil
	t.state = threadReady
	if t.suspend > 0 {
		t.state = threadSuspended
	}
	t.ctx.GPR[arch.RAX] = uint64(status)
}

// preempt ends the running thread's turn after quantumSyscalls system
// calls when another thread is ready.
func (p *Process) preempt() (Event, error) {
	p.sinceSwitch++
	if p.sinceSwitch < quantumSyscalls || len(p.threads) < 2 {
		return Event{}, nil
	}
	p.sinceSwitch = 0
	prev := p.cur
	if t := p.nextReady(prev); t != nil && t != prev {
		if err := p.switchTo(t); err != nil {
			return Event{}, err
		}
		return Event{Switched: true}, nil
	}
	return Event{}, nil
}

// Yield ends the running thread's turn if another thread is ready (the
// integrator calls it when a time slice of guest execution ran out).
//
// A time slice counts as a millisecond of guest time, so that threads
// polling the clock without system calls (GetTickCount reads
// KUSER_SHARED_DATA) see it move.
func (p *Process) Yield() (Event, error) {
	if p.cur == nil || len(p.threads) < 2 {
		return Event{}, nil
	}
	p.clock.advance(10_000)
	p.updateUserShared()
	p.sinceSwitch = quantumSyscalls
	return p.preempt()
}

func (p *Process) deadlockReport() string {
	var waits []string
	for _, t := range p.threads {
		if t.state == threadWaiting {
			waits = append(waits, fmt.Sprintf("thread %#x waits for %d object(s)", t.tid, len(t.wait.objs)))
		}
	}
	sort.Strings(waits)
	return fmt.Sprintf("deadlock: every thread waits forever (%v)", waits)
}

// exitThread ends t; the last thread ending ends the process.
func (p *Process) exitThread(t *Thread, code uint32) {
	t.state = threadTerminated
	t.exitCode = code
	alive := 0
	for _, o := range p.threads {
		if o.state != threadTerminated {
			alive++
		}
	}
	if alive == 0 {
		p.exited, p.exitCode = true, code
	}
	if t.stack != nil && t != p.cur {
		p.vm.release(t.stack)
		t.stack = nil
	}
}
