package wine

import (
	"fmt"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/arch"
)

// Exceptions are dispatched as Windows (and Wine's unix side, in
// setup_raise_exception) does it: the kernel writes a CONTEXT, a
// CONTEXT_EX and an EXCEPTION_RECORD below the faulting thread's stack
// pointer and resumes the thread at ntdll!KiUserExceptionDispatcher with
// RSP pointing at the CONTEXT. The PE ntdll then walks the handlers
// (vectored, then SEH frames through .pdata) and ends with NtContinue,
// or, when no handler takes the exception, NtRaiseException(second
// chance), which ends the process.
//
//	RSP+0x000  CONTEXT (0x4d0)
//	RSP+0x4d0  CONTEXT_EX (0x18), padding
//	RSP+0x4f0  EXCEPTION_RECORD (0x98)
//	RSP+0x588  alignment (8)
//	RSP+0x590  0x20 bytes of scratch, then the faulting frame

const (
	excLayoutSize = 0x590
	excRecOffset  = 0x4f0
	excStackSize  = excLayoutSize + 0x20
)

// Exception describes a hardware exception of the running thread.
type Exception struct {
	Code    uint32   // EXCEPTION_ACCESS_VIOLATION, EXCEPTION_BREAKPOINT...
	Address uint64   // the faulting instruction
	Params  []uint64 // ExceptionInformation (access violation: access kind, address)
	Vector  uint32   // the CPU exception vector, when no code above fits (for the description)
}

// Access kinds in an access violation's first parameter.
const (
	AccessRead    = 0
	AccessWrite   = 1
	AccessExecute = 8
)

// String describes the exception as a debugger shows it.
func (e Exception) String() string {
	switch e.Code {
	case EXCEPTION_ACCESS_VIOLATION:
		what := "read of"
		if len(e.Params) >= 2 {
			switch e.Params[0] {
			case AccessWrite:
				what = "write to"
			case AccessExecute:
				what = "execution of"
			}
			return fmt.Sprintf("access violation (0xc0000005): %s %#x at %#x", what, e.Params[1], e.Address)
		}
	case EXCEPTION_INT_DIVIDE_BY_ZERO:
		return fmt.Sprintf("integer divide by zero (0xc0000094) at %#x", e.Address)
	case EXCEPTION_ILLEGAL_INSTRUCTION:
		return fmt.Sprintf("illegal instruction (0xc000001d) at %#x", e.Address)
	case EXCEPTION_PRIV_INSTRUCTION:
		return fmt.Sprintf("privileged instruction (0xc0000096, CPU exception %d) at %#x", e.Vector, e.Address)
	case EXCEPTION_BREAKPOINT:
		return fmt.Sprintf("breakpoint (0x80000003) at %#x", e.Address)
	case EXCEPTION_STACK_OVERFLOW:
		return fmt.Sprintf("stack overflow (0xc00000fd) at %#x", e.Address)
	}
	return fmt.Sprintf("exception %#x at %#x", e.Code, e.Address)
}

// DispatchException delivers a hardware exception to the running
// thread's handlers: its registers (as the machine holds them, RIP at the
// faulting instruction) are saved for the handlers and it resumes in
// KiUserExceptionDispatcher. A stack with no room for the frame ends the
// process with the exception code, as Windows does.
func (p *Process) DispatchException(e Exception) (Event, error) {
	t := p.cur
	if t == nil {
		return Event{Kind: EventError, Description: "no running thread to take the exception"}, nil
	}
	if err := p.m.ReadContext(&t.ctx); err != nil {
		return Event{}, &vmError{"read context", err}
	}
	fault := t.ctx
	fault.RIP = e.Address
	return p.raise(t, e, &fault)
}

