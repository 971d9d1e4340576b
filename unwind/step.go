package unwind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/rspstub/rspstub/internal/arch"
)

// Unwinder unwinds frames of one guest address space. It caches each
// module's parsed headers, function table and UNWIND_INFO; call SetModules
// when the module list changes and Flush when module memory may have
// changed. An Unwinder is not safe for concurrent use.
type Unwinder struct {
	mem     Memory
	modules []*moduleEntry // sorted by base
	scratch [16]byte       // read buffer: passing a stack array to Memory would allocate
	code    [epilogWindow + 8]byte
	tails   map[uint64][]uint64 // tail-jump destinations by function start (nodata.go)
}

type moduleEntry struct {
	mod Module
	img *Image
	err error // sticky parse error
}

// New returns an Unwinder over mem for the given modules.
func New(mem Memory, modules []Module) *Unwinder {
	u := &Unwinder{mem: mem}
	u.SetModules(modules)
	return u
}

// SetModules replaces the module list, keeping the cache of modules that
// are unchanged (same name, base and size).
func (u *Unwinder) SetModules(modules []Module) {
	u.tails = nil
	old := u.modules
	u.modules = make([]*moduleEntry, 0, len(modules))
	for _, m := range modules {
		e := &moduleEntry{mod: m}
		for _, o := range old {
			if o.mod == m {
				e = o
				break
			}
		}
		u.modules = append(u.modules, e)
	}
	sort.Slice(u.modules, func(i, j int) bool { return u.modules[i].mod.Base < u.modules[j].mod.Base })
}

// Flush drops every cached image.
func (u *Unwinder) Flush() {
	for _, e := range u.modules {
		e.img, e.err = nil, nil
	}
	u.tails = nil
}

// Module returns the module containing addr.
func (u *Unwinder) Module(addr uint64) (*Module, bool) {
	e := u.moduleEntry(addr)
	if e == nil {
		return nil, false
	}
	return &e.mod, true
}

func (u *Unwinder) moduleEntry(addr uint64) *moduleEntry {
	ms := u.modules
	i := sort.Search(len(ms), func(i int) bool { return ms[i].mod.Base > addr }) - 1
	if i < 0 {
		return nil
	}
	e := ms[i]
	if e.mod.Size != 0 && !e.mod.Contains(addr) {
		return nil
	}
	return e
}

// Image returns the parsed image of the module containing addr.
func (u *Unwinder) Image(addr uint64) (*Image, error) {
	e := u.moduleEntry(addr)
	if e == nil {
		return nil, fmt.Errorf("%w: %#x", ErrNoModule, addr)
	}
	if e.img == nil && e.err == nil {
		e.img, e.err = ReadImage(u.mem, e.mod)
		if e.img != nil && e.mod.Size == 0 {
			e.mod.Size = e.img.Size
		}
	}
	if e.err != nil {
		return nil, e.err
	}
	if !e.img.Contains(addr) {
		return nil, fmt.Errorf("%w: %#x", ErrNoModule, addr)
	}
	return e.img, nil
}

// FunctionEntry is the result of a function lookup: the image and its
// RUNTIME_FUNCTION (indirect entries resolved).
type FunctionEntry struct {
	Image *Image
	RuntimeFunction
}

// LookupFunctionEntry is RtlLookupFunctionEntry: the function entry
// covering pc. found is false (with a nil error) for a leaf function: pc is
// inside a module whose table has no entry for it. The error is
// ErrNoModule outside every module and ErrMissingUnwindData when the table
// is damaged around pc.
func (u *Unwinder) LookupFunctionEntry(pc uint64) (fe FunctionEntry, found bool, err error) {
	img, err := u.Image(pc)
	if err != nil {
		return FunctionEntry{}, false, err
	}
	fn, found, err := img.LookupFunction(u.mem, uint32(pc-img.Base))
	if err != nil {
		return FunctionEntry{}, false, fmt.Errorf("function at %#x in %s: %w", pc, img.Name, err)
	}
	return FunctionEntry{Image: img, RuntimeFunction: fn}, found, nil
}

