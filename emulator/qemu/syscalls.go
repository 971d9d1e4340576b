package qemu

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/rspstub/rspstub/guest/winproc"
	"github.com/rspstub/rspstub/internal/elfmem"
	"github.com/rspstub/rspstub/rsp"
)

// Catching system calls (GDB's `catch syscall`, QCatchSyscalls) in
// qemu-user, whose gdbstub (7.2) cannot. Every `syscall` instruction of
// the program's ELF modules gets a QEMU breakpoint: the executable
// PT_LOAD segments are scanned for the bytes 0f 05. A match that is not
// an instruction start costs nothing, because a QEMU breakpoint is a
// match of the next instruction's address, not a patched byte. A stop at
// one is a system call entry (its number in rax); the next resume steps
// over the instruction and reports the return. The sites are found again
// when the module list changes (dlopen). Code generated at run time (a
// JIT) is not scanned, and while watchpoints are emulated by stepping
// system calls are not caught.

// syscallInsn is the encoding of `syscall`.
var syscallInsn = []byte{0x0f, 0x05}

// maxSyscallSites bounds the breakpoints placed for catching.
const maxSyscallSites = 16384

// syscallCatch is the catching state.
type syscallCatch struct {
	on      bool
	only    map[int]bool    // nil: every system call
	sites   map[uint64]bool // syscall instructions holding a QEMU breakpoint
	sig     string          // the module list the sites were found for
	pending bool            // an entry was reported: the next resume reports the return
	nr      int             // its number
}

// CatchSyscalls implements rsp.SyscallCatcher.
func (t *Target) CatchSyscalls(on bool, nums []int) error {
	t.lock()
	defer t.mu.Unlock()
	if t.mode != ModeUser {
		return errors.New("qemu: system calls are caught only in qemu-user")
	}
	if t.gone.Load() {
		return ErrGone
	}
	t.sc.on = on
	t.sc.only = nil
	if nums != nil {
		t.sc.only = make(map[int]bool, len(nums))
		for _, n := range nums {
			t.sc.only[n] = true
		}
	}
	// GDB turns catching off at every stop (it removes its breakpoints
	// and catchpoints) and on again before it resumes: the breakpoints
	// and a reported entry stay until a resume finds catching off
	// (endCatch).
	return nil
}

// endCatch removes the catch breakpoints once a resume finds catching
// off (the catchpoint was deleted).
func (t *Target) endCatch() {
	t.sc.pending = false
	if len(t.sc.sites) > 0 {
		if err := t.setSites(nil); err != nil {
			t.log.Debug("catch syscall: removing breakpoints", "err", err)
		}
	}
}

// setSites makes the QEMU breakpoints of the catch exactly want.
func (t *Target) setSites(want map[uint64]bool) error {
	var firstErr error
	for a := range t.sc.sites {
		if !want[a] {
			if err := t.c.RemoveBreakpoint(rsp.BreakSoftware, a, 1); err != nil && firstErr == nil {
				firstErr = t.check(err)
			}
			delete(t.sc.sites, a)
		}
	}
	if t.sc.sites == nil {
		t.sc.sites = map[uint64]bool{}
	}
	for a := range want {
		if !t.sc.sites[a] {
			if err := t.c.SetBreakpoint(rsp.BreakSoftware, a, 1); err != nil {
				if firstErr == nil {
					firstErr = t.check(err)
				}
				continue
			}
			t.sc.sites[a] = true
		}
	}
	if len(want) == 0 {
		t.sc.sig = ""
	}
	return firstErr
}

// syncSites finds the syscall instructions of the modules again when the
// module list changed.
func (t *Target) syncSites() error {
	d := t.discover(0, false)
	sig := modulesSig(d.mods)
	if sig == t.sc.sig && t.sc.sites != nil {
		return nil
	}
	want := t.scanSyscalls(d.mods, maxSyscallSites)
	t.sc.sig = sig
	return t.setSites(want)
}

