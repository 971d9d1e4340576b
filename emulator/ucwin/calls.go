package ucwin

import (
	"github.com/rspstub/rspstub/emulator/unicorn"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/rsp"
)

// Inferior function calls. GDB calls a guest function by pushing a
// return address it owns (on x64 Windows, on the stack: `Z0,2ffdaf,1`),
// setting the pc, and resuming; the call is over when that breakpoint is
// hit. The stack is not executable, so the return is a fetch fault, not
// a code hook: a fetch fault at an inserted breakpoint is reported as
// that breakpoint. LLDB's expression evaluator needs memory of its own
// for JIT code and data: _M/_m (rsp.MemoryAllocator).

// breakpointFetch turns a fetch fault at an inserted breakpoint into its
// hit.
func (t *Target) breakpointFetch(us unicorn.Stop) (rsp.Stop, bool) {
	if us.Reason != unicorn.StopFault || us.Access&arch.PermExec == 0 {
		return rsp.Stop{}, false
	}
	kind, ok := t.breakAt(us.Addr)
	if !ok {
		return rsp.Stop{}, false
	}
	return t.stop(kind, rsp.SIGTRAP), true
}

// AllocateMemory implements rsp.MemoryAllocator.
func (t *Target) AllocateMemory(size uint64, perm rsp.Perm) (uint64, error) {
	var p arch.Perm
	if perm&rsp.PermRead != 0 {
		p |= arch.PermRead
	}
	if perm&rsp.PermWrite != 0 {
		p |= arch.PermWrite
	}
	if perm&rsp.PermExec != 0 {
		p |= arch.PermExec
	}
	if t.wine != nil {
		return t.wine.Allocate(size, p)
	}
	return t.proc.Allocate(size, p)
}

// FreeMemory implements rsp.MemoryAllocator.
func (t *Target) FreeMemory(addr uint64) error {
	if t.wine != nil {
		return t.wine.Free(addr)
	}
	return t.proc.Free(addr)
}