// StepFlags modify one unwind step.
type StepFlags uint8

const (
	// NoEpilog skips epilog detection (UNW_FLAG_NO_EPILOGUE in Windows): the
	// caller knows pc is not in an epilog, e.g. it is a return address.
	NoEpilog StepFlags = 1 << iota
)

// StepInfo describes one unwind step.
type StepInfo struct {
	Function         FunctionEntry // the entry used (zero for a leaf)
	Leaf             bool          // no entry: RIP = [RSP], RSP += 8
	EstablisherFrame uint64
	InProlog         bool // pc before the end of the prolog (partial prolog applied)
	InEpilog         bool // pc in an epilog (the epilog was emulated)
	MachineFrame     bool // the frame was a UWOP_PUSH_MACHFRAME frame
	ChainDepth       int  // chained UNWIND_INFO followed
	// HandlerRVA is the language-specific handler RtlVirtualUnwind would
	// return (flags of the final entry, pc past the prolog, not in an epilog).
	HandlerRVA   uint32
	HandlerFlags uint8
}

// Step unwinds ctx by one frame: it looks up the function at ctx.RIP and
// applies VirtualUnwind, or the leaf rule when the module has no entry.
// On error ctx may be partly updated.
func (u *Unwinder) Step(ctx *Context, flags StepFlags) (StepInfo, error) {
	pc := ctx.RIP
	if !ctx.RIPKnown {
		return StepInfo{}, fmt.Errorf("rip: %w", ErrUnknownRegister)
	}
	fe, found, err := u.LookupFunctionEntry(pc)
	if err != nil {
		return StepInfo{}, err
	}
	if !found {
		return u.leaf(ctx)
	}
	return u.VirtualUnwind(fe, pc, ctx, flags)
}

// leaf applies the rule for a function without an entry: RIP = [RSP],
// RSP += 8.
func (u *Unwinder) leaf(ctx *Context) (StepInfo, error) {
	si := StepInfo{Leaf: true}
	if ctx.GPRKnown&(1<<arch.RSP) == 0 {
		return si, fmt.Errorf("rsp: %w", ErrUnknownRegister)
	}
	si.EstablisherFrame = ctx.RSP()
	return si, u.popReturn(ctx)
}

// Instruction bytes the version 1 epilog rule recognises.
const (
	size64Prefix = 0x48
	addImm8Op    = 0x83
	addImm32Op   = 0x81
	jmpImm8Op    = 0xeb
	jmpImm32Op   = 0xe9
	jmpIndOp     = 0xff
	leaOp        = 0x8d
	repnePrefix  = 0xf2
	repPrefix    = 0xf3
	popOp        = 0x58
	retOp        = 0xc3
	retOp2       = 0xc2
)

func isREX(b byte) bool { return b&0xf0 == 0x40 }

// epilogWindow is how many code bytes the version 1 rule may look at: an
// add/lea (7), sixteen two-byte pops (32), a prefix and a jmp (6).
const epilogWindow = 48

