package guest

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/unwind"
)

// Structured exception handling for exceptions raised by software
// (RaiseException, and through it C++ throw in mingw and MSVC programs).
// The dispatcher walks the guest stack with the .pdata unwinder of
// unwind/, calls each frame's language handler as guest code (a
// continuation trap, like every callback), and RtlUnwindEx walks again
// calling the handlers for unwinding before it restores the target frame's
// context. Only integer registers are restored: the Machine interface has
// no XMM access, so nonvolatile XMM registers keep their current values.

// x64 CONTEXT, EXCEPTION_RECORD and DISPATCHER_CONTEXT offsets.
const (
	ctxContextFlags = 0x30
	ctxMxCsr        = 0x34
	ctxEFlags       = 0x44
	ctxRax          = 0x78 // then RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8-R15 (arch order)
	ctxRip          = 0xF8
	ctxSize         = 0x4D0

	excCode    = 0x00
	excFlags   = 0x04
	excRecord  = 0x08
	excAddress = 0x10
	excNParams = 0x18
	excInfo    = 0x20
	excSize    = 0x98

	dcControlPc        = 0x00
	dcImageBase        = 0x08
	dcFunctionEntry    = 0x10
	dcEstablisherFrame = 0x18
	dcTargetIp         = 0x20
	dcContextRecord    = 0x28
	dcLanguageHandler  = 0x30
	dcHandlerData      = 0x38
	dcHistoryTable     = 0x40
	dcScopeIndex       = 0x48
	dcSize             = 0x50

	exceptionNonContinuable = 0x01
	exceptionUnwinding      = 0x02
	exceptionTargetUnwind   = 0x20

	contextFull = 0x10000B // CONTEXT_AMD64 | CONTROL | INTEGER | FLOATING_POINT

	maxDispatchFrames = 1024
)

type unwindMem struct{ p *Process }

func (u unwindMem) ReadMemory(addr uint64, b []byte) (int, error) { return u.p.m.ReadMemory(addr, b) }

func (p *Process) unwinder() *unwind.Unwinder {
	var mods []unwind.Module
	for _, m := range p.modules {
		mods = append(mods, unwind.Module{Name: m.Name, Base: m.Base, Size: m.Size})
	}
	return unwind.New(unwindMem{p}, mods)
}

// callerContext is the context of the API's caller right after the call
// returns: live registers, RIP = return address, RSP above it.
func (c *call) callerContext() (unwind.Context, error) {
	var ctx unwind.Context
	for r := arch.RAX; r <= arch.R15; r++ {
		v, err := c.p.m.Reg(r)
		if err != nil {
			return ctx, err
		}
		ctx.Set(r, v)
	}
	ra, err := c.p.mem.ReadU64(c.rsp)
	if err != nil {
		return ctx, err
	}
	ctx.Set(arch.RSP, c.rsp+8)
	ctx.Set(arch.RIP, ra)
	return ctx, nil
}

func (p *Process) writeContext(addr uint64, ctx *unwind.Context) error {
	b := make([]byte, ctxSize)
	le := binary.LittleEndian
	le.PutUint32(b[ctxContextFlags:], contextFull)
	le.PutUint32(b[ctxMxCsr:], 0x1F80)
	fl, _ := p.m.Reg(arch.RFLAGS)
	le.PutUint32(b[ctxEFlags:], uint32(fl))
	for r := 0; r < 16; r++ {
		le.PutUint64(b[ctxRax+8*r:], ctx.GPR[r])
	}
	le.PutUint64(b[ctxRip:], ctx.RIP)
	return p.mem.Write(addr, b)
}

func (p *Process) readContext(addr uint64) (unwind.Context, error) {
	var ctx unwind.Context
	b := make([]byte, ctxRip+8)
	if err := p.mem.Read(addr, b); err != nil {
		return ctx, err
	}
	for r := arch.RAX; r <= arch.R15; r++ {
		ctx.Set(r, binary.LittleEndian.Uint64(b[ctxRax+8*int(r):]))
	}
	ctx.Set(arch.RIP, binary.LittleEndian.Uint64(b[ctxRip:]))
	return ctx, nil
}

// jumpTo makes the guest continue in ctx and drops the callbacks whose
// frames that discards.
func (c *call) jumpTo(ctx unwind.Context) error {
	p := c.p
	for r := arch.RAX; r <= arch.R15; r++ {
		if r == arch.RSP {
			continue
		}
		if err := p.m.SetReg(r, ctx.GPR[r]); err != nil {
			return err
		}
	}
	sp := ctx.GPR[arch.RSP]
	k := len(p.conts)
	for k > 0 && p.conts[k-1].apiRSP < sp {
		k--
	}
	p.conts = p.conts[:k]
	c.jumped, c.jumpRIP, c.jumpRSP = true, ctx.RIP, sp
	return nil
}

