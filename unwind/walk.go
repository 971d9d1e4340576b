package unwind

import (
	"errors"
	"fmt"

	"github.com/rspstub/rspstub/internal/arch"
)

// Trust says how a frame was found.
type Trust uint8

const (
	TrustContext      Trust = iota // frame 0: the thread's registers
	TrustPDATA                     // unwound with .pdata/.xdata of the callee
	TrustLeaf                      // callee had no function entry: RIP = [RSP]
	TrustMachineFrame              // a UWOP_PUSH_MACHFRAME gave RIP and RSP
	TrustCFI                       // a CFI fallback (DWARF) unwound the callee
	TrustFramePointer              // the RBP chain
	TrustScan                      // a stack scan found a plausible return address
	TrustCFIBuiltin                // built-in CFI of a CFI-less runtime helper (___chkstk_ms)
	TrustShadow                    // the emulator's shadow call stack, for a callee without unwind data
)

var trustNames = [...]string{"context", "pdata", "leaf", "machframe", "cfi", "frame-pointer", "scan", "cfi (builtin)", "shadow"}

func (t Trust) String() string {
	if int(t) < len(trustNames) {
		return trustNames[t]
	}
	return fmt.Sprintf("trust(%d)", uint8(t))
}

// StopReason says why a walk ended.
type StopReason uint8

const (
	StopZeroReturn     StopReason = iota // a return address of 0: the end of the thread's stack
	StopMaxFrames                        // the frame limit
	StopNoProgress                       // the stack pointer did not increase
	StopCycle                            // a (PC, SP) pair repeated
	StopUnreadable                       // stack memory could not be read
	StopOutsideModules                   // the PC lies outside every module
	StopMissingData                      // .pdata around the PC is unreadable or zeroed
	StopBadUnwindInfo                    // malformed unwind data, or a register it needs is unknown
	StopUnproven                         // no unwind data, and no return address could be validated
)

var stopNames = [...]string{"zero return address", "frame limit", "stack pointer did not increase",
	"cycle", "unreadable memory", "pc outside every module", "missing unwind data", "bad unwind data",
	"no provable return address"}

func (r StopReason) String() string {
	if int(r) < len(stopNames) {
		return stopNames[r]
	}
	return fmt.Sprintf("stop(%d)", uint8(r))
}

// Frame is one frame of a walk.
type Frame struct {
	PC    uint64 // exact for frame 0 and machine frames, a return address otherwise
	SP    uint64 // RSP in this frame (WinDbg's Child-SP)
	Trust Trust  // how this frame was found

	Module   *Module         // nil outside every module; valid until SetModules
	Function RuntimeFunction // zero when none was found
	HasEntry bool            // Function is valid

	// Filled in when this frame is unwound to its caller:
	EstablisherFrame uint64
	CFA              uint64 // the caller's RSP: the canonical frame address
	ReturnAddressAt  uint64 // where the caller's PC was read (0: not from memory)
	InProlog         bool
	InEpilog         bool

	// Regs holds this frame's registers: which are known and where each
	// nonvolatile one was saved.
	Regs Context
}

// Stack is the result of a walk.
type Stack struct {
	Frames []Frame
	Reason StopReason
	Err    error // the error behind Reason, if any
}

// CFIUnwinder is a fallback that unwinds a frame from other unwind data
// (DWARF CFI): it turns ctx into the caller's context and reports whether
// it could.
type CFIUnwinder interface {
	// exact says ctx.RIP is the exact PC (frame 0, or a frame a machine
	// frame interrupted) rather than a return address.
	UnwindFrame(mem Memory, mod *Module, ctx *Context, exact bool) (bool, error)
}

// CFITruster is a CFIUnwinder that can say which CFI it used: the
// module's own (TrustCFI) or CFI it carries for a runtime helper that
// has none (TrustCFIBuiltin). The walk labels the caller's frame with it.
type CFITruster interface {
	UnwindFrameTrust(mem Memory, mod *Module, ctx *Context, exact bool) (Trust, bool, error)
}

// CFIPreference says which unwind data a walk uses for a PE function
// that has both a .pdata entry and CFI.
type CFIPreference uint8

const (
	// PreferAuto: .pdata where there is an entry; CFI where there is
	// none, and where .pdata fails.
	PreferAuto CFIPreference = iota
	// PreferPDATA: CFI only where there is no .pdata entry.
	PreferPDATA
	// PreferCFI: CFI first; .pdata where CFI does not cover the PC.
	PreferCFI
)

