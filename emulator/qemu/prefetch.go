package qemu

import (
	"fmt"

	"github.com/rspstub/rspstub/rsp"
)

// Register prefetch. QEMU's stop replies carry no registers, so a
// debugger that wants them after a stop costs QEMU a `g` more. Waiting
// for that `g` before the stop reply would put QEMU's round trip and
// ours one after the other; instead, when the debugger read registers
// at the last stop (GDB does at every stop), the `g` goes to QEMU the
// moment QEMU reports the stop, the stop reply goes to the debugger
// without expedited registers (rsp.RegisterHolder says none are held
// yet), and QEMU answers the `g` while the debugger's own request
// crosses to us. The next call that takes the lock (lock) takes QEMU's
// answer into the register cache first, so the debugger's `g` or `p`
// is answered from it. A debugger that reads nothing after a stop (a
// plain step loop) costs QEMU nothing more. (The server's reads of a
// stop reply's expedited registers count as reads: a step right after
// a continue's stop prefetches once.)

// lock takes t.mu and completes a pending prefetch: every request to
// QEMU made under the lock then finds the connection free.
func (t *Target) lock() {
	t.mu.Lock()
	t.settle()
}

// takeRegsRead reports whether the debugger read registers since the
// last resume, and starts counting again.
func (t *Target) takeRegsRead() bool {
	r := t.regsRead
	t.regsRead = false
	return r
}

// prefetch sends a `g` for the thread that stopped when want says the
// debugger will ask for registers, QEMU needs no Hg first, and the
// cache does not already hold them (a continue's stop read the pc).
func (t *Target) prefetch(want bool, st rsp.Stop) {
	if !want || t.gone.Load() || t.pendingTID != 0 {
		return
	}
	if st.Kind == rsp.StopExited || st.Kind == rsp.StopTerminated {
		return
	}
	tid := st.Thread
	if tid <= 0 || tid != t.gsel || t.cacheValid(tid) {
		return
	}
	memAhead := t.mode == ModeSystem && t.aheadTID == tid
	if memAhead {
		// The g and the m go out in one write.
		t.c.HoldWrites(true)
		defer func() {
			if err := t.c.HoldWrites(false); err != nil {
				t.check(err)
				t.pendingTID, t.pendingMem = 0, false // nothing was sent
			}
		}()
	}
	if err := t.c.StartReadRegisters(); err != nil {
		t.check(err)
		return
	}
	t.pendingTID = tid
	// After a step, the code around the last stop's pc travels with
	// the registers: a step seldom leaves its block, and the debugger
	// reads the code at the new pc next (memcache.go). It is only read
	// from QEMU, to be kept if the new pc is on its page: one
	// instruction does not turn the page it ran from into a device's.
	// qemu-system only: qemu-user takes one request at a time.
	if !memAhead {
		return
	}
	if err := t.c.StartReadMemory(t.aheadPC&^(memBlock-1), memBlock); err != nil {
		t.check(err)
		return
	}
	t.pendingMem = true
}

// settle takes the reply to a prefetching `g` into the cache. A failed
// prefetch leaves the cache empty: the next read asks QEMU again.
func (t *Target) settle() {
	tid := t.pendingTID
	if tid == 0 {
		return
	}
	t.pendingTID = 0
	g, err := t.c.FinishReadRegisters()
	if t.pendingMem {
		// Its reply follows, whatever became of the registers'.
		t.pendingMem = false
		if n, merr := t.c.FinishReadMemory(t.mem.span[:memBlock]); merr == nil && n == memBlock {
			t.mem.put(t.aheadPC&^(memBlock-1), t.mem.span[:memBlock]) // no resume since prefetch
		} else if merr != nil {
			t.check(merr)
		}
	}
	if err != nil {
		t.log.Debug("qemu: prefetched registers", "err", t.check(fmt.Errorf("qemu: read registers: %w", err)))
		return
	}
	if len(t.cache) != t.desc.Size() {
		t.cache = make([]byte, t.desc.Size())
	}
	t.mapRegisters(t.cache, g)
	t.cacheTID = tid
}
