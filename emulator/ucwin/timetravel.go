package ucwin

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/rspstub/rspstub/emulator/unicorn"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/rsp"
)

// Time travel (Config.Record).
//
// The guest is deterministic under recording: its clocks are virtual
// (the synth userland's run on the instruction count, the wine userland's
// virtual clock is forced), stdin is kept on a tape the first time it is
// read and read from the tape by every replay, handles and ids are fixed
// by the guest models, and the sandbox starts from the same empty folder.
// So a position (instructions executed since the machine started,
// unicorn.Machine.Position) names one state of the whole process, and any
// earlier state is reached again by building the process anew and
// running it to that position: the machine's CPU and memory and every
// piece of guest-model state (heap, handles, files, registry, scheduler,
// console) come back by re-execution, nothing needs copying. A snapshot
// is a position plus a digest of the registers and memory at save time,
// which a restore checks.
//
// The API trace and coverage span incarnations: a replay writes no trace
// line the trace already has (counted like console writes), coverage is
// off while a replay runs to its position, and an incarnation replaced
// folds its blocks into the totals first. Catch points are in every
// incarnation (installHooks); their hit counts include replays.
//
// Going backwards is going forwards from the start: reverse-stepi runs a
// new incarnation to the position before the current one;
// reverse-continue runs one to the current position with the client's
// breakpoints and watchpoints in, notes every hit, and runs another to
// the last. Guest output of a replay is not shown again: the console
// counts the writes the user has seen and drops the first that many.
//
// The guest's own rdtsc and rdtscp read a virtual counter too, 3 ticks
// an instruction (unicorn.Machine.SetVirtualTSC: libunicorn 2.0.1 has no
// rdtsc hook, so a code hook after each one rewrites EDX:EAX).
//
// Not covered: a --root sandbox the guest writes to is not reset between replays;
// the debugger's writes to memory or registers are not part of the
// recording (going back and forward again forgets them); threads of the
// wine userland switch on translation-block counts, which a replay that
// stops elsewhere may not reproduce.

// recorder is the recording shared by a target's incarnations.
type recorder struct {
	cfg   Config // as given (the console writers are the user's)
	stdin *tape

	mu      sync.Mutex
	printed int // console writes the user has seen
	writes  int // console writes of the current incarnation
	traced  int // API trace lines written (Config.TraceAPI)
	traces  int // trace lines of the current incarnation

	start uint64 // position of the first stop (the history's beginning)
	snaps map[string]snapshot

	// gen counts the guest model's changes in the current incarnation
	// (API calls, system calls, thread switches, exceptions delivered):
	// between two positions with the same gen only the machine's CPU and
	// memory changed, so a checkpoint of those is the whole state.
	gen uint64
	// Checkpoints taken every `every` instructions of a run, newest
	// last; next is the position of the next one.
	ckpts []*checkpoint
	every uint64
	next  uint64
	// CheckpointStats.
	stats CheckpointStats
}

// CheckpointStats counts the work of the automatic checkpoints.
type CheckpointStats struct {
	Taken, Restored, Replays int
	Bytes                    int64 // page bytes copied (shared pages not counted)
	TakeTime                 time.Duration
}

// checkpoint is the machine's CPU and memory at a position.
type checkpoint struct {
	pos, gen uint64
	writes   int
	ctx      unicorn.Context
	regions  []unicorn.Region
	pages    [][][]byte // per region, per page; shared with older checkpoints when equal
}

// Defaults of the automatic checkpoints: an interval short enough that a
// reverse step replays a few tens of milliseconds at most, and how many
// are kept.
const (
	defaultCheckpointEvery = 1 << 23
	maxCheckpoints         = 64
)

// mutated counts a change of the guest model (nil-safe).
func (r *recorder) mutated() {
	if r != nil {
		r.gen++
	}
}

// snapshot is a named position and what the state there looked like.
type snapshot struct {
	pos    uint64
	digest [32]byte
	saved  time.Time
}

func newRecorder(cfg *Config) *recorder {
	r := &recorder{cfg: *cfg, snaps: map[string]snapshot{}, every: defaultCheckpointEvery}
	if cfg.Stdin != nil {
		r.stdin = &tape{src: cfg.Stdin}
	}
	return r
}