// VirtualUnwind is RtlVirtualUnwind for the function entry fe and control
// pc: it turns ctx into the caller's context. ctx.RSP and the registers the
// function's unwind codes name must be known.
func (u *Unwinder) VirtualUnwind(fe FunctionEntry, pc uint64, ctx *Context, flags StepFlags) (StepInfo, error) {
	img := fe.Image
	si := StepInfo{Function: fe}
	if img == nil {
		return si, fmt.Errorf("function entry without an image: %w", ErrNoModule)
	}
	if ctx.GPRKnown&(1<<arch.RSP) == 0 {
		return si, fmt.Errorf("rsp: %w", ErrUnknownRegister)
	}
	info, err := img.UnwindInfo(u.mem, fe.UnwindData)
	if err != nil {
		return si, err
	}
	prologOffset := uint32(pc - (img.Base + uint64(fe.BeginAddress)))

	// The establisher frame: RSP, or the frame register minus 16*FrameOffset
	// once UWOP_SET_FPREG has executed (always past the prolog or in a
	// chained entry).
	useFP := false
	if info.FrameRegister != 0 {
		if prologOffset >= uint32(info.SizeOfProlog) || info.Chain() {
			useFP = true
		} else if off, ok := info.setFPRegOffset(); ok && prologOffset >= uint32(off) {
			useFP = true
		}
	}
	if useFP {
		v, ok := ctx.Get(info.FrameReg())
		if !ok {
			return si, fmt.Errorf("frame register %v: %w", info.FrameReg(), ErrUnknownRegister)
		}
		si.EstablisherFrame = v - 16*uint64(info.FrameOffset)
	} else {
		si.EstablisherFrame = ctx.RSP()
	}
	si.InProlog = prologOffset < uint32(info.SizeOfProlog)

	// Since Windows 10 1809 a function without unwind codes gets no epilog
	// treatment. A chained region without codes of its own (the tail of a
	// split function) still does: its parent's pushes are being popped
	// there, and Wine, too, checks the epilog at the parent's level.
	if flags&NoEpilog == 0 && (info.CountOfCodes != 0 || info.Chain()) {
		if info.Version < 2 {
			in, err := u.epilogV1(img, fe, info, pc, ctx)
			if err != nil || in {
				si.InEpilog, si.InProlog = in, false
				return si, err
			}
		} else if info.CountOfCodes != 0 && info.Codes[0].Op == UWOP_EPILOG {
			if off, in := epilogV2(info, fe.RuntimeFunction, uint32(pc-img.Base)); in {
				si.InEpilog, si.InProlog = true, false
				si.MachineFrame, err = u.unwindEpilogue(img, fe.RuntimeFunction, off, ctx)
				return si, err
			}
		}
	}

	final, depth, mf, err := u.unwindPrologue(img, fe.RuntimeFunction, pc, si.EstablisherFrame, ctx)
	si.ChainDepth, si.MachineFrame = depth, mf
	if err != nil {
		return si, err
	}
	if fi, err := img.UnwindInfo(u.mem, final.UnwindData); err == nil && fi.HasHandler() {
		if uint32(pc-(img.Base+uint64(final.BeginAddress))) >= uint32(fi.SizeOfProlog) {
			si.HandlerRVA, si.HandlerFlags = fi.HandlerRVA, fi.Flags&(UNW_FLAG_EHANDLER|UNW_FLAG_UHANDLER)
		}
	}
	return si, nil
}

// epilogV2 checks pc against the version 2 epilog descriptors and returns
// the offset of pc inside the epilog.
func epilogV2(info *UnwindInfo, fn RuntimeFunction, rel uint32) (uint32, bool) {
	size := uint32(info.EpilogSize)
	if info.EpilogAtEnd {
		start := fn.EndAddress - size
		if rel-start < size {
			return rel - start, true
		}
	}
	for _, d := range info.EpilogOffset {
		start := fn.EndAddress - uint32(d)
		if rel-start < size {
			return rel - start, true
		}
	}
	return 0, false
}