// frameHandler describes the language handler of the frame at ctx, and
// returns the caller's context.
type frameHandler struct {
	handler, data, entry, imageBase, establisher uint64
	flags                                        uint8
}

func (p *Process) stepFrame(u *unwind.Unwinder, ctx unwind.Context) (unwind.Context, frameHandler, error) {
	next := ctx
	info, err := u.Step(&next, 0)
	if err != nil {
		return next, frameHandler{}, err
	}
	fh := frameHandler{establisher: info.EstablisherFrame, flags: info.HandlerFlags}
	if info.Leaf || info.Function.Image == nil {
		return next, frameHandler{establisher: info.EstablisherFrame}, nil
	}
	img := info.Function.Image
	fh.imageBase = img.Base
	fns := img.Functions
	i := sort.Search(len(fns), func(i int) bool { return fns[i].BeginAddress >= info.Function.BeginAddress })
	if i < len(fns) && fns[i].BeginAddress == info.Function.BeginAddress {
		fh.entry = img.Base + uint64(img.ExceptionRVA) + 12*uint64(i)
	}
	if info.HandlerRVA != 0 {
		fh.handler = img.Base + uint64(info.HandlerRVA)
		if ui, err := img.UnwindInfo(unwindMem{p}, info.Function.UnwindData); err == nil {
			fh.data = img.Base + uint64(ui.HandlerDataRVA)
		}
	}
	return next, fh, nil
}

type sehState struct {
	u                *unwind.Unwinder
	rec, ctxRec, dc  uint64
	code             uint32
	targetFrame, tip uint64
	retVal           uint64
	unwinding        bool
}

func (p *Process) newSEHState() (*sehState, error) {
	s := &sehState{u: p.unwinder()}
	var err error
	if s.ctxRec, err = p.heap.alloc(ctxSize, true); err != nil || s.ctxRec == 0 {
		return nil, fmt.Errorf("no memory for CONTEXT: %v", err)
	}
	if s.dc, err = p.heap.alloc(dcSize, true); err != nil || s.dc == 0 {
		return nil, fmt.Errorf("no memory for DISPATCHER_CONTEXT: %v", err)
	}
	return s, nil
}

func (c *call) writeDispatcherContext(s *sehState, ctx *unwind.Context, fh frameHandler) {
	b := make([]byte, dcSize)
	le := binary.LittleEndian
	le.PutUint64(b[dcControlPc:], ctx.RIP)
	le.PutUint64(b[dcImageBase:], fh.imageBase)
	le.PutUint64(b[dcFunctionEntry:], fh.entry)
	le.PutUint64(b[dcEstablisherFrame:], fh.establisher)
	le.PutUint64(b[dcTargetIp:], s.tip)
	le.PutUint64(b[dcContextRecord:], s.ctxRec)
	le.PutUint64(b[dcLanguageHandler:], fh.handler)
	le.PutUint64(b[dcHandlerData:], fh.data)
	c.wbytes(s.dc, b)
	if err := c.p.writeContext(s.ctxRec, ctx); err != nil && c.err == nil {
		c.err = err
	}
}

// raiseException: RaiseException(code, flags, nargs, args).
func raiseException(c *call) error {
	p := c.p
	code, flags, n, args := uint32(c.arg(0)), uint32(c.arg(1)), c.arg(2), c.arg(3)
	if n > 15 {
		n = 15
	}
	s, err := p.newSEHState()
	if err != nil {
		return err
	}
	s.code = code
	ctx, err := c.callerContext()
	if err != nil {
		return err
	}
	b := make([]byte, excSize)
	le := binary.LittleEndian
	le.PutUint32(b[excCode:], code)
	le.PutUint32(b[excFlags:], flags&exceptionNonContinuable)
	le.PutUint64(b[excAddress:], ctx.RIP)
	le.PutUint32(b[excNParams:], uint32(n))
	if n > 0 && args != 0 {
		copy(b[excInfo:], c.rbytes(args, 8*n))
	}
	if s.rec, err = p.heap.allocBytes(b); err != nil {
		return err
	}
	p.log.Debug("RaiseException", "code", fmt.Sprintf("%#x", code), "at", fmt.Sprintf("%#x", ctx.RIP))
	return c.dispatchException(s, ctx, 0)
}