// prepare sets up an incarnation: counting from its first instruction,
// virtual clocks, stdin from the tape.
func (r *recorder) prepare(cfg *Config, m *unicorn.Machine) error {
	if err := m.SetCounting(true); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	// rdtsc: 3 ticks an instruction (a 3 GHz guest at 1 ns an
	// instruction, the clocks' rate).
	m.SetVirtualTSC(true, 3)
	// One nanosecond of guest time per instruction.
	cfg.clock = func() time.Duration { return time.Duration(m.Position()) }
	cfg.RealClock = false
	if r.stdin != nil {
		cfg.Stdin = &tapeReader{t: r.stdin}
	}
	r.mu.Lock()
	r.writes = 0
	r.traces = 0
	r.mu.Unlock()
	r.gen = 0
	r.next = r.every
	r.stats.Replays++
	return nil
}

// show counts one console write and reports whether the user has not
// seen it yet.
func (r *recorder) show() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	if r.writes <= r.printed {
		return false
	}
	r.printed = r.writes
	return true
}

// traceShow counts one API trace line and reports whether the trace does
// not have it yet (always without a recording). A trace line changes
// gen, and a checkpoint is restored only while gen is what it was then:
// none lies between a checkpoint restored and the position, and the
// count needs no restoring.
func (r *recorder) traceShow() bool {
	if r == nil {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.traces++
	if r.traces <= r.traced {
		return false
	}
	r.traced = r.traces
	return true
}

// tape keeps what the guest read from stdin, so that replays read the
// same bytes.
type tape struct {
	mu  sync.Mutex
	src io.Reader
	buf []byte
	err error
}

type tapeReader struct {
	t   *tape
	off int
}

func (r *tapeReader) Read(p []byte) (int, error) {
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.off == len(t.buf) && t.err == nil {
		var b [4096]byte
		n := len(p)
		if n > len(b) {
			n = len(b)
		}
		k, err := t.src.Read(b[:n])
		t.buf = append(t.buf, b[:k]...)
		t.err = err
	}
	if r.off < len(t.buf) {
		n := copy(p, t.buf[r.off:])
		r.off += n
		return n, nil
	}
	return 0, t.err
}

// Recording reports whether time travel is on.
func (t *Target) Recording() bool { return t.rec != nil }

// errNoRecord is the answer to time-travel requests without --record.
var errNoRecord = errors.New("time travel needs a recording: start rspstub with --record")

// Position is the number of instructions the guest has executed.
func (t *Target) Position() uint64 { return t.m.Position() }

// machineRun runs or steps the machine once; replays step one
// instruction at a time.
func (t *Target) machineRun(step bool) unicorn.Stop {
	var us unicorn.Stop
	switch {
	case step && t.fineStep:
		us = t.m.StepOne()
	case step:
		us = t.m.Step()
	case t.rec != nil:
		us = t.runCheckpointed()
	default:
		us = t.m.Run()
	}
	t.posStop = us.Reason == unicorn.StopPosition
	if us.Reason == unicorn.StopFault && us.Inexact && us.BlockKnown && t.rec != nil && !t.replayOn && !t.fineStep {
		if ex, ok := t.exactFault(us); ok {
			return ex
		}
	}
	return us
}

// maxFaultSteps bounds the instructions exactFault steps through (a
// block holds far fewer).
const maxFaultSteps = 4096

// exactFault finds the instruction of a data fault the decoder could not
// prove, for certain: the recording goes back to the entry of the block
// the fault came from and runs it again one instruction at a time, so
// the fault is met with the exact pc, registers and flags. ok is false
// when that did not meet the same fault: the machine then runs on from
// where the steps ended (the deterministic guest meets its fault again,
// flagged as before).
func (t *Target) exactFault(us unicorn.Stop) (unicorn.Stop, bool) {
	if _, err := t.goTo(us.BlockPosition); err != nil {
		return us, false // the replay failed before changing the machine's run
	}
	for range maxFaultSteps {
		// A position at an API entry is also the position after the
		// call (the synth userland runs it in Go): perform it first.
		if pc, err := t.m.Reg(arch.RIP); err == nil && t.wine == nil && t.mw.isTrap(pc) {
			if _, done, err := t.serveTrap(pc); err != nil || done {
				return t.m.Run(), false
			}
			continue
		}
		st := t.m.StepOne()
		if st.Reason == unicorn.StopFault && st.Addr == us.Addr && !st.Inexact {
			return st, true
		}
		if st.Reason != unicorn.StopStep {
			return st, false
		}
	}
	return t.m.Run(), false
}

// runCheckpointed runs with the position limit at the next checkpoint
// (or the replay's end, if nearer), takes the checkpoint and goes on.
func (t *Target) runCheckpointed() unicorn.Stop {
	r := t.rec
	for {
		limit, replay := r.next, false
		if t.replayOn && t.replayTo <= limit {
			limit, replay = t.replayTo, true
		}
		t.m.SetPositionLimit(limit, true)
		before := t.m.Position()
		us := t.m.Run()
		t.m.SetPositionLimit(0, false)
		if us.Reason != unicorn.StopPosition || replay {
			return us
		}
		pos := t.m.Position()
		if pos > before {
			// Stopped before a breakpoint at this block's start could
			// fire: the run goes on without skipping it.
			t.m.ForgetLastPC()
		}
		t.takeCheckpoint()
		r.next = pos + r.every
		if t.interrupted.Load() {
			us.Reason = unicorn.StopInterrupt
			return us
		}
	}
}

// takeCheckpoint copies the CPU and memory; pages equal to the newest
// checkpoint's are shared with it.
func (t *Target) takeCheckpoint() {
	r := t.rec
	t0 := time.Now()
	c := &checkpoint{pos: t.m.Position(), gen: r.gen, regions: t.m.Regions()}
	r.mu.Lock()
	c.writes = r.writes
	r.mu.Unlock()
	if t.m.ReadContext(&c.ctx) != nil {
		return
	}
	var prev *checkpoint
	if n := len(r.ckpts); n > 0 {
		prev = r.ckpts[n-1]
		if prev.pos >= c.pos {
			return // replayed over known ground
		}
	}
	var buf [unicorn.PageSize]byte
	c.pages = make([][][]byte, len(c.regions))
	for i, reg := range c.regions {
		var old [][]byte
		if prev != nil && i < len(prev.regions) && prev.regions[i] == reg {
			old = prev.pages[i]
		}
		pages := make([][]byte, reg.Size/unicorn.PageSize)
		for k := range pages {
			addr := reg.Start + uint64(k)*unicorn.PageSize
			cur := t.m.HostBytes(addr, unicorn.PageSize)
			if cur == nil {
				n, _ := t.m.ReadMemory(addr, buf[:])
				cur = buf[:n]
			}
			if old != nil && bytes.Equal(old[k], cur) {
				pages[k] = old[k]
				continue
			}
			pages[k] = append([]byte(nil), cur...)
			r.stats.Bytes += int64(len(cur))
		}
		c.pages[i] = pages
	}
	if len(r.ckpts) == maxCheckpoints {
		r.ckpts = append(r.ckpts[:0], r.ckpts[1:]...)
	}
	r.ckpts = append(r.ckpts, c)
	r.stats.Taken++
	r.stats.TakeTime += time.Since(t0)
}

// checkpointFor is the newest checkpoint at or before n that the current
// incarnation can return to: the guest model has not changed since it.
func (t *Target) checkpointFor(n uint64) *checkpoint {
	r := t.rec
	for i := len(r.ckpts) - 1; i >= 0; i-- {
		c := r.ckpts[i]
		if c.pos <= n && c.gen == r.gen && c.pos <= t.m.Position() {
			return c
		}
	}
	return nil
}

// restoreCheckpoint puts a checkpoint's CPU and memory back (the pages
// that differ).
func (t *Target) restoreCheckpoint(c *checkpoint) error {
	r := t.rec
	regs := t.m.Regions()
	if len(regs) != len(c.regions) {
		return fmt.Errorf("checkpoint at %d: the memory map changed", c.pos)
	}
	var buf [unicorn.PageSize]byte
	for i, reg := range c.regions {
		if regs[i] != reg {
			return fmt.Errorf("checkpoint at %d: the memory map changed", c.pos)
		}
		for k, p := range c.pages[i] {
			addr := reg.Start + uint64(k)*unicorn.PageSize
			cur := t.m.HostBytes(addr, len(p))
			if cur == nil {
				n, _ := t.m.ReadMemory(addr, buf[:len(p)])
				cur = buf[:n]
			}
			if bytes.Equal(cur, p) {
				continue
			}
			if _, err := t.m.WriteMemory(addr, p); err != nil {
				return err
			}
		}
	}
	if err := t.m.WriteContext(&c.ctx); err != nil {
		return err
	}
	t.m.SetPosition(c.pos)
	t.m.ForgetLastPC()
	r.mu.Lock()
	r.writes = c.writes
	r.mu.Unlock()
	r.next = c.pos + r.every
	r.stats.Restored++
	return nil
}

// CheckpointStats reports the automatic checkpoints' work.
func (t *Target) CheckpointStats() CheckpointStats {
	if t.rec == nil {
		return CheckpointStats{}
	}
	return t.rec.stats
}

// SetCheckpointInterval sets the instructions between automatic
// checkpoints (0: none).
func (t *Target) SetCheckpointInterval(n uint64) {
	if t.rec != nil {
		if n == 0 {
			n = ^uint64(0) >> 1
		}
		t.rec.every = n
		t.rec.next = t.m.Position() + n
	}
}

// hit is a breakpoint or watchpoint stop met by a replay.
type hit struct {
	pos  uint64 // where reverse-continue stops for it
	stop rsp.Stop
}

// incarnate builds the process anew, runs it to position n and puts it
// in place of the current one. With scan, the client's breakpoints and
// watchpoints are in during the run and every hit before n is returned.
func (t *Target) incarnate(n uint64, scan bool) ([]hit, rsp.Stop, error) {
	r := t.rec
	f, err := build(r.cfg, r, t)
	if err != nil {
		return nil, rsp.Stop{}, fmt.Errorf("replay: %w", err)
	}
	// The blocks the old incarnation ran stay in the coverage (some may
	// lie past n); the new one records after the replay (runTo). Catch
	// points and the trace's breakpoints go into the new machine.
	t.foldCoverage()
	t.swap(f)
	f.closeInner()
	t.installHooks()
	if t.hk != nil && t.hk.trace != nil {
		t.hk.trace.seq = 0 // numbered as in the first run
	}
	var hits []hit
	if scan {
		for k := range t.breaks {
			if err := t.insert(k.kind, k.addr, k.size); err != nil {
				return nil, rsp.Stop{}, err
			}
		}
	}
	st, err := t.runTo(n, scan, &hits)
	if err == nil && !scan {
		for k := range t.breaks {
			if err = t.insert(k.kind, k.addr, k.size); err != nil {
				break
			}
		}
	}
	return hits, st, err
}

// swap exchanges the machine and guest model of t and f; what the client
// and the monitor know of t (breakpoints, console, modules reported)
// stays.
func (t *Target) swap(f *Target) {
	t.machMu.Lock()
	t.m, f.m = f.m, t.m
	t.machMu.Unlock()
	t.mw, f.mw = f.mw, t.mw
	t.proc, f.proc = f.proc, t.proc
	t.wine, f.wine = f.wine, t.wine
	t.desc, f.desc = f.desc, t.desc
	t.last, f.last = f.last, t.last
	t.exited, f.exited = f.exited, t.exited
	t.deliver, f.deliver = f.deliver, t.deliver
	t.pending, f.pending = f.pending, t.pending
	t.final, f.final = f.final, t.final
	t.loadGen, f.loadGen = f.loadGen, t.loadGen
	t.shadows, f.shadows = f.shadows, t.shadows
	t.fault, f.fault = f.fault, t.fault
	t.faultDump, f.faultDump = f.faultDump, t.faultDump
	t.delivered, f.delivered = f.delivered, t.delivered
}

// closeInner releases a swapped-out incarnation.
func (t *Target) closeInner() {
	if t.wine != nil {
		t.wine.Close()
	}
	t.m.Close()
}

// maxReplayStops bounds the stops one replay goes through.
const maxReplayStops = 1 << 24

// runTo runs the current incarnation to position n: at full speed up to
// the block before it, then one instruction at a time. scan notes the
// breakpoint and watchpoint stops on the way in hits.
func (t *Target) runTo(n uint64, scan bool, hits *[]hit) (rsp.Stop, error) {
	if t.cov != nil {
		// Coverage has the blocks up to n already; a replay's steps
		// would add blocks that start inside them.
		if err := t.m.SetCoverage(false); err != nil {
			return rsp.Stop{}, err
		}
	}
	defer func() {
		t.replayOn = false
		t.fineStep = false
		if t.cov != nil {
			t.m.SetCoverage(true)
		}
	}()
	bps := map[uint64]rsp.StopKind{}
	for k := range t.breaks {
		if k.kind == rsp.BreakSoftware || k.kind == rsp.BreakHardware {
			bps[k.addr] = rsp.StopSWBreak
			if k.kind == rsp.BreakHardware {
				bps[k.addr] = rsp.StopHWBreak
			}
		}
	}
	t.replayTo, t.replayOn = n, true
	st := t.last
	for i := 0; t.m.Position() < n; i++ {
		if i >= maxReplayStops {
			return st, fmt.Errorf("replay to position %d: no progress at %d", n, t.m.Position())
		}
		if t.exited {
			return st, fmt.Errorf("replay to position %d: the program ended at %d (the execution is not deterministic)", n, t.m.Position())
		}
		before := t.m.Position()
		var err error
		st, err = t.run(t.fineStep)
		if err != nil {
			return st, err
		}
		t.last = st
		pos := t.m.Position()
		switch {
		case t.posStop:
			// The next block would pass n: the rest one by one. The
			// limit stops before a breakpoint's hook at the block start.
			t.fineStep = true
			t.replayOn = false
			if scan && pos < n {
				pc, _ := t.m.Reg(arch.RIP)
				if kind, ok := bps[pc]; ok {
					*hits = append(*hits, hit{pos: pos, stop: t.stop(kind, rsp.SIGTRAP)})
				}
			}
			continue
		case st.Kind == rsp.StopWatch || st.Kind == rsp.StopRWatch || st.Kind == rsp.StopAWatch:
			if scan && pos > 0 {
				// Going backwards, a watchpoint stops before the access.
				*hits = append(*hits, hit{pos: pos - 1, stop: st})
			}
			continue
		case st.Kind == rsp.StopSWBreak || st.Kind == rsp.StopHWBreak:
			if scan && pos < n {
				*hits = append(*hits, hit{pos: pos, stop: st})
			}
			continue
		case st.Kind == rsp.StopSignal && st.Signal == rsp.SIGINT && t.interrupted.Load():
			return st, nil
		case st.Kind == rsp.StopSignal && st.Signal == rsp.SIGTRAP:
			if t.fineStep && scan && pos < n && pos > before {
				pc, _ := t.m.Reg(arch.RIP)
				if kind, ok := bps[pc]; ok {
					*hits = append(*hits, hit{pos: pos, stop: t.stop(kind, rsp.SIGTRAP)})
				}
			}
			continue
		case st.Kind == rsp.StopExited || st.Kind == rsp.StopTerminated:
			continue // reported by the loop condition
		}
		if t.pending != nil {
			// A guest exception the user delivered by resuming.
			if err := t.resumeWine(rsp.ResumeAction{Thread: rsp.AllThreads, Signal: st.Signal}); err != nil {
				return st, err
			}
			continue
		}
		return st, fmt.Errorf("replay to position %d: stopped at %d: %s", n, pos, describeStop(st))
	}
	if t.m.Position() != n {
		return st, fmt.Errorf("replay to position %d overshot to %d", n, t.m.Position())
	}
	return st, nil
}

// goTo makes the process be at position n (by a replay) and returns the
// stop to report there.
func (t *Target) goTo(n uint64) (rsp.Stop, error) {
	if c := t.checkpointFor(n); c != nil && !t.exited {
		if err := t.restoreCheckpoint(c); err != nil {
			return rsp.Stop{}, err
		}
		if _, err := t.runTo(n, false, nil); err != nil {
			return rsp.Stop{}, err
		}
	} else if _, _, err := t.incarnate(n, false); err != nil {
		return rsp.Stop{}, err
	}
	st := t.stop(rsp.StopSignal, rsp.SIGTRAP)
	t.last = st
	return st, nil
}

// StepBack undoes one instruction (rsp.Reverser's ReverseStep).
func (t *Target) StepBack(tid int) (rsp.Stop, error) {
	if t.rec == nil {
		return rsp.Stop{}, errNoRecord
	}
	t.interrupted.Store(false)
	return t.ReverseStepN(1)
}

// ContinueBack goes back to the last breakpoint or watchpoint hit
// before the current position, or to the start of the recording
// (rsp.Reverser's ReverseContinue).
func (t *Target) ContinueBack() (rsp.Stop, error) {
	if t.rec == nil {
		return rsp.Stop{}, errNoRecord
	}
	t.interrupted.Store(false)
	pos := t.m.Position()
	var (
		hits []hit
		st   rsp.Stop
		err  error
	)
	if c := t.checkpointFor(pos - min(pos, 1)); c != nil && !t.exited && pos > 0 {
		// The last stretch first, from the newest checkpoint the state
		// can go back to; the whole history only if it has no hit.
		if err := t.restoreCheckpoint(c); err != nil {
			return rsp.Stop{}, err
		}
		st, err = t.runTo(pos, true, &hits)
		if err == nil && len(hits) == 0 && !(st.Kind == rsp.StopSignal && st.Signal == rsp.SIGINT && t.interrupted.Load()) {
			hits, st, err = t.incarnate(c.pos, true)
		}
	} else {
		hits, st, err = t.incarnate(pos, true)
	}
	if err != nil {
		return rsp.Stop{}, err
	}
	if st.Kind == rsp.StopSignal && st.Signal == rsp.SIGINT {
		t.last = st
		return st, nil
	}
	for len(hits) > 0 && hits[len(hits)-1].pos >= pos {
		hits = hits[:len(hits)-1]
	}
	if len(hits) == 0 {
		st, err := t.goTo(t.rec.start)
		st.ReplayLog = "begin"
		t.last = st
		return st, err
	}
	h := hits[len(hits)-1]
	if _, err := t.goTo(h.pos); err != nil {
		return rsp.Stop{}, err
	}
	st = t.stop(h.stop.Kind, rsp.SIGTRAP)
	st.Addr = h.stop.Addr
	t.last = st
	return st, nil
}

// digest hashes the registers of every thread and all mapped memory.
func (t *Target) digest() ([32]byte, error) {
	h := sha256.New()
	var c unicorn.Context
	if t.wine != nil {
		for _, th := range t.wine.Threads() {
			ctx, err := t.wine.ThreadContext(th.TID)
			if err != nil {
				return [32]byte{}, err
			}
			fmt.Fprintf(h, "thread %d %x\n", th.TID, contextBytes(ctx))
		}
	} else {
		if err := t.m.ReadContext(&c); err != nil {
			return [32]byte{}, err
		}
		fmt.Fprintf(h, "%x\n", contextBytes(&c))
	}
	buf := make([]byte, 1<<20)
	for _, reg := range t.m.Regions() {
		fmt.Fprintf(h, "region %#x %#x %v\n", reg.Start, reg.Size, reg.Perm)
		for off := uint64(0); off < reg.Size; off += uint64(len(buf)) {
			n := min(uint64(len(buf)), reg.Size-off)
			k, _ := t.m.ReadMemory(reg.Start+off, buf[:n])
			h.Write(buf[:k])
		}
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out, nil
}

func contextBytes(c *unicorn.Context) string {
	return fmt.Sprintf("%v %x %x %v %v", c.GPR, c.RIP, c.RFLAGS, c.XMM, []uint64{c.FSBase, c.GSBase})
}

// SnapshotInfo describes a saved snapshot.
type SnapshotInfo struct {
	Name     string
	Position uint64
}

// SaveSnapshot names the current position (a generated name for "").
func (t *Target) SaveSnapshot(name string) (string, error) {
	if t.rec == nil {
		return "", errNoRecord
	}
	if name == "" {
		for i := 1; ; i++ {
			name = fmt.Sprintf("s%d", i)
			if _, ok := t.rec.snaps[name]; !ok {
				break
			}
		}
	}
	d, err := t.digest()
	if err != nil {
		return "", err
	}
	t.rec.snaps[name] = snapshot{pos: t.m.Position(), digest: d, saved: time.Now()}
	return name, nil
}

// RestoreSnapshot brings the whole process back to a snapshot and checks
// that its registers and memory are what they were at save time.
func (t *Target) RestoreSnapshot(name string) (rsp.Stop, error) {
	if t.rec == nil {
		return rsp.Stop{}, errNoRecord
	}
	s, ok := t.rec.snaps[name]
	if !ok {
		return rsp.Stop{}, fmt.Errorf("no snapshot %q", name)
	}
	st, err := t.goTo(s.pos)
	if err != nil {
		return st, err
	}
	d, err := t.digest()
	if err != nil {
		return st, err
	}
	if d != s.digest {
		return st, fmt.Errorf("snapshot %q: the state at position %d differs from the one saved (the execution is not deterministic, or the debugger changed memory or registers before saving)", name, s.pos)
	}
	return st, nil
}

// DeleteSnapshot forgets a snapshot.
func (t *Target) DeleteSnapshot(name string) error {
	if t.rec == nil {
		return errNoRecord
	}
	if _, ok := t.rec.snaps[name]; !ok {
		return fmt.Errorf("no snapshot %q", name)
	}
	delete(t.rec.snaps, name)
	return nil
}

// Snapshots lists the snapshots by position.
func (t *Target) Snapshots() []SnapshotInfo {
	if t.rec == nil {
		return nil
	}
	out := make([]SnapshotInfo, 0, len(t.rec.snaps))
	for n, s := range t.rec.snaps {
		out = append(out, SnapshotInfo{Name: n, Position: s.pos})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Position != out[j].Position {
			return out[i].Position < out[j].Position
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// ReverseStepN goes n instructions back (to the start at most).
func (t *Target) ReverseStepN(n uint64) (rsp.Stop, error) {
	if t.rec == nil {
		return rsp.Stop{}, errNoRecord
	}
	pos := t.m.Position()
	if pos <= t.rec.start {
		st := t.stop(rsp.StopSignal, rsp.SIGTRAP)
		st.ReplayLog = "begin"
		return st, nil
	}
	to := t.rec.start
	if pos-t.rec.start > n {
		to = pos - n
	}
	return t.goTo(to)
}

// describeHere says where a time-travel stop left the process.
func (t *Target) describeHere(st rsp.Stop) string {
	pc, _ := t.m.Reg(arch.RIP)
	where := fmt.Sprintf("pc %#x", pc)
	if t.symbolizer != nil {
		if s := t.symbolizer(pc); s != "" {
			where += " " + s
		}
	}
	switch {
	case st.ReplayLog == "begin":
		return where + " (the start of the recording)"
	case st.Kind == rsp.StopWatch || st.Kind == rsp.StopRWatch || st.Kind == rsp.StopAWatch:
		return fmt.Sprintf("%s, before the access to %#x that the watchpoint caught", where, st.Addr)
	case st.Kind == rsp.StopSWBreak || st.Kind == rsp.StopHWBreak:
		return where + " (breakpoint)"
	}
	return where
}

// ReverseStep implements rsp.Reverser (bs), offered only while recording.
func (t *Target) ReverseStep(tid int) (rsp.Stop, error) { return t.StepBack(tid) }

// ReverseContinue implements rsp.Reverser (bc), offered only while
// recording.
func (t *Target) ReverseContinue() (rsp.Stop, error) { return t.ContinueBack() }

// Offers implements rsp.FeatureGate: reverse execution is advertised
// (ReverseStep+, ReverseContinue+) only when the execution is recorded.
func (t *Target) Offers(f rsp.Feature) bool {
	if f == rsp.FeatureReverse {
		return t.rec != nil
	}
	return true
}

// SnapshotPositions implements debuggee.Recorder.
func (t *Target) SnapshotPositions() (names []string, positions []uint64) {
	for _, s := range t.Snapshots() {
		names = append(names, s.Name)
		positions = append(positions, s.Position)
	}
	return names, positions
}

// DescribeStop implements debuggee.Recorder: the monitor's line for a
// stop reached by time travel.
func (t *Target) DescribeStop(st rsp.Stop) string { return t.describeHere(st) }