var preferenceNames = [...]string{"auto", "pdata", "cfi"}

func (p CFIPreference) String() string {
	if int(p) < len(preferenceNames) {
		return preferenceNames[p]
	}
	return fmt.Sprintf("preference(%d)", uint8(p))
}

// ParseCFIPreference parses "auto", "pdata" or "cfi".
func ParseCFIPreference(s string) (CFIPreference, error) {
	for i, n := range preferenceNames {
		if s == n {
			return CFIPreference(i), nil
		}
	}
	return 0, fmt.Errorf("unwinder %q: want auto, pdata or cfi", s)
}

// WalkOptions bound and configure a walk.
type WalkOptions struct {
	MaxFrames int // default 1024, at most HardMaxFrames
	// Fallbacks, tried in this order when .pdata cannot unwind a frame.
	CFI CFIUnwinder
	// Prefer says when CFI is used for code that has a .pdata entry
	// (needs CFI).
	Prefer       CFIPreference
	FramePointer bool // follow the RBP chain
	Scan         bool // scan the stack for return addresses
	ScanWords    int  // stack words a scan may look at; default 512

	// Validate changes how a frame without unwind data (outside every
	// module, or without a .pdata entry and without CFI) is unwound: its
	// return address is taken only when it follows a call consistent with
	// the frame (validReturn), from Shadow when given, else the leaf
	// rule, the RBP chain, then a scan of ScanWords words; when none
	// validates, the walk ends with StopUnproven. Without Validate such a
	// frame follows the Windows leaf rule and a PC outside every module
	// ends the walk.
	Validate bool
	// Shadow is the emulator's shadow call stack (calls in progress,
	// any order; nil: none), used by Validate before any heuristic.
	Shadow []ShadowCall
	// Code says where executable memory outside modules lies (nil:
	// unknown; return addresses must then be in modules).
	Code CodeRegions
}

// HardMaxFrames caps every walk.
const HardMaxFrames = 1 << 16

// Walk unwinds from ctx (frame 0) until the stack ends or a bound is hit.
// ctx must have RIP and RSP known. Walk never fails: errors become the
// stack's Reason and Err.
func (u *Unwinder) Walk(ctx Context, opt WalkOptions) Stack {
	var st Stack
	u.WalkInto(&st, ctx, opt)
	return st
}