// epilogV1 recognises an epilog by reading code at pc, in exactly the forms
// the Windows unwinder accepts, and emulates it forward when found.
func (u *Unwinder) epilogV1(img *Image, fe FunctionEntry, info *UnwindInfo, pc uint64, ctx *Context) (bool, error) {
	// The zero tail past the window matches nothing.
	b := u.code[:]
	clear(b)
	safeRead(u.mem, pc, b[:epilogWindow])
	i := 0
	frameReg := 0
	switch {
	case b[0] == size64Prefix && b[1] == addImm8Op && b[2] == 0xc4:
		i = 4 // add rsp, imm8
	case b[0] == size64Prefix && b[1] == addImm32Op && b[2] == 0xc4:
		i = 7 // add rsp, imm32
	case b[0]&0xfe == size64Prefix && b[1] == leaOp:
		frameReg = int(b[0]&1)<<3 | int(b[2]&7)
		if frameReg != 0 && frameReg == int(info.FrameRegister) {
			switch b[2] & 0xf8 {
			case 0x60:
				i = 4 // lea rsp, disp8[fp]
			case 0xa0:
				i = 7 // lea rsp, disp32[fp]
			}
		}
	}
	for i < epilogWindow {
		if b[i]&0xf8 == popOp {
			i++
		} else if isREX(b[i]) && b[i+1]&0xf8 == popOp {
			i += 2
		} else {
			break
		}
	}
	if i >= epilogWindow {
		return false, nil
	}
	if b[i] == repnePrefix {
		i++
	}
	in := false
	switch {
	case b[i] == retOp || b[i] == retOp2 || (b[i] == repPrefix && b[i+1] == retOp):
		in = true
	case b[i] == jmpImm8Op || b[i] == jmpImm32Op:
		target := uint32(pc - img.Base + uint64(i))
		if b[i] == jmpImm8Op {
			target += 2 + uint32(int32(int8(b[i+1])))
		} else {
			target += 5 + binary.LittleEndian.Uint32(b[i+1:])
		}
		if target < fe.BeginAddress || target >= fe.EndAddress {
			primary, same := u.sameFunction(img, fe.RuntimeFunction, target)
			if !same || target == primary.BeginAddress {
				in = true
			}
		} else if target == fe.BeginAddress && !info.Chain() {
			in = true
		}
	case b[i] == jmpIndOp && b[i+1] == 0x25:
		in = true // jmp [rip+disp32]: a tail call through the IAT
	case b[i]&0xf8 == size64Prefix && b[i+1] == 0xff && b[i+2]&0x38 == 0x20:
		in = true // REX.W jmp r/m64: a tail call by convention
	}
	if !in {
		return false, nil
	}

	// Emulate forward from pc.
	i = 0
	if b[0]&0xf8 == size64Prefix {
		switch {
		case b[1] == addImm8Op:
			ctx.setRSP(ctx.RSP() + uint64(int64(int8(b[3]))))
			i = 4
		case b[1] == addImm32Op:
			ctx.setRSP(ctx.RSP() + uint64(int64(int32(binary.LittleEndian.Uint32(b[3:])))))
			i = 7
		case b[1] == leaOp && (b[2]&0xf8 == 0x60 || b[2]&0xf8 == 0xa0):
			v, ok := ctx.Get(arch.Reg(frameReg))
			if !ok {
				return true, fmt.Errorf("epilog lea base %v: %w", arch.Reg(frameReg), ErrUnknownRegister)
			}
			if b[2]&0xf8 == 0x60 {
				ctx.setRSP(v + uint64(int64(int8(b[3]))))
				i = 4
			} else {
				ctx.setRSP(v + uint64(int64(int32(binary.LittleEndian.Uint32(b[3:])))))
				i = 7
			}
		}
	}
	for i < epilogWindow {
		var reg uint8
		if b[i]&0xf8 == popOp {
			reg = b[i] & 7
			i++
		} else if isREX(b[i]) && b[i+1]&0xf8 == popOp {
			reg = (b[i]&1)<<3 | b[i+1]&7
			i += 2
		} else {
			break
		}
		sp := ctx.RSP()
		v, err := read64(u.mem, u.scratch[:], "stack", sp)
		if err != nil {
			return true, err
		}
		ctx.restore(reg, v, sp)
		ctx.setRSP(sp + 8)
	}
	return true, u.popReturn(ctx)
}

// popReturn emulates ret: RIP = [RSP], RSP += 8.
func (u *Unwinder) popReturn(ctx *Context) error {
	sp := ctx.RSP()
	ra, err := read64(u.mem, u.scratch[:], "stack", sp)
	if err != nil {
		return err
	}
	ctx.restoreRIP(ra, sp)
	ctx.setRSP(sp + 8)
	return nil
}

