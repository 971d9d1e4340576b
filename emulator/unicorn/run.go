package unicorn

/*
#include "machine.h"
*/
import "C"

import (
	"fmt"
	"sort"
	"time"
	"unsafe"

	"github.com/rspstub/rspstub/internal/arch"
)

// StopReason says why Run, Step or RangeStep returned.
type StopReason uint8

// The values equal the RS_STOP_* constants of machine.h.
const (
	StopNone         StopReason = iota // not stopped (never returned)
	StopBreakpoint                     // software breakpoint; PC is its address, not executed
	StopHWBreakpoint                   // hardware breakpoint; PC is its address, not executed
	StopWatch                          // watchpoint; PC is the instruction after the access
	StopTrap                           // trap range entered; PC is the (not executed) instruction
	StopStep                           // Step done, or RangeStep left its range
	StopInterrupt                      // Interrupt was called
	StopFault                          // memory fault; Addr and Access say what, PC is the faulting instruction
	StopIllegal                        // invalid opcode (#UD), or one libunicorn cannot translate; PC is that instruction
	StopDivide                         // divide error (#DE); PC is the div instruction
	StopInt3                           // int3 in guest code; PC is after it, Addr is the int3
	StopHalt                           // hlt; PC is after it
	StopError                          // libunicorn failed; see Err
	StopException                      // other CPU exception or int n; Vector says which
	StopSyscall                        // syscall instruction; PC is after it
	stopRangeExit                      // internal to RangeStep (C's RS_STOP_RANGE_EXIT)
	StopQuantum                        // the time slice set by SetQuantum ran out; PC is the next block
	StopPosition                       // the position limit (SetPositionLimit) is reached; PC is the next block
)

var reasonNames = [...]string{
	"none", "breakpoint", "hw-breakpoint", "watchpoint", "trap", "step", "interrupt",
	"fault", "illegal", "divide", "int3", "halt", "error", "exception", "syscall",
	"range-exit", "quantum", "position",
}

// GDBSignal is the GDB signal number (gdb/include/gdb/signals.def) a
// debugger stub reports for the reason.
func (r StopReason) GDBSignal() int {
	switch r {
	case StopInterrupt:
		return 2 // SIGINT
	case StopIllegal:
		return 4 // SIGILL
	case StopDivide:
		return 8 // SIGFPE
	case StopFault, StopException:
		return 11 // SIGSEGV
	case StopError:
		return 6 // SIGABRT
	}
	return 5 // SIGTRAP: breakpoints, watchpoints, steps, traps, int3, hlt, syscall
}

func (r StopReason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("stop(%d)", r)
}

// WatchKind is the access a watchpoint reacts to.
type WatchKind uint8

const (
	WatchWrite WatchKind = iota
	WatchRead
	WatchAccess
)

// Stop describes why execution stopped.
type Stop struct {
	Reason StopReason
	PC     uint64    // exact RIP at the stop (also in the RIP register)
	Addr   uint64    // data address of a watch hit or fault; int3 address
	Access arch.Perm // PermRead, PermWrite or PermExec for faults and watch hits
	Watch  WatchKind // for StopWatch: the kind of the watchpoint hit
	Vector uint32    // for StopException: the interrupt vector
	// AccessPC is, for StopWatch, the instruction that made the access
	// (PC is the one after it).
	AccessPC uint64
	// Inexact is set on a data fault whose instruction the fault decoder
	// could not prove (several candidates are left, PC is the first; or
	// none, PC is where libunicorn left RIP). It is never set with
	// SetExactFaults(true) (FuzzGuestCode checks that), and without it
	// the registers' flags may also be stale at a fault (see doc.go).
	// On StopInterrupt it says the run was stopped from outside, between
	// hooks, and RIP may name the start of a block (or an earlier one)
	// instead of where execution is (Interrupt).
	Inexact bool
	// BlockPosition is, for an Inexact fault while the position counter
	// is on (BlockKnown), the position at the entry of the block the
	// fault came from: a replay to it followed by StepOne finds the
	// faulting instruction for certain (the Unicorn backend does that
	// under --record).
	BlockPosition uint64
	BlockKnown    bool
	// Insn is, for StopIllegal, the bytes of the instruction at PC (as
	// far as they decode; see insnBytes).
	Insn []byte
	// Untranslatable is set, for StopIllegal, when libunicorn's
	// translator aborted on the instruction at PC instead of raising #UD
	// (see doc.go); the machine goes on working as after any #UD.
	Untranslatable bool
	Err            error // for StopError (and the libunicorn error of faults)
}