// WalkInto is Walk reusing st's frame slice, for callers that walk often.
func (u *Unwinder) WalkInto(st *Stack, ctx Context, opt WalkOptions) {
	st.Frames, st.Reason, st.Err = st.Frames[:0], 0, nil
	limit := opt.MaxFrames
	if limit <= 0 {
		limit = 1024
	}
	if limit > HardMaxFrames {
		limit = HardMaxFrames
	}
	if !ctx.RIPKnown || ctx.GPRKnown&(1<<arch.RSP) == 0 {
		st.Reason, st.Err = StopBadUnwindInfo, fmt.Errorf("initial rip/rsp: %w", ErrUnknownRegister)
		return
	}
	st.Frames = append(st.Frames, Frame{Regs: ctx})
	u.initFrame(&st.Frames[0], TrustContext)
	var seen map[[2]uint64]struct{}
	for {
		n := len(st.Frames)
		if n >= limit {
			st.Reason = StopMaxFrames
			return
		}
		// The caller's frame is built in place: a Context is large. Grow
		// by doubling (append grows large slices by only 1.25x).
		if n == cap(st.Frames) {
			grown := make([]Frame, n, max(64, 2*n))
			copy(grown, st.Frames)
			st.Frames = grown
		}
		st.Frames = append(st.Frames, Frame{})
		cur, nf := &st.Frames[n-1], &st.Frames[n]
		nf.Regs = cur.Regs
		next := &nf.Regs
		var flags StepFlags
		// A return address is not in an epilog, and may be the first
		// byte after the function when a call ends it: look up pc-1.
		lookupPC := next.RIP
		if cur.Trust != TrustContext && cur.Trust != TrustMachineFrame && lookupPC != 0 {
			lookupPC--
			flags |= NoEpilog
		}
		var (
			si    StepInfo
			trust Trust
			err   error
		)
		if cur.Module != nil && cur.Module.Format == FormatELF {
			// ELF code has no .pdata: its CFI is the unwind data.
			si.Leaf = true
			trust, err = u.cfiStep(cur, next, opt)
		} else if t, ok := u.cfiFirst(cur, next, opt); ok {
			si.Leaf, trust = true, t
		} else if t, ok := u.cfiForLeaf(cur, next, lookupPC, opt); ok && (!opt.Validate || next.RIP == 0 || u.afterCall(next.RIP, opt.Code)) {
			si.Leaf, trust = true, t
		} else if t, ok := u.cfiForEmptyEntry(cur, next, lookupPC, opt); ok {
			si.Leaf, trust = true, t
		} else if opt.Validate && u.noUnwindData(cur, lookupPC) {
			// No .pdata entry, and no CFI or CFI whose return address
			// does not follow a call (Go's rt0_go before package cfi
			// knew it): the frame has no unwind data to trust.
			*next = cur.Regs
			si.Leaf = true
			c, t, err := u.unwindNoData(cur, opt)
			if err != nil {
				st.Frames = st.Frames[:n]
				st.Reason, st.Err = classify(err), err
				return
			}
			*next, trust = c, t
		} else {
			si, trust, err = u.stepFrom(next, lookupPC, flags)
			if err == nil && trust == TrustLeaf && next.RIP != 0 && u.garbage(next.RIP) {
				u.repairLeaf(cur, next, &trust, opt)
			}
		}
		if err != nil {
			var ok bool
			*next, trust, ok = u.fallback(cur, opt)
			if !ok {
				st.Frames = st.Frames[:n]
				st.Reason, st.Err = classify(err), err
				return
			}
		} else {
			if !si.Leaf {
				cur.Function, cur.HasEntry = si.Function.RuntimeFunction, true
			}
			cur.EstablisherFrame = si.EstablisherFrame
			cur.InProlog, cur.InEpilog = si.InProlog, si.InEpilog
		}
		cur.CFA = next.RSP()
		cur.ReturnAddressAt = next.RIPAddr
		if trust != TrustMachineFrame {
			next.forgetVolatile()
		}
		stop := false
		switch {
		case next.RIP == 0:
			st.Reason, stop = StopZeroReturn, true
		case trust == TrustMachineFrame:
			// A machine frame may switch stacks: guard against cycles instead.
			if seen == nil {
				seen = make(map[[2]uint64]struct{})
			}
			key := [2]uint64{next.RIP, next.RSP()}
			if _, dup := seen[key]; dup {
				st.Reason, stop = StopCycle, true
			}
			seen[key] = struct{}{}
		case next.RSP() <= cur.SP:
			st.Reason, stop = StopNoProgress, true
		}
		if stop {
			st.Frames = st.Frames[:n]
			return
		}
		u.initFrame(nf, trust)
	}
}

// initFrame fills the frame's PC, SP, trust and module from its Regs.
func (u *Unwinder) initFrame(f *Frame, t Trust) {
	f.PC, f.SP, f.Trust = f.Regs.RIP, f.Regs.RSP(), t
	if m, ok := u.Module(f.PC); ok {
		f.Module = m
	}
}

// stepFrom is Step with a separate lookup address.
func (u *Unwinder) stepFrom(ctx *Context, lookupPC uint64, flags StepFlags) (StepInfo, Trust, error) {
	fe, found, err := u.LookupFunctionEntry(lookupPC)
	if err != nil {
		return StepInfo{}, 0, err
	}
	if !found {
		si, err := u.leaf(ctx)
		return si, TrustLeaf, err
	}
	si, err := u.VirtualUnwind(fe, ctx.RIP, ctx, flags)
	if si.MachineFrame {
		return si, TrustMachineFrame, err
	}
	return si, TrustPDATA, err
}

// cfiForLeaf unwinds with CFI, into next, a frame whose PC has no
// function entry, where the Windows rule would assume a leaf: code such as
// libgcc's ___chkstk_ms has CFI but no .pdata entry, and pushes before it
// returns. It reports false (next untouched) when there is an entry, no
// CFI hook, or no CFI for the PC: then the leaf rule applies.
func (u *Unwinder) cfiForLeaf(cur *Frame, next *Context, lookupPC uint64, opt WalkOptions) (Trust, bool) {
	if opt.CFI == nil || cur.Module == nil || opt.Prefer == PreferCFI {
		return 0, false // PreferCFI: cfiFirst has tried already
	}
	if _, found, err := u.LookupFunctionEntry(lookupPC); found || err != nil {
		return 0, false
	}
	return u.cfi(cur, next, opt)
}