// scanSyscalls finds up to max `syscall` byte pairs in the executable
// segments of the ELF modules mods.
func (t *Target) scanSyscalls(mods []winproc.Module, max int) map[uint64]bool {
	want := map[uint64]bool{}
	mem := memOf{t}
	buf := make([]byte, 64<<10)
	for _, m := range mods {
		img, err := elfmem.Load(mem, m.Base)
		if err != nil {
			continue // not an ELF image in memory (the module list says why)
		}
		for _, p := range img.Progs {
			if p.Type != elfmem.PT_LOAD || p.Flags&1 == 0 || p.Filesz == 0 {
				continue
			}
			start, end := img.Bias+p.Vaddr, img.Bias+p.Vaddr+p.Filesz
			for a := start; a < end && len(want) < max; {
				n := min(uint64(len(buf)), end-a)
				got, _ := t.readMemory(a, buf[:n])
				if got <= 0 {
					break
				}
				chunk := buf[:got]
				for i := 0; ; {
					j := bytes.Index(chunk[i:], syscallInsn)
					if j < 0 {
						break
					}
					want[a+uint64(i+j)] = true
					i += j + 1
				}
				// A pair split between chunks: step back one byte.
				if uint64(got) == n && a+uint64(got) < end {
					a += uint64(got) - 1
				} else {
					a += uint64(got)
				}
			}
		}
	}
	return want
}

// stepOver runs the `syscall` instruction thread tid is stopped on,
// and nothing after it. A single step will not do: qemu-user's step over
// a system call runs the next instruction too (a step from
// `syscall; mov (%rsp),%rax` stops after the mov). So a breakpoint goes
// right after the instruction and the thread continues to it; a catch
// breakpoint at the instruction itself is lifted meanwhile (QEMU would
// stop at it again without running it).
func (t *Target) stepOver(tid int) (rsp.Stop, error) {
	pc, err := t.reg64(tid, t.desc.PC)
	if err != nil {
		return rsp.Stop{}, err
	}
	lifted := t.sc.sites[pc]
	if lifted {
		if err := t.c.RemoveBreakpoint(rsp.BreakSoftware, pc, 1); err != nil {
			return rsp.Stop{}, t.check(err)
		}
	}
	next := pc + uint64(len(syscallInsn))
	if err := t.c.SetBreakpoint(rsp.BreakSoftware, next, 1); err != nil {
		return rsp.Stop{}, t.check(err)
	}
	a := []rsp.ResumeAction{{Thread: rsp.AllThreads}}
	st, err := t.resumeOnce(a)
	if !t.gone.Load() {
		if e := t.c.RemoveBreakpoint(rsp.BreakSoftware, next, 1); e != nil && err == nil {
			err = t.check(e)
		}
		if lifted {
			if e := t.c.SetBreakpoint(rsp.BreakSoftware, pc, 1); e != nil && err == nil {
				err = t.check(e)
			}
		}
	}
	return st, err
}

// catchResume is resume while system calls are caught.
func (t *Target) catchResume(actions []rsp.ResumeAction) (rsp.Stop, error) {
	step := true
	tid := t.last.Thread
	for _, a := range actions {
		step = step && a.Step
		if a.Thread > 0 {
			tid = a.Thread
		}
	}
	if t.sc.pending {
		// The entry was reported: run the instruction, report the return.
		t.sc.pending = false
		st, err := t.stepOver(tid)
		if err != nil || st.Kind != rsp.StopSignal || st.Signal != rsp.SIGTRAP {
			return st, err
		}
		st.Kind, st.Syscall = rsp.StopSyscallReturn, t.sc.nr
		t.last = st
		return st, nil
	}
	if err := t.syncSites(); err != nil {
		t.log.Debug("catch syscall: placing breakpoints", "err", err)
	}
	for i := 0; i < maxSoftSteps; i++ {
		if pc, err := t.reg64(tid, t.desc.PC); err == nil && t.sc.sites[pc] {
			// Resuming on a catch breakpoint (a step brought us here):
			// run it without reporting its entry.
			st, err := t.stepOver(tid)
			if err != nil || st.Kind != rsp.StopSignal || st.Signal != rsp.SIGTRAP || step {
				return st, err
			}
		}
		st, err := t.resumeOnce(actions)
		if err != nil || st.Kind != rsp.StopSignal || st.Signal != rsp.SIGTRAP || step {
			return st, err
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
		if !t.sc.sites[pc] {
			return st, nil
		}
		nr, err := t.reg64(st.Thread, rsp.AMD64RAX)
		if err != nil {
			return st, err
		}
		if t.sc.only == nil || t.sc.only[int(nr)] {
			t.sc.pending, t.sc.nr = true, int(nr)
			st.Kind, st.Syscall = rsp.StopSyscallEntry, int(nr)
			t.last = st
			return st, nil
		}
		if t.interrupted.Load() {
			st.Signal = rsp.SIGINT
			t.last = st
			return st, nil
		}
		tid = st.Thread
	}
	st := t.last
	st.Description = fmt.Sprintf("rspstub: %d system calls skipped without a stop", maxSoftSteps)
	return st, nil
}