// primaryEntry follows chained UNWIND_INFO to the primary function entry
// (LookupPrimaryFunctionEntry).
func (u *Unwinder) primaryEntry(img *Image, fn RuntimeFunction) (RuntimeFunction, error) {
	for range ChainLimit + 1 {
		info, err := img.UnwindInfo(u.mem, fn.UnwindData)
		if err != nil {
			return fn, err
		}
		if !info.Chain() {
			return fn, nil
		}
		fn = info.Chained
	}
	return fn, ErrChainTooDeep
}

// sameFunction reports whether rva lies in the function fn belongs to
// (SameFunction), returning fn's primary entry.
func (u *Unwinder) sameFunction(img *Image, fn RuntimeFunction, rva uint32) (RuntimeFunction, bool) {
	primary, err := u.primaryEntry(img, fn)
	if err != nil {
		return primary, false
	}
	t, found, err := img.LookupFunction(u.mem, rva)
	if err != nil || !found {
		return primary, false
	}
	tp, err := u.primaryEntry(img, t)
	if err != nil {
		return primary, false
	}
	return primary, tp.BeginAddress == primary.BeginAddress
}

// unwindEpilogue emulates a version 2 epilog from the prolog codes: the pops
// not yet executed are the UWOP_PUSH_NONVOL codes, one or two bytes each.
func (u *Unwinder) unwindEpilogue(img *Image, fn RuntimeFunction, epilogOffset uint32, ctx *Context) (bool, error) {
	var info *UnwindInfo
	first := -1
	for chain := 0; ; chain++ {
		var err error
		info, err = img.UnwindInfo(u.mem, fn.UnwindData)
		if err != nil {
			return false, err
		}
		for k, c := range info.Codes {
			if c.Op == UWOP_PUSH_NONVOL || c.Op == UWOP_PUSH_MACHFRAME {
				first = k
				break
			}
		}
		if first >= 0 || !info.Chain() {
			break
		}
		if chain >= ChainLimit {
			return false, ErrChainTooDeep
		}
		fn = info.Chained
	}
	k := len(info.Codes)
	if first >= 0 {
		k = first
	}
	cur := uint32(0)
	var last UnwindCode
	for ; k < len(info.Codes); k++ {
		last = info.Codes[k]
		if last.Op != UWOP_PUSH_NONVOL {
			break
		}
		if cur >= epilogOffset {
			sp := ctx.RSP()
			v, err := read64(u.mem, u.scratch[:], "stack", sp)
			if err != nil {
				return false, err
			}
			ctx.restore(last.OpInfo, v, sp)
			ctx.setRSP(sp + 8)
		}
		cur++
		if last.OpInfo >= 8 {
			cur++
		}
	}
	// UWOP_ALLOC_SMALL 8 after the pushes is a pushfq, popped into a
	// volatile register.
	if k < len(info.Codes) && last.Op == UWOP_ALLOC_SMALL && last.OpInfo == 0 {
		if cur >= epilogOffset {
			ctx.setRSP(ctx.RSP() + 8)
		}
		k++
	}
	if k < len(info.Codes) && info.Codes[k].Op == UWOP_PUSH_MACHFRAME {
		return true, u.machineFrame(ctx, false)
	}
	return false, u.popReturn(ctx)
}

// machineFrame unwinds a UWOP_PUSH_MACHFRAME: the interrupted RIP and RSP
// stored by the processor (after an error code, if any).
func (u *Unwinder) machineFrame(ctx *Context, errorCode bool) error {
	ripAt := ctx.RSP()
	if errorCode {
		ripAt += 8
	}
	rspAt := ripAt + 24
	rip, err := read64(u.mem, u.scratch[:], "machine frame", ripAt)
	if err != nil {
		return err
	}
	rsp, err := read64(u.mem, u.scratch[:], "machine frame", rspAt)
	if err != nil {
		return err
	}
	ctx.restoreRIP(rip, ripAt)
	ctx.restore(uint8(arch.RSP), rsp, rspAt)
	return nil
}