// cfiForEmptyEntry unwinds with CFI, into next, a frame whose function
// entry has no unwind codes at all — a claim that the function never
// moves RSP — when CFI describes the PC (PreferAuto only). Hand-written
// functions can push without saying so in .xdata: Wine's
// RtlCaptureContext starts with pushfq, described by its DWARF CFI alone,
// and there RtlVirtualUnwind itself would take the pushed flags for the
// return address. CFI that agrees (CFA = RSP+8) gives the same frame.
func (u *Unwinder) cfiForEmptyEntry(cur *Frame, next *Context, lookupPC uint64, opt WalkOptions) (Trust, bool) {
	if opt.CFI == nil || cur.Module == nil || opt.Prefer != PreferAuto {
		return 0, false
	}
	fe, found, err := u.LookupFunctionEntry(lookupPC)
	if !found || err != nil || fe.Image == nil {
		return 0, false
	}
	info, err := fe.Image.UnwindInfo(u.mem, fe.UnwindData)
	if err != nil || info.CountOfCodes != 0 || info.Chain() || info.FrameRegister != 0 {
		return 0, false
	}
	return u.cfi(cur, next, opt)
}

// cfiFirst unwinds with CFI, into next, before .pdata is looked at, when
// the user prefers CFI. It reports false (next untouched) otherwise or
// when no CFI covers the PC: then .pdata applies.
func (u *Unwinder) cfiFirst(cur *Frame, next *Context, opt WalkOptions) (Trust, bool) {
	if opt.CFI == nil || cur.Module == nil || opt.Prefer != PreferCFI {
		return 0, false
	}
	return u.cfi(cur, next, opt)
}

// cfi runs the CFI unwinder on cur into next (untouched when it fails)
// and returns the trust of the caller's frame.
func (u *Unwinder) cfi(cur *Frame, next *Context, opt WalkOptions) (Trust, bool) {
	t, ok, err := u.runCFI(cur, next, opt)
	return t, ok && err == nil
}

// cfiStep unwinds, into next, a frame of an ELF module with its CFI, and
// returns the trust of the caller's frame.
func (u *Unwinder) cfiStep(cur *Frame, next *Context, opt WalkOptions) (Trust, error) {
	if opt.CFI == nil {
		return 0, fmt.Errorf("%s is an ELF module and the walk has no CFI unwinder: %w", cur.Module.Name, ErrNoCFI)
	}
	t, ok, err := u.runCFI(cur, next, opt)
	if err != nil {
		return 0, fmt.Errorf("CFI of %s at %#x: %w", cur.Module.Name, cur.PC, err)
	}
	if !ok {
		return 0, fmt.Errorf("%s at %#x: %w", cur.Module.Name, cur.PC, ErrNoCFI)
	}
	return t, nil
}

// runCFI asks opt.CFI to unwind cur; next is written only on success.
func (u *Unwinder) runCFI(cur *Frame, next *Context, opt WalkOptions) (Trust, bool, error) {
	c := cur.Regs
	t, ok, err := TrustCFI, false, error(nil)
	if tr, has := opt.CFI.(CFITruster); has {
		t, ok, err = tr.UnwindFrameTrust(u.mem, cur.Module, &c, exactPC(cur))
	} else {
		ok, err = opt.CFI.UnwindFrame(u.mem, cur.Module, &c, exactPC(cur))
	}
	if ok && err == nil {
		*next = c
	}
	return t, ok, err
}

// repairLeaf handles a leaf-rule result that cannot be a return address
// (garbage): the function has no unwind data yet has pushed (libgcc's
// ___chkstk_ms pushes rcx and rax and has neither .pdata nor CFI). The configured
// fallbacks (a stack scan, in practice) find the return address instead.
// The nonvolatile registers carry over: a function without unwind data
// must be a leaf by the x64 ABI, which forbids it to change them.
func (u *Unwinder) repairLeaf(cur *Frame, next *Context, trust *Trust, opt WalkOptions) {
	c, t, ok := u.fallback(cur, opt)
	if !ok {
		return
	}
	for r := arch.RAX; r <= arch.R15; r++ {
		bit := uint16(1) << r
		if r == arch.RSP || NonvolatileGPRs&bit == 0 || c.GPRKnown&bit != 0 || cur.Regs.GPRKnown&bit == 0 {
			continue
		}
		c.GPR[r], c.GPRAddr[r] = cur.Regs.GPR[r], cur.Regs.GPRAddr[r]
		c.GPRKnown |= bit
	}
	for i := 0; i < 16; i++ {
		bit := uint16(1) << i
		if NonvolatileXMMs&bit == 0 || c.XMMKnown&bit != 0 || cur.Regs.XMMKnown&bit == 0 {
			continue
		}
		c.XMM[i], c.XMMAddr[i] = cur.Regs.XMM[i], cur.Regs.XMMAddr[i]
		c.XMMKnown |= bit
	}
	*next, *trust = c, t
}