// raise builds the dispatcher frame for ctx (the context the handlers
// see) and resumes t in KiUserExceptionDispatcher.
func (p *Process) raise(t *Thread, e Exception, ctx *arch.Context) (Event, error) {
	sp := (ctx.GPR[arch.RSP] &^ 15) - excStackSize
	if sp < t.stackLimit-process.PageSize || sp > t.stackBase || sp < process.PageSize {
		p.exited, p.exitCode = true, e.Code
		return Event{Kind: EventExited, ExitCode: e.Code,
			Description: "no stack left to dispatch " + e.String()}, nil
	}
	b := make(memw, excLayoutSize)
	negCtx := uint32(0x1_0000_0000 - ctxSize)
	encodeContext(b, ctx, CONTEXT_ALL&^CONTEXT_DEBUG_REGISTERS)
	// CONTEXT_EX: Legacy and All cover the CONTEXT alone; no XState.
	b.u32(ctxSize+0, negCtx)     // All.Offset
	b.u32(ctxSize+4, ctxSize+24) // All.Length
	b.u32(ctxSize+8, negCtx)     // Legacy.Offset
	b.u32(ctxSize+12, ctxSize)   // Legacy.Length
	b.u32(ctxSize+16, 0)         // XState.Offset
	b.u32(ctxSize+20, 25)        // XState.Length
	r := b[excRecOffset:]
	memw(r).u32(erCode, e.Code)
	memw(r).u64(erAddress, e.Address)
	n := len(e.Params)
	if n > erMaxParams {
		n = erMaxParams
	}
	memw(r).u32(erNumParams, uint32(n))
	for i := 0; i < n; i++ {
		memw(r).u64(erInfo+8*i, e.Params[i])
	}
	if err := p.mem.Write(sp, b); err != nil {
		p.exited, p.exitCode = true, e.Code
		return Event{Kind: EventExited, ExitCode: e.Code,
			Description: "the stack cannot hold the exception frame for " + e.String()}, nil
	}
	next := *ctx
	next.GPR[arch.RSP] = sp
	next.RIP = p.ntdll.kiUserExceptionDispatcher
	next.RFLAGS &^= 0x100 | 0x400 | 0x40000 // TF, DF, AC
	t.ctx = next
	if t == p.cur {
		if err := p.m.WriteContext(&t.ctx); err != nil {
			return Event{}, &vmError{"write context", err}
		}
	}
	return Event{}, nil
}

// NtRaiseException(record, context, first_chance): a first-chance raise
// dispatches like a fault; a second chance means no handler took it: the
// process ends with the exception code (the integrator reports it first).
func ntRaiseException(p *Process, c *call) ntstatus {
	rec, ctxPtr, first := c.arg(0), c.arg(1), c.arg(2)&0xff != 0
	rb := c.bytes(rec, erSize)
	cb := c.bytes(ctxPtr, ctxSize)
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	e := Exception{Code: b32(memw(rb), erCode), Address: uint64(b32(memw(rb), erAddress)) | uint64(b32(memw(rb), erAddress+4))<<32}
	np := b32(memw(rb), erNumParams)
	if np > erMaxParams {
		np = erMaxParams
	}
	for i := uint32(0); i < np; i++ {
		off := erInfo + 8*int(i)
		e.Params = append(e.Params, uint64(b32(memw(rb), off))|uint64(b32(memw(rb), off+4))<<32)
	}
	c.note("code=%#x first=%v", e.Code, first)
	ctx := *c.regs
	decodeContext(cb, &ctx)
	if first {
		if _, err := p.raise(c.t, e, &ctx); err != nil {
			c.fail(err)
		}
		c.contextSet, c.keepRAX = true, true
		return STATUS_SUCCESS
	}
	p.unhandled = &e
	p.exited, p.exitCode = true, e.Code
	return STATUS_SUCCESS
}

// Unhandled returns the exception that ended the process, if one did.
func (p *Process) Unhandled() (Exception, bool) {
	if p.unhandled == nil {
		return Exception{}, false
	}
	return *p.unhandled, true
}