// unwindPrologue reverses the prolog of fn (only the codes at or below pc's
// offset) and then of every chained parent, and pops the return address
// unless a machine frame supplied RIP. It returns the final (primary) entry.
func (u *Unwinder) unwindPrologue(img *Image, fn RuntimeFunction, pc, frameBase uint64, ctx *Context) (RuntimeFunction, int, bool, error) {
	anyMachine := false
	var seen [ChainLimit + 1]uint32 // UNWIND_INFOs on the chain so far
	for chain := 0; ; chain++ {
		info, err := img.UnwindInfo(u.mem, fn.UnwindData)
		if err != nil {
			return fn, chain, false, err
		}
		seen[chain] = fn.UnwindData
		if info.Chain() && slices.Contains(seen[:chain+1], info.Chained.UnwindData) {
			return fn, chain, false, fmt.Errorf("%w (%w): UNWIND_INFO at rva %#x chains back to rva %#x", ErrChainLoop, ErrChainTooDeep, fn.UnwindData, info.Chained.UnwindData)
		}
		machine := false
		prologOffset := uint32(pc - (img.Base + uint64(fn.BeginAddress)))
		for _, c := range info.Codes {
			if prologOffset < uint32(c.CodeOffset) {
				continue
			}
			switch c.Op {
			case UWOP_PUSH_NONVOL:
				sp := ctx.RSP()
				v, err := read64(u.mem, u.scratch[:], "stack", sp)
				if err != nil {
					return fn, chain, false, err
				}
				ctx.restore(c.OpInfo, v, sp)
				ctx.setRSP(sp + 8)
			case UWOP_ALLOC_LARGE, UWOP_ALLOC_SMALL:
				ctx.setRSP(ctx.RSP() + uint64(c.Operand))
			case UWOP_SET_FPREG:
				v, ok := ctx.Get(info.FrameReg())
				if !ok {
					return fn, chain, false, fmt.Errorf("frame register %v: %w", info.FrameReg(), ErrUnknownRegister)
				}
				ctx.setRSP(v - 16*uint64(info.FrameOffset))
			case UWOP_SAVE_NONVOL, UWOP_SAVE_NONVOL_FAR:
				at := frameBase + uint64(c.Operand)
				v, err := read64(u.mem, u.scratch[:], "stack", at)
				if err != nil {
					return fn, chain, false, err
				}
				ctx.restore(c.OpInfo, v, at)
			case UWOP_SAVE_XMM128, UWOP_SAVE_XMM128_FAR:
				at := frameBase + uint64(c.Operand)
				b := u.scratch[:16]
				if err := readFull(u.mem, "stack", at, b); err != nil {
					return fn, chain, false, err
				}
				x := c.OpInfo & 15
				ctx.XMM[x] = Uint128{Lo: binary.LittleEndian.Uint64(b[:]), Hi: binary.LittleEndian.Uint64(b[8:])}
				ctx.XMMKnown |= 1 << x
				ctx.XMMAddr[x] = at
			case UWOP_PUSH_MACHFRAME:
				machine, anyMachine = true, true
				if err := u.machineFrame(ctx, c.OpInfo != 0); err != nil {
					return fn, chain, true, err
				}
			}
			// UWOP_EPILOG and UWOP_SPARE_CODE have no prolog effect.
		}
		if !info.Chain() {
			if !machine {
				if err := u.popReturn(ctx); err != nil {
					return fn, chain, false, err
				}
			}
			return fn, chain, anyMachine, nil
		}
		if chain >= ChainLimit {
			return fn, chain, anyMachine, ErrChainTooDeep
		}
		fn = info.Chained
	}
}

// IsReadError reports whether err is a failed guest memory read.
func IsReadError(err error) bool {
	var re *ReadError
	return errors.As(err, &re)
}