// garbage reports whether a leaf-rule return address cannot be one: it is
// neither in a module's code nor readable memory. Readable memory outside
// every module (JIT code, shellcode) is a real caller and is reported.
func (u *Unwinder) garbage(addr uint64) bool {
	if img, err := u.Image(addr); err == nil && img.Executable(uint32(addr-img.Base)) {
		return false
	}
	var b [1]byte
	n, _ := safeRead(u.mem, addr, b[:])
	return n == 0
}

// exactPC says whether f's PC is the exact instruction rather than a
// return address.
func exactPC(f *Frame) bool { return f.Trust == TrustContext || f.Trust == TrustMachineFrame }

// fallback tries the configured fallbacks on the frame .pdata could not
// unwind.
func (u *Unwinder) fallback(cur *Frame, opt WalkOptions) (Context, Trust, bool) {
	if opt.CFI != nil && (opt.Prefer != PreferPDATA || !u.hasEntry(cur)) {
		var next Context
		if t, ok := u.cfi(cur, &next, opt); ok {
			return next, t, true
		}
	}
	if opt.FramePointer {
		if next, ok := u.framePointer(cur, opt.Code); ok {
			return next, TrustFramePointer, true
		}
	}
	if opt.Scan {
		if next, ok := u.scan(cur, opt.ScanWords, opt.Code); ok {
			return next, TrustScan, true
		}
	}
	return Context{}, 0, false
}

// hasEntry reports whether cur's function has a .pdata entry.
func (u *Unwinder) hasEntry(cur *Frame) bool {
	pc := cur.PC
	if !exactPC(cur) && pc > 0 {
		pc--
	}
	_, found, _ := u.LookupFunctionEntry(pc)
	return found
}

// framePointer follows a push rbp; mov rbp, rsp frame: [RBP] is the saved
// RBP and [RBP+8] the return address, which must validate (validReturn).
func (u *Unwinder) framePointer(cur *Frame, code CodeRegions) (Context, bool) {
	rbp, ok := cur.Regs.Get(arch.RBP)
	if !ok || rbp < cur.SP || rbp&7 != 0 || rbp-cur.SP > maxFrameSpan {
		return Context{}, false
	}
	saved, err := read64(u.mem, u.scratch[:], "stack", rbp)
	if err != nil {
		return Context{}, false
	}
	ra, err := read64(u.mem, u.scratch[:], "stack", rbp+8)
	if err != nil || !u.validReturn(ra, calleePC(cur), code) {
		return Context{}, false
	}
	next := cur.Regs
	next.restore(uint8(arch.RBP), saved, rbp)
	next.restoreRIP(ra, rbp+8)
	next.setRSP(rbp + 16)
	return next, true
}

// scan looks upward from the frame's SP for the first word that is a
// validated return address (validReturn). Only RIP and RSP are known in
// the result.
func (u *Unwinder) scan(cur *Frame, words int, code CodeRegions) (Context, bool) {
	pc := calleePC(cur)
	slot, ra, ok := u.scanFor(cur.SP, words, func(w uint64) bool { return u.validScanned(w, pc, code) })
	if !ok {
		return Context{}, false
	}
	var next Context
	next.restoreRIP(ra, slot)
	next.setRSP(slot + 8)
	return next, true
}

func classify(err error) StopReason {
	switch {
	case errors.Is(err, ErrUnproven):
		return StopUnproven
	case errors.Is(err, ErrNoModule):
		return StopOutsideModules
	case errors.Is(err, ErrMissingUnwindData), errors.Is(err, ErrNoCFI):
		return StopMissingData
	case IsReadError(err):
		var ie *InfoError
		if errors.As(err, &ie) {
			return StopMissingData
		}
		return StopUnreadable
	}
	return StopBadUnwindInfo
}