func (c *call) dispatchException(s *sehState, ctx unwind.Context, depth int) error {
	for ; depth < maxDispatchFrames; depth++ {
		if ctx.RIP == 0 {
			break
		}
		next, fh, err := c.p.stepFrame(s.u, ctx)
		if err != nil {
			c.p.log.Info("exception dispatch stopped", "err", err)
			break
		}
		if fh.handler != 0 && fh.flags&unwind.UNW_FLAG_EHANDLER != 0 {
			c.writeDispatcherContext(s, &ctx, fh)
			d := depth
			return c.callGuest(fh.handler, []uint64{s.rec, fh.establisher, s.ctxRec, s.dc}, func(c *call, ret uint64) error {
				switch uint32(ret) {
				case 1: // ExceptionContinueSearch
					return c.dispatchException(s, next, d+1)
				case 0: // ExceptionContinueExecution
					nctx, err := c.p.readContext(s.ctxRec)
					if err != nil {
						return err
					}
					return c.jumpTo(nctx)
				}
				return fmt.Errorf("exception handler %#x returned disposition %d", fh.handler, uint32(ret))
			})
		}
		ctx = next
	}
	// Unhandled: the process ends with the exception code, as it does
	// after Windows' default unhandled-exception processing.
	c.p.log.Info("unhandled exception", "code", fmt.Sprintf("%#x", s.code))
	fmt.Fprintf(c.p.cfg.Stderr, "unhandled exception %#x\n", s.code)
	return c.exit(int(int32(s.code)))
}

// rtlUnwindEx: RtlUnwindEx(TargetFrame, TargetIp, ExceptionRecord,
// ReturnValue, ContextRecord, HistoryTable).
func rtlUnwindEx(c *call) error {
	p := c.p
	s, err := p.newSEHState()
	if err != nil {
		return err
	}
	s.targetFrame, s.tip, s.rec, s.retVal, s.unwinding = c.arg(0), c.arg(1), c.arg(2), c.arg(3), true
	if s.rec == 0 {
		b := make([]byte, excSize)
		binary.LittleEndian.PutUint32(b, 0xC0000027) // STATUS_UNWIND
		if s.rec, err = p.heap.allocBytes(b); err != nil {
			return err
		}
	}
	ctx, err := c.callerContext()
	if err != nil {
		return err
	}
	return c.unwindFrames(s, ctx, 0)
}

func (c *call) unwindFrames(s *sehState, ctx unwind.Context, depth int) error {
	p := c.p
	for ; depth < maxDispatchFrames && ctx.RIP != 0; depth++ {
		next, fh, err := p.stepFrame(s.u, ctx)
		if err != nil {
			return fmt.Errorf("RtlUnwindEx: %w", err)
		}
		target := fh.establisher == s.targetFrame
		flags, err := p.mem.ReadU32(s.rec + excFlags)
		if err != nil {
			return err
		}
		flags |= exceptionUnwinding
		if target {
			flags |= exceptionTargetUnwind
		}
		if err := p.mem.WriteU32(s.rec+excFlags, flags); err != nil {
			return err
		}
		if fh.handler != 0 && fh.flags&unwind.UNW_FLAG_UHANDLER != 0 {
			c.writeDispatcherContext(s, &ctx, fh)
			d := depth
			return c.callGuest(fh.handler, []uint64{s.rec, fh.establisher, s.ctxRec, s.dc}, func(c *call, ret uint64) error {
				if target {
					final, err := c.p.readContext(s.ctxRec)
					if err != nil {
						return err
					}
					return c.finishUnwind(s, final)
				}
				return c.unwindFrames(s, next, d+1)
			})
		}
		if target {
			return c.finishUnwind(s, ctx)
		}
		ctx = next
	}
	return fmt.Errorf("RtlUnwindEx: target frame %#x not found", s.targetFrame)
}

func (c *call) finishUnwind(s *sehState, ctx unwind.Context) error {
	ctx.Set(arch.RAX, s.retVal)
	ctx.Set(arch.RIP, s.tip)
	return c.jumpTo(ctx)
}

// rtlCaptureContext: RtlCaptureContext(CONTEXT*), the caller's context.
func rtlCaptureContext(c *call) error {
	ctx, err := c.callerContext()
	if err != nil {
		return err
	}
	if err := c.p.writeContext(c.arg(0), &ctx); err != nil {
		return err
	}
	return c.ret(0)
}

// rtlLookupFunctionEntry: (ControlPc, *ImageBase, HistoryTable).
func rtlLookupFunctionEntry(c *call) error {
	u := c.p.unwinder()
	fe, found, err := u.LookupFunctionEntry(c.arg(0))
	if err != nil || !found {
		return c.ret(0)
	}
	img := fe.Image
	fns := img.Functions
	i := sort.Search(len(fns), func(i int) bool { return fns[i].BeginAddress >= fe.BeginAddress })
	if i >= len(fns) || fns[i].BeginAddress != fe.BeginAddress {
		return c.ret(0)
	}
	c.w64(c.arg(1), img.Base)
	return c.ret(img.Base + uint64(img.ExceptionRVA) + 12*uint64(i))
}