// ShadowFrame is one call on the shadow call stack.
type ShadowFrame struct {
	CallSite      uint64 // address of the call instruction
	Target        uint64 // first instruction of the callee
	ReturnAddress uint64
	SP            uint64 // RSP after the call pushed ReturnAddress
}

// Run continues from RIP until something stops it.
func (m *Machine) Run() Stop { return m.run(0, 0, 0) }

// Step executes exactly one instruction (or stops earlier on a fault, or
// on a trap at RIP). A breakpoint at RIP does not prevent progress.
func (m *Machine) Step() Stop {
	if err := m.check(); err != nil {
		return Stop{Reason: StopError, Err: err}
	}
	pc, err := m.Reg(arch.RIP)
	if err != nil {
		return Stop{Reason: StopError, Err: err}
	}
	// Temporary breakpoints on the instruction's successors cost nothing
	// to the rest of the run; the tracer (a hook on every instruction)
	// needs every translated block dropped when it comes and goes.
	if a, b, ok := m.successors(pc); ok {
		return m.run(3, a, b)
	}
	return m.run(1, 0, 0)
}

// RangeStep runs while RIP stays in [start, end) and stops (StopStep) at
// the first instruction outside it, or for any other reason. At least one
// instruction is executed.
func (m *Machine) RangeStep(start, end uint64) Stop {
	if end <= start {
		return m.Step()
	}
	return m.run(2, start, end)
}

func (m *Machine) run(mode int, a, b uint64) Stop {
	if err := m.check(); err != nil {
		return Stop{Reason: StopError, Err: err}
	}
	m.ctxValid = false
	m.stopMu.Lock()
	m.gen++
	m.interrupted.Store(false)
	m.running.Store(true)
	m.stopMu.Unlock()
	C.rs_run(m.c, C.int(mode), C.uint64_t(a), C.uint64_t(b))
	m.stopMu.Lock()
	m.running.Store(false)
	interrupted := m.interrupted.Swap(false)
	m.stopMu.Unlock()
	cs := &m.c.stop
	s := Stop{
		Reason: StopReason(cs.reason),
		PC:     uint64(cs.pc),
		Addr:   uint64(cs.addr),
		Access: arch.Perm(cs.access),
		Watch:  WatchKind(cs.watch),
		Vector: uint32(cs.vector),
	}
	if s.Reason == StopWatch {
		s.AccessPC = uint64(cs.access_pc)
	}
	if cs.err != C.UC_ERR_OK {
		s.Err = ucErr("run", cs.err)
	}
	if cs.untranslatable != 0 {
		s.Untranslatable = true
		if s.Reason == StopError {
			s.Err = fmt.Errorf("unicorn: run: libunicorn's translator aborted near %#x and the instruction could not be isolated", s.PC)
		}
	}
	if s.Reason == StopIllegal {
		s.Insn = m.insnBytes(s.PC)
	}
	// The tracer (mode 1) syncs RIP before every instruction: its fault
	// positions are exact without the decoder.
	if s.Reason == StopFault && s.Access != arch.PermExec && cs.exact == 0 && mode != 1 {
		pc, ok, ambiguous := m.findFaultPC(s.PC, s.Addr, s.Access, uint64(cs.value), int(cs.size))
		if !ok || ambiguous {
			s.Inexact = true
			if m.c.count_hook != 0 && m.c.cnt_open != 0 && uint64(m.c.icount) >= uint64(m.c.cnt_n) {
				s.BlockPosition, s.BlockKnown = uint64(m.c.icount)-uint64(m.c.cnt_n), true
			}
		}
		if ok && pc != s.PC {
			if m.SetReg(arch.RIP, pc) == nil {
				s.PC = pc
			}
		}
	}
	m.settle(s.PC)
	if interrupted && (s.Reason == StopNone || s.Reason == StopStep) {
		s.Reason = StopInterrupt
	}
	if s.Reason == StopInterrupt && m.c.forced != 0 {
		// Stopped between hooks (rs_interrupt): RIP may name the
		// start of the block, or an earlier one, instead of where
		// execution is.
		s.Inexact = true
	}
	if s.Reason == StopNone {
		// uc_emu_start returned by itself: hlt is the only guest
		// instruction that does that.
		var op [1]byte
		if s.PC > 0 {
			if n, _ := m.ReadMemory(s.PC-1, op[:]); n == 1 && op[0] == 0xf4 {
				s.Reason = StopHalt
			}
		}
		if s.Reason == StopNone {
			s.Reason = StopInterrupt
		}
	}
	return s
}

// Interrupt makes a running Run, Step or RangeStep return StopInterrupt
// promptly. It is safe from any goroutine and does nothing when nothing
// runs.
func (m *Machine) Interrupt() {
	m.stopMu.Lock()
	gen := m.gen
	m.stopMu.Unlock()
	if !m.stopRunning(gen, false) {
		return
	}
	// The run stops by itself at its next hook, trap or API call
	// (rs_interrupt); a loop that reaches none is stopped with force
	// after forceAfter. uc_emu_stop is lost if it lands between
	// uc_emu_start's reset of its stop flag and the start of execution:
	// the forced request is repeated until that run ends.
	go func() {
		time.Sleep(forceAfter)
		for i := 0; i < 400; i++ {
			if !m.stopRunning(gen, true) {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
}

// forceAfter is how long Interrupt waits for a run to stop at a hook, trap
// or API call before stopping it between two blocks (inexact, see
// rs_interrupt in machine.c).
const forceAfter = 20 * time.Millisecond

// stopRunning asks run number gen to stop; false if it is not running.
func (m *Machine) stopRunning(gen uint64, force bool) bool {
	m.stopMu.Lock()
	defer m.stopMu.Unlock()
	if m.closed || !m.running.Load() || m.gen != gen {
		return false
	}
	m.interrupted.Store(true)
	C.rs_interrupt(m.c, cbool(force))
	return true
}

// AddBreakpoint arms a breakpoint at addr. Software and hardware
// breakpoints are the same mechanism (a code hook on that one address);
// hw only changes the reported reason. Adding one twice is harmless.
func (m *Machine) AddBreakpoint(addr uint64, hw bool) error {
	if err := m.check(); err != nil {
		return err
	}
	if e := C.rs_bp_set(m.c, C.uint64_t(addr), cbool(hw), 1); e != C.UC_ERR_OK {
		return ucErr(fmt.Sprintf("breakpoint %#x", addr), e)
	}
	return nil
}

// RemoveBreakpoint disarms a breakpoint. Removing one that is not set is
// an error.
func (m *Machine) RemoveBreakpoint(addr uint64, hw bool) error {
	if err := m.check(); err != nil {
		return err
	}
	if e := C.rs_bp_set(m.c, C.uint64_t(addr), cbool(hw), 0); e != C.UC_ERR_OK {
		return ucErr(fmt.Sprintf("remove breakpoint %#x: not set", addr), e)
	}
	return nil
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func checkWatch(addr uint64, size int, kind WatchKind) error {
	if size <= 0 || size > 1<<20 {
		return fmt.Errorf("unicorn: watchpoint %#x: bad size %d", addr, size)
	}
	if addr+uint64(size) < addr {
		return fmt.Errorf("unicorn: watchpoint %#x+%d wraps around", addr, size)
	}
	if kind > WatchAccess {
		return fmt.Errorf("unicorn: watchpoint %#x: bad kind %d", addr, kind)
	}
	return nil
}

// AddWatchpoint stops execution after an instruction that accesses
// [addr, addr+size) the way kind says. A write watchpoint costs nothing
// until its page is written; read and access watchpoints slow execution
// while they exist (see doc.go).
func (m *Machine) AddWatchpoint(addr uint64, size int, kind WatchKind) error {
	if err := m.check(); err != nil {
		return err
	}
	if err := checkWatch(addr, size, kind); err != nil {
		return err
	}
	op := fmt.Sprintf("watchpoint %#x", addr)
	if kind == WatchWrite {
		if err := m.openTwin(); err != nil {
			return err
		}
		return ucErr(op, C.rs_pwatch_add(m.c, C.uint64_t(addr), C.uint64_t(size)))
	}
	return ucErr(op, C.rs_watch_add(m.c, C.uint64_t(addr), C.uint64_t(size), C.int(kind)+1))
}

// RemoveWatchpoint removes a watchpoint added with the same arguments.
func (m *Machine) RemoveWatchpoint(addr uint64, size int, kind WatchKind) error {
	if err := m.check(); err != nil {
		return err
	}
	if err := checkWatch(addr, size, kind); err != nil {
		return err
	}
	op := fmt.Sprintf("remove watchpoint %#x", addr)
	if kind == WatchWrite {
		return ucErr(op, C.rs_pwatch_remove(m.c, C.uint64_t(addr), C.uint64_t(size)))
	}
	return ucErr(op, C.rs_watch_remove(m.c, C.uint64_t(addr), C.uint64_t(size), C.int(kind)+1))
}

// openTwin starts the engine that runs the instructions that write to
// pages of write watchpoints (watch.c), over the same host memory.
func (m *Machine) openTwin() error {
	if m.twin {
		return nil
	}
	if e := C.rs_twin_open(m.c); e != C.UC_ERR_OK {
		return ucErr("open twin engine", e)
	}
	for _, r := range m.regions {
		if e := C.rs_twin_map(m.c, C.uint64_t(r.start), C.uint64_t(r.end-r.start), ucPerm(r.perm), r.host); e != C.UC_ERR_OK {
			return ucErr(fmt.Sprintf("twin map %#x", r.start), e)
		}
	}
	m.twin = true
	return nil
}

// WatchStats counts the work of write watchpoints since the machine
// started (tests and benchmarks).
type WatchStats struct {
	Faults   uint64 // writes to protected pages, each run by the twin
	Hits     uint64 // of which wrote a watched byte
	Flushes  uint64 // TLB flushes (protection added)
	Released uint64 // pages whose protection was lifted
	Demoted  uint64 // watchpoints moved to hook mode (their page was written too often)
	Pages    int    // pages protected now

	// Fault paging (SetFaultPaging).
	PageFaults uint64 // exact faults stopped by paging (page faults outside protected pages)
	Stale      uint64 // of which libunicorn allowed the access (stale tables)
	Overflows  uint64 // times the map needed too many table pages
	Probes     uint64 // page faults libunicorn raised outside runs (its code lookups), cleared
	Tables     int    // table pages the last build used
}

// WatchStats returns the write watchpoints' counters.
func (m *Machine) WatchStats() WatchStats {
	if m.check() != nil {
		return WatchStats{}
	}
	s := C.rs_watch_stats(m.c)
	return WatchStats{Faults: uint64(s.faults), Hits: uint64(s.hits), Flushes: uint64(s.flushes),
		Released: uint64(s.released), Demoted: uint64(s.demoted), Pages: int(s.pages),
		PageFaults: uint64(s.pfaults), Stale: uint64(s.stale), Overflows: uint64(s.overflows), Probes: uint64(s.probes), Tables: int(s.tables)}
}

// AddTrapRange makes execution of any instruction in [start, end) stop
// before it with StopTrap. Unlike a breakpoint, a trap is not skipped when
// execution resumes on it: the handler must move RIP away.
func (m *Machine) AddTrapRange(start, end uint64) error { return m.addTrap(start, end, false) }

// AddHaltTrapRange makes a hlt instruction executed in [start, end) stop
// with StopTrap, PC on the hlt (other instructions there run as usual).
// Unlike AddTrapRange it compiles no code hook into the guest's blocks, and
// each trap ends a run by itself, where Interrupt finds it (rs_interrupt in
// machine.c: with a code hook, a run stopped from outside may report an
// earlier block's RIP). The synthesized userland's API stubs begin with
// hlt for this.
func (m *Machine) AddHaltTrapRange(start, end uint64) error { return m.addTrap(start, end, true) }

func (m *Machine) addTrap(start, end uint64, halt bool) error {
	if err := m.check(); err != nil {
		return err
	}
	if end <= start {
		return fmt.Errorf("unicorn: trap range [%#x, %#x) is empty", start, end)
	}
	return ucErr(fmt.Sprintf("trap range %#x", start), C.rs_trap_add(m.c, C.uint64_t(start), C.uint64_t(end), cbool(halt)))
}

// SetShadowFrames replaces the shadow call stack (a guest scheduler
// keeps one per thread and swaps them when it switches threads). Frames
// beyond the stack's capacity keep the newest. A no-op while the shadow
// stack is off.
func (m *Machine) SetShadowFrames(frames []ShadowFrame) {
	if m.check() != nil || !m.shadow || m.c.frames == nil {
		return
	}
	capf := int(m.c.capframes)
	if len(frames) > capf {
		frames = frames[len(frames)-capf:]
	}
	dst := unsafe.Slice(m.c.frames, capf)
	for i, f := range frames {
		dst[i] = C.rs_frame{call_site: C.uint64_t(f.CallSite), target: C.uint64_t(f.Target), ret: C.uint64_t(f.ReturnAddress), sp: C.uint64_t(f.SP)}
	}
	m.c.nframes = C.int(len(frames))
	// The next block starts a new thread's run: nothing to infer from the
	// block before it.
	m.c.prev_block, m.c.prev_block_end, m.c.prev_rsp = 0, 0, 0
}

// SetSyscallHandler installs fn as the server of `syscall` instructions
// met during Run: the C hook calls it (one cgo callback per system call,
// never per instruction); fn reads and writes registers and memory
// through the Machine, and returns true when it served the call (the run
// goes on after the instruction) or false to stop the run with
// StopSyscall as without a handler (what it wrote stays). Inside fn the
// general registers, RIP (past the instruction) and RFLAGS come from a
// copy the hook made and a RAX write is applied when fn returns, so the
// usual call costs no further cgo call; memory is a plain copy
// (hostmem.go). fn must not map, unmap or protect memory, nor move RIP:
// those need the stop. Steps never call it. nil removes the handler.
func (m *Machine) SetSyscallHandler(fn func() bool) {
	if m.check() != nil {
		return
	}
	m.syscallFn = fn
	if fn != nil {
		m.c.go_syscall = C.uintptr_t(m.handle)
	} else {
		m.c.go_syscall = 0
	}
}

// SetQuantum makes every Run stop with StopQuantum after the guest has
// entered blocks translation blocks (a deterministic time slice for a
// guest scheduler); 0 turns it off. While on, every block start calls a C
// hook (no Go). Turning it on or off drops the translated code.
func (m *Machine) SetQuantum(blocks int64) error {
	if err := m.check(); err != nil {
		return err
	}
	if blocks == m.quantum {
		return nil
	}
	m.quantum = blocks
	return ucErr("set quantum", C.rs_set_quantum(m.c, C.int64_t(blocks)))
}

// Block is an executed basic block (a translation block: it may span
// what a disassembler would call several, up to the next branch).
type Block struct {
	Addr uint64
	Size uint32
}

// SetCoverage records every translation block the guest executes, from
// now on (a C block hook; no Go per block). Turning it on or off drops
// the translated code. At most 2^20 distinct blocks are kept.
func (m *Machine) SetCoverage(on bool) error {
	if err := m.check(); err != nil {
		return err
	}
	return ucErr("set coverage", C.rs_set_coverage(m.c, cbool(on)))
}

// Coverage returns the blocks executed while coverage was on, sorted by
// address, and whether some were lost to the bound.
func (m *Machine) Coverage() (blocks []Block, lost bool) {
	if m.check() != nil {
		return nil, false
	}
	n := uint64(C.rs_coverage(m.c, nil, 0))
	if n == 0 {
		return nil, m.c.cov_full != 0
	}
	buf := make([]C.rs_cov_entry, n)
	n = min(n, uint64(C.rs_coverage(m.c, &buf[0], C.uint64_t(n))))
	blocks = make([]Block, n)
	for i := range blocks {
		blocks[i] = Block{Addr: uint64(buf[i].addr), Size: uint32(buf[i].size)}
	}
	sort.Slice(blocks, func(i, j int) bool { return blocks[i].Addr < blocks[j].Addr })
	return blocks, m.c.cov_full != 0
}

// InstrumentedBlocks is how many translation blocks were translated again
// with sync points (see doc.go) since New.
func (m *Machine) InstrumentedBlocks() uint64 {
	if m.check() != nil {
		return 0
	}
	return uint64(m.c.instrumented)
}

// TranslationAborts is how many times libunicorn's translator aborted
// (and was left, see doc.go) since New.
func (m *Machine) TranslationAborts() uint64 {
	if m.check() != nil {
		return 0
	}
	return uint64(m.c.aborts)
}

// SetShadowStack switches the shadow call stack on (empty) or off.
func (m *Machine) SetShadowStack(on bool) {
	if m.check() != nil || on == m.shadow {
		return
	}
	if C.rs_shadow_enable(m.c, cbool(on)) == C.UC_ERR_OK {
		m.shadow = on
	}
}

// ShadowStack returns the shadow call stack, outermost call first. It is
// nil when the shadow stack is off.
func (m *Machine) ShadowStack() []ShadowFrame {
	if m.check() != nil || !m.shadow {
		return nil
	}
	n := int(m.c.nframes)
	out := make([]ShadowFrame, n)
	if n > 0 {
		src := unsafe.Slice(m.c.frames, n)
		for i, f := range src {
			out[i] = ShadowFrame{CallSite: uint64(f.call_site), Target: uint64(f.target), ReturnAddress: uint64(f.ret), SP: uint64(f.sp)}
		}
	}
	return out
}

// SetExactFaults switches the block analysis on or off (see doc.go): on,
// every data fault stops at its exact instruction with exact registers,
// flags included, at the price of a code hook compiled into the blocks
// that need one (about 20 ns each time such an instruction runs; see
// BenchmarkSyncPoints) and of a call into Go per translated block. Off
// (the default) costs nothing, and a fault may be reported Inexact.
func (m *Machine) SetExactFaults(on bool) {
	if m.check() != nil || on == m.exact {
		return
	}
	if C.rs_exact_faults(m.c, cbool(on)) == C.UC_ERR_OK {
		m.exact = on
	}
}

// SetFaultPaging chooses how data faults are found (on by default). On,
// the guest runs with page tables that mirror the memory map (watch.c):
// an access to unmapped memory or a write to a read-only page raises a
// page fault before libunicorn sees it, which QEMU delivers with RIP, the
// registers and the flags restored to the faulting instruction, so every
// such fault stops with an exact PC and no decoding. It costs nothing on
// code that does not fault beyond the table walk of a TLB miss (see
// BenchmarkOverhead and the perf table). Off, Run decodes the faulting
// block (findFaultPC). A map needing more table pages than the reserved
// MiB holds turns it off by itself; FaultPaging tells.
func (m *Machine) SetFaultPaging(on bool) error {
	if err := m.check(); err != nil {
		return err
	}
	if on {
		if err := m.openTwin(); err != nil {
			return err
		}
	} else if !m.twin {
		return nil
	}
	return ucErr("fault paging", C.rs_exact_paging(m.c, cbool(on)))
}

// FaultPaging reports whether data faults are found by paging now.
func (m *Machine) FaultPaging() bool {
	return m.check() == nil && C.rs_exact_paging_state(m.c) != 0
}

// mapChanged brings the fault-paging tables up to date after a change of
// the memory map.
func (m *Machine) mapChanged() error {
	return ucErr("update page tables", C.rs_map_changed(m.c))
}

// SetPCSync chooses how the PC of a data fault is found. Off (the
// default), Run decodes the faulting translation block (see doc.go for
// the limits) and execution runs at full speed. On, a hidden memory hook
// makes libunicorn store RIP before every load and store, which gives
// exact fault PCs always but makes memory-heavy code several times slower.
func (m *Machine) SetPCSync(on bool) {
	if m.check() == nil && on != m.pcSync {
		if C.rs_set_sync(m.c, cbool(on)) == C.UC_ERR_OK {
			m.pcSync = on
		}
	}
}