// rtlVirtualUnwind: (HandlerType, ImageBase, ControlPc, FunctionEntry,
// ContextRecord, *HandlerData, *EstablisherFrame, ContextPointers).
func rtlVirtualUnwind(c *call) error {
	p := c.p
	ctxAddr := c.arg(4)
	ctx, err := p.readContext(ctxAddr)
	if err != nil {
		return err
	}
	ctx.Set(arch.RIP, c.arg(2))
	next, fh, err := p.stepFrame(p.unwinder(), ctx)
	if err != nil {
		return err
	}
	c.w64(c.arg(6), fh.establisher)
	c.w64(c.arg(5), fh.data)
	if err := p.writeContext(ctxAddr, &next); err != nil {
		return err
	}
	if fh.handler != 0 && uint64(fh.flags)&c.arg(0) != 0 {
		return c.ret(fh.handler)
	}
	return c.ret(0)
}

// cSpecificHandler is __C_specific_handler, the language handler of C
// __try/__except/__finally (scope tables in HandlerData).
func cSpecificHandler(c *call) error {
	p := c.p
	rec, est, ctxRec, dc := c.arg(0), c.arg(1), c.arg(2), c.arg(3)
	d := make([]byte, dcSize)
	if err := p.mem.Read(dc, d); err != nil {
		return err
	}
	le := binary.LittleEndian
	controlPC, imageBase := le.Uint64(d[dcControlPc:]), le.Uint64(d[dcImageBase:])
	targetIP, data := le.Uint64(d[dcTargetIp:]), le.Uint64(d[dcHandlerData:])
	scopeIndex := le.Uint32(d[dcScopeIndex:])
	flags, err := p.mem.ReadU32(rec + excFlags)
	if err != nil {
		return err
	}
	count, err := p.mem.ReadU32(data)
	if err != nil {
		return err
	}
	if count > 4096 {
		return fmt.Errorf("scope table at %#x has %d entries", data, count)
	}
	tbl := c.rbytes(data+4, 16*uint64(count))
	if c.err != nil {
		return nil
	}
	pc := uint32(controlPC - imageBase)
	type scope struct{ begin, end, handler, target uint32 }
	at := func(i uint32) scope {
		b := tbl[16*i:]
		return scope{le.Uint32(b), le.Uint32(b[4:]), le.Uint32(b[8:]), le.Uint32(b[12:])}
	}
	if flags&(exceptionUnwinding|0x4) == 0 { // dispatching (not unwinding, not exit-unwind)
		var try func(c *call, i uint32) error
		try = func(c *call, i uint32) error {
			for ; i < count; i++ {
				s := at(i)
				if pc < s.begin || pc >= s.end || s.target == 0 {
					continue
				}
				execute := func(c *call) error {
					code, _ := p.mem.ReadU32(rec + excCode)
					st, err := p.newSEHState()
					if err != nil {
						return err
					}
					st.targetFrame, st.tip, st.rec, st.retVal, st.unwinding = est, imageBase+uint64(s.target), rec, uint64(code), true
					ctx, err := c.callerContext()
					if err != nil {
						return err
					}
					return c.unwindFrames(st, ctx, 0)
				}
				if s.handler == 1 { // EXCEPTION_EXECUTE_HANDLER as a constant filter
					return execute(c)
				}
				ptrs, err := p.heap.allocBytes(append(le.AppendUint64(nil, rec), le.AppendUint64(nil, ctxRec)...))
				if err != nil {
					return err
				}
				next := i + 1
				return c.callGuest(imageBase+uint64(s.handler), []uint64{ptrs, est}, func(c *call, r uint64) error {
					p.heap.release(ptrs)
					switch v := int32(r); {
					case v > 0:
						return execute(c)
					case v < 0:
						return c.ret(0) // EXCEPTION_CONTINUE_EXECUTION
					}
					return try(c, next)
				})
			}
			return c.ret(1) // ExceptionContinueSearch
		}
		return try(c, scopeIndex)
	}
	// Unwinding: run the __finally blocks the unwind leaves, innermost first.
	var fin func(c *call, i uint32) error
	fin = func(c *call, i uint32) error {
		for ; i < count; i++ {
			s := at(i)
			if pc < s.begin || pc >= s.end {
				continue
			}
			if flags&exceptionTargetUnwind != 0 && s.target != 0 && imageBase+uint64(s.target) == targetIP {
				break
			}
			if s.target == 0 {
				c.w32(dc+dcScopeIndex, i+1)
				next := i + 1
				return c.callGuest(imageBase+uint64(s.handler), []uint64{1, est}, func(c *call, _ uint64) error {
					return fin(c, next)
				})
			}
		}
		return c.ret(1)
	}
	return fin(c, scopeIndex)
}
