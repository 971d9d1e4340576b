package check

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"golang.org/x/arch/x86/x86asm"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/peimage"
	"github.com/rspstub/rspstub/unwind"
	"github.com/rspstub/rspstub/unwind/dwarf"
)

// ErrBadInput reports a file that is not a PE32+ image or whose headers
// cannot be read. Other problems (a malformed UNWIND_INFO, an FDE that
// does not decode) are counted in the Result instead.
var ErrBadInput = errors.New("not a readable PE32+ image")

// Options tune a check.
type Options struct {
	// Examples is how many disagreements to keep in Result.Examples
	// (unexplained ones first); 0 means DefaultExamples, negative none.
	Examples int
}

// DefaultExamples is the number of examples kept by default.
const DefaultExamples = 20

// Limits that keep one corrupt image from running away.
const (
	maxImageSize    = 1 << 30
	maxFunctionSize = 1 << 20 // bytes of one function that are decoded
)

// Result is what a check of one file found.
type Result struct {
	File      string `json:"file,omitempty"`
	ImageBase uint64 `json:"image_base"`
	// PdataFunctions and FDEs count the entries of each table.
	PdataFunctions int `json:"pdata_functions"`
	FDEs           int `json:"fdes"`
	// Functions counts .pdata entries that at least one FDE overlaps.
	Functions int `json:"functions"`
	// Positions counts instruction starts compared (inside both ranges).
	Positions     int `json:"positions"`
	Agreements    int `json:"agreements"`
	Disagreements int `json:"disagreements"`
	Unexplained   int `json:"unexplained"`
	// NotCompared counts instruction starts covered by one side only.
	PdataOnlyPositions int `json:"pdata_only_positions"`
	// DecodeStops counts functions whose decoding stopped at a byte that
	// is not an instruction (data in code, padding): the rest is skipped.
	DecodeStops int `json:"decode_stops"`
	// Categories counts disagreements (and per-function errors) by kind.
	Categories []CategoryCount `json:"categories"`
	// Errors are the CFI decoding errors of the file (at most 10).
	Errors   []string       `json:"errors,omitempty"`
	Examples []Disagreement `json:"examples,omitempty"`

	counts map[string]int
}

// CategoryCount is one line of Result.Categories.
type CategoryCount struct {
	Category  string `json:"category"`
	Explained bool   `json:"explained"`
	Count     int    `json:"count"`
	Reason    string `json:"reason"`
}

// Disagreement is one instruction where the two sides differ.
type Disagreement struct {
	FunctionRVA uint32 `json:"function_rva"`
	Offset      uint32 `json:"offset"`
	RVA         uint32 `json:"rva"`
	Instruction string `json:"instruction"`
	Category    string `json:"category"`
	Explained   bool   `json:"explained"`
	Pdata       Side   `json:"pdata"`
	CFI         Side   `json:"cfi"`
	// Code is the code tracker's CFA: "rsp+0x28", or "unknown".
	Code    string   `json:"code"`
	Details []string `json:"details,omitempty"`
}

// Side is what one unwinder says at an instruction.
type Side struct {
	CFA  string `json:"cfa,omitempty"`
	RA   string `json:"ra,omitempty"` // where the return address is read
	Note string `json:"note,omitempty"`
	// Saved lists each callee-saved register restored from memory and
	// its slot, as "rbx=[rsp+0x20]".
	Saved []string `json:"saved,omitempty"`
	Error string   `json:"error,omitempty"`
}

// Category names.
const (
	CatCFIEpilog      = "cfi-epilog-stale"
	CatCFIEpilogWrong = "cfi-epilog-wrong"
	CatGCCEpilog      = "cfi-epilog-gcc-frame-pop"
	CatPdataEpilog    = "pdata-epilog-unrecognised"
	CatCFIProlog      = "cfi-prolog"
	CatPdataProlog    = "pdata-prolog"
	CatCFIBody        = "cfi-body"
	CatPdataBody      = "pdata-body"
	CatBothWrong      = "both-wrong"
	CatUndetermined   = "cfa-undetermined"
	CatCFAExpression  = "cfa-expression"
	CatRASlot         = "ra-slot"
	CatRegRule        = "reg-register-rule"
	CatRegSlot        = "reg-slot"
	CatSetFPEarly     = "pdata-setfp-before-alloc"
	CatRegPdataOnly   = "reg-pdata-only"
	CatRegCFIOnly     = "reg-cfi-only"
	CatRegTiming      = "reg-save-timing"
	CatRegUnknown     = "reg-cfi-unknown"
	CatPdataError     = "pdata-error"
	CatCFIError       = "cfi-error"
	CatPanic          = "panic"
	CatPadding        = "unreachable-padding"
	CatPdataJmpOut    = "pdata-jmp-out-taken-as-epilog"
)

type catInfo struct {
	explained bool
	reason    string
}

var catTable = map[string]catInfo{
	CatCFIEpilogWrong: {false, "PC in an epilog .pdata recognises; the instruction bytes agree with .pdata; the CFI " +
		"row there is neither the body's row nor a known producer bug"},
	CatGCCEpilog: {true, "producer bug (GCC 12, SEH targets): in a function with a frame register, the CFI row " +
		"after the epilog's 'pop <frame register>' (at the final ret) has a wrong rsp offset, while the row " +
		"before it is right; .pdata and the instruction bytes say CFA = rsp+8"},
	CatCFIEpilog: {true, "PC in an epilog .pdata recognises; the instruction bytes agree with .pdata, the CFI row " +
		"still describes the body (the producer emits no CFI for this epilog)"},
	CatPdataEpilog: {true, "the instruction bytes agree with CFI; the code at PC is an epilog in a form the Windows " +
		"rule does not recognise (not add/lea rsp, pops, ret/jmp), so Windows itself unwinds it as the body"},
	CatCFIProlog:     {false, "in the prolog, the instruction bytes agree with .pdata, not with CFI"},
	CatPdataProlog:   {false, "in the prolog, the instruction bytes agree with CFI, not with .pdata's unwind codes"},
	CatCFIBody:       {false, "in the body, the instruction bytes agree with .pdata, not with CFI"},
	CatPdataBody:     {false, "in the body, the instruction bytes agree with CFI, not with .pdata"},
	CatBothWrong:     {false, "the instruction bytes agree with neither side"},
	CatUndetermined:  {false, "the CFAs differ and the code tracker cannot tell which is right"},
	CatCFAExpression: {true, "CFI computes the CFA with a DWARF expression (stack realignment): not comparable"},
	CatRASlot:        {false, "the CFAs agree but the return address is read from different slots"},
	CatRegRule: {true, "CFI keeps a callee-saved register in another register (DW_CFA_register); .pdata " +
		"has no such rule"},
	CatRegSlot: {false, "both restore a callee-saved register, from different stack slots"},
	CatSetFPEarly: {true, "producer bug: UWOP_SET_FPREG runs before later pushes or the stack allocation (push rbp; " +
		"mov rbp, rsp; push...; sub rsp), so the establisher frame is not RSP after the allocation, yet the save " +
		"offsets were written relative to that RSP; the instruction bytes store the register where CFI says, " +
		"and Windows itself restores it from the wrong slot"},
	CatRegPdataOnly: {false, ".pdata restores a callee-saved register from the stack; CFI says it is unchanged"},
	CatRegCFIOnly:   {false, "CFI restores a callee-saved register from the stack; .pdata leaves it unchanged"},
	CatRegTiming: {true, "in a prolog or an epilog, one side already (or still) restores a callee-saved register " +
		"from its slot, the other takes it as unchanged: both are right, because prologs and epilogs only move " +
		"registers between themselves and the stack, so the register and the slot hold the same value"},
	CatPdataJmpOut: {true, "a jmp from the body to another part of the same function that has its own, " +
		"unchained .pdata entry (GCC's .cold partition): the Windows rule takes it for a tail call epilog; the " +
		"bytes and CFI say the frame is still live. Windows itself unwinds this instruction wrongly"},
	CatRegUnknown: {true, "CFI marks a callee-saved register undefined or unrecoverable; .pdata's \"not " +
		"saved\" means unchanged"},
	CatPdataError: {false, "the .pdata step failed"},
	CatCFIError:   {false, "the CFI step failed"},
	CatPanic:      {false, "checking the function panicked (corrupt input)"},
	CatPadding: {true, "alignment padding after the last return: no path reaches it, so neither answer is " +
		"ever used (.pdata covers it with the body's rules, CFI with the row after the epilog)"},
}

// IsExplained reports whether a category is a known, legitimate difference.
func IsExplained(cat string) bool { return catTable[cat].explained }

// Reason returns a category's explanation.
func Reason(cat string) string { return catTable[cat].reason }

func (r *Result) add(cat string) {
	if r.counts == nil {
		r.counts = make(map[string]int)
	}
	r.counts[cat]++
	r.Disagreements++
	if !IsExplained(cat) {
		r.Unexplained++
	}
}

func (r *Result) finish() {
	for c, n := range r.counts {
		r.Categories = append(r.Categories, CategoryCount{Category: c, Explained: IsExplained(c), Count: n, Reason: Reason(c)})
	}
	sort.Slice(r.Categories, func(i, j int) bool {
		a, b := r.Categories[i], r.Categories[j]
		if a.Explained != b.Explained {
			return !a.Explained
		}
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Category < b.Category
	})
	sort.SliceStable(r.Examples, func(i, j int) bool {
		return !r.Examples[i].Explained && r.Examples[j].Explained
	})
}

// image is a PE file mapped at its preferred base.
type image struct {
	base uint64
	mem  []byte
}

// mapPE lays the file's sections out as the loader would.
func mapPE(file []byte) (*image, error) {
	f, err := peimage.ReadFile(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	if f.Magic != peimage.IMAGE_NT_OPTIONAL_HDR64_MAGIC {
		return nil, fmt.Errorf("%w: optional header magic %#x (not PE32+)", ErrBadInput, f.Magic)
	}
	base, size, hdrs := f.ImageBase, uint64(f.SizeOfImage), uint64(f.SizeOfHeaders)
	if size == 0 || size > maxImageSize || base >= regionLow || base+size > regionLow {
		return nil, fmt.Errorf("%w: image base %#x size %#x", ErrBadInput, base, size)
	}
	img := &image{base: base, mem: make([]byte, size)}
	copy(img.mem, file[:min(hdrs, uint64(len(file)), size)])
	for _, s := range f.Sections {
		vsize, va := uint64(s.VirtualSize), uint64(s.VirtualAddress)
		rsize, rptr := uint64(s.SizeOfRawData), uint64(s.PointerToRawData)
		n := rsize
		if vsize != 0 && vsize < n {
			n = vsize
		}
		if rptr >= uint64(len(file)) || va >= size {
			continue
		}
		n = min(n, uint64(len(file))-rptr, size-va)
		copy(img.mem[va:], file[rptr:rptr+n])
	}
	return img, nil
}

// finders looks an FDE up in each table in turn (.eh_frame before
// .debug_frame, as the walker's CFI adapter does).
type finders []*dwarf.Table

func (fs finders) lookup(pc uint64) *dwarf.FDE {
	for _, t := range fs {
		if f, err := t.Lookup(pc); err == nil {
			return f
		}
	}
	return nil
}

// Check compares the .pdata and CFI unwind data of one PE file.
func Check(file []byte, opts Options) (*Result, error) {
	if opts.Examples == 0 {
		opts.Examples = DefaultExamples
	}
	img, err := mapPE(file)
	if err != nil {
		return nil, err
	}
	secs, err := dwarf.PESections(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	res := &Result{ImageBase: img.base}
	var tabs finders
	var cfiErrs []error
	if secs.EHFrame != nil {
		t, _ := dwarf.NewTable(dwarf.NewEHFrame(secs.EHFrame.Data, secs.EHFrame.Addr, secs.Bases))
		tabs = append(tabs, t)
		cfiErrs = append(cfiErrs, t.Errors...)
	}
	if secs.DebugFrame != nil {
		t, _ := dwarf.ParseDebugFrame(secs.DebugFrame.Data, secs.DebugFrame.Addr)
		tabs = append(tabs, t)
		cfiErrs = append(cfiErrs, t.Errors...)
	}
	for _, e := range cfiErrs {
		if len(res.Errors) >= 10 {
			break
		}
		res.Errors = append(res.Errors, e.Error())
	}
	mem := &symMem{base: img.base, img: img.mem}
	mod := unwind.Module{Name: "image", Base: img.base, Size: uint64(len(img.mem))}
	u := unwind.New(mem, []unwind.Module{mod})
	pimg, err := u.Image(img.base)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	res.PdataFunctions = len(pimg.Functions)
	var fdes []*dwarf.FDE
	for _, t := range tabs {
		res.FDEs += len(t.FDEs)
		fdes = append(fdes, t.FDEs...)
	}
	sort.SliceStable(fdes, func(i, j int) bool { return fdes[i].Begin < fdes[j].Begin })
	c := &checker{res: res, opts: opts, img: img, mem: mem, u: u, tabs: tabs}
	for _, fn := range pimg.Functions {
		if fn.BeginAddress == 0 || fn.EndAddress <= fn.BeginAddress {
			continue
		}
		begin, end := img.base+uint64(fn.BeginAddress), img.base+uint64(fn.EndAddress)
		if !overlaps(fdes, begin, end) {
			continue
		}
		res.Functions++
		c.function(fn)
	}
	res.finish()
	return res, nil
}

// overlaps reports whether an FDE overlaps [begin, end).
func overlaps(fdes []*dwarf.FDE, begin, end uint64) bool {
	i := sort.Search(len(fdes), func(i int) bool { return fdes[i].Begin >= end })
	// FDEs starting before end; look back a bounded distance for one that
	// reaches past begin.
	for j, n := i-1, 0; j >= 0 && n < 64; j, n = j-1, n+1 {
		if fdes[j].End > begin && fdes[j].Begin < end {
			return true
		}
		if fdes[j].End <= begin && fdes[j].Begin+0x100000 < begin {
			break
		}
	}
	return false
}

type checker struct {
	res  *Result
	opts Options
	img  *image
	mem  *symMem
	u    *unwind.Unwinder
	tabs finders

	// The function being checked: its start RVA and its UNWIND_INFO's
	// FrameOffset (0 without a frame register).
	fnBegin  uint32
	frameReg uint8
	tr       *tracker
	insts    []inst
	// setFPEarly: the function's UWOP_SET_FPREG precedes a push or the
	// allocation in the prolog (a violation of the Windows prolog rules).
	setFPEarly bool
}

// function compares every instruction start of one .pdata entry.
func (c *checker) function(fn unwind.RuntimeFunction) {
	defer func() {
		if p := recover(); p != nil {
			c.res.add(CatPanic)
			c.example(Disagreement{FunctionRVA: fn.BeginAddress, RVA: fn.BeginAddress, Category: CatPanic,
				Details: []string{fmt.Sprint(p)}})
		}
	}()
	size := min(fn.EndAddress-fn.BeginAddress, maxFunctionSize)
	if uint64(fn.BeginAddress)+uint64(size) > uint64(len(c.img.mem)) {
		c.res.add(CatPdataError)
		return
	}
	code := c.img.mem[fn.BeginAddress : fn.BeginAddress+size]
	insts, stopped := decodeFunction(code)
	if stopped {
		c.res.DecodeStops++
	}
	start := c.img.base + uint64(fn.BeginAddress)
	c.fnBegin, c.frameReg, c.setFPEarly = fn.BeginAddress, 0, false
	if fe, found, err := c.u.LookupFunctionEntry(start); err == nil && found {
		if info, err := fe.Image.UnwindInfo(c.mem, fe.UnwindData); err == nil {
			c.frameReg = info.FrameRegister
			c.setFPEarly = setFPEarly(info)
		}
	}
	tr := track(insts, c.entryState(start))
	c.tr, c.insts = tr, insts
	for i := range insts {
		in := &insts[i]
		pc := start + uint64(in.off)
		fde := c.tabs.lookup(pc)
		if fde == nil {
			c.res.PdataOnlyPositions++
			continue
		}
		c.res.Positions++
		c.position(fn, tr, insts, i, pc, fde)
	}
}

// entryState is the code tracker's state at the first instruction: RSP is
// CFA-8 at a function's entry. An entry that starts inside a frame (a
// chained entry, or GCC's .cold partition, whose unwind codes sit at
// offset 0) starts with a frame only the unwind data describes: when
// .pdata and CFI agree on the CFA at the first byte, the tracker starts
// from that answer (for an ordinary function it is CFA-8 anyway). When
// they disagree there, it keeps CFA-8, so it stays an independent opinion.
func (c *checker) entryState(pc uint64) tstate {
	var s tstate
	s.regs[hwRSP] = aval{avStack, -8}
	fde := c.tabs.lookup(pc)
	fe, found, err := c.u.LookupFunctionEntry(pc)
	if err != nil || !found || fde == nil {
		return s
	}
	ctx := symContext(pc)
	if _, err := c.u.VirtualUnwind(fe, pc, &ctx, unwind.NoEpilog); err != nil {
		return s
	}
	p := decodeSym(ctx.RSP())
	q := c.cfiSide(pc, fde)
	if q.err != nil || p != q.cfa || p.Deref || p.Base < 0 {
		return s
	}
	if p.Base == int(arch.RSP) {
		s.regs[hwRSP] = aval{avStack, -p.Off}
		return s
	}
	// The CFA is based on the frame register (a .cold part of a function
	// with a frame pointer): RSP is 16*FrameOffset below it.
	info, err := fe.Image.UnwindInfo(c.mem, fe.UnwindData)
	if err != nil || info.FrameRegister == 0 || p.Base != int(info.FrameRegister) {
		return s
	}
	s.regs[p.Base] = aval{avStack, -p.Off}
	s.regs[hwRSP] = aval{avStack, -p.Off - 16*int64(info.FrameOffset)}
	return s
}

func symContext(pc uint64) unwind.Context {
	var ctx unwind.Context
	for r := arch.RAX; r <= arch.R15; r++ {
		ctx.Set(r, centre(r))
	}
	for i := range 16 {
		ctx.SetXMM(i, unwind.Uint128{Lo: xmmSentinel(i), Hi: xmmSentinel(i)})
	}
	ctx.Set(arch.RIP, pc)
	return ctx
}

// regView is what one side says about a callee-saved register.
type regView struct {
	kind  regKind
	slot  Sym // regSaved
	other Sym // regOther: the value
}

type regKind uint8

const (
	regSame    regKind = iota // unchanged
	regSaved                  // restored from slot
	regOther                  // some other value (a register rule)
	regUnknown                // undefined or lost
)

// nonvolatile registers compared: the integer ones, then XMM6-15 (16+i).
var nonvolGPRs = [...]arch.Reg{arch.RBX, arch.RBP, arch.RSI, arch.RDI, arch.R12, arch.R13, arch.R14, arch.R15}

const numCompared = len(nonvolGPRs) + 10

func regName(k int) string {
	if k < len(nonvolGPRs) {
		return nonvolGPRs[k].String()
	}
	return fmt.Sprintf("xmm%d", k-len(nonvolGPRs)+6)
}

type sideResult struct {
	err    error
	cfa    Sym
	ra     Sym
	raOK   bool
	regs   [numCompared]regView
	expr   bool // CFI: CFA expression
	prolog bool // .pdata
	epilog bool // .pdata
}

func (c *checker) pdataSide(pc uint64) (sr sideResult) {
	ctx := symContext(pc)
	fe, found, err := c.u.LookupFunctionEntry(pc)
	if err != nil {
		sr.err = err
		return
	}
	if !found {
		sr.err = errors.New("no .pdata entry (leaf)")
		return
	}
	si, err := c.u.VirtualUnwind(fe, pc, &ctx, 0)
	if err != nil {
		sr.err = err
		return
	}
	sr.prolog, sr.epilog = si.InProlog, si.InEpilog
	sr.cfa = decodeSym(ctx.RSP())
	if a, ok := ctx.SavedAt(arch.RIP); ok {
		sr.ra, sr.raOK = decodeSym(a), true
	}
	for k, r := range nonvolGPRs {
		if a, ok := ctx.SavedAt(r); ok {
			sr.regs[k] = regView{kind: regSaved, slot: decodeSym(a)}
		} else if v, ok := ctx.Get(r); !ok {
			sr.regs[k] = regView{kind: regUnknown}
		} else if v != centre(r) {
			sr.regs[k] = regView{kind: regOther, other: decodeSym(v)}
		}
	}
	for i := 6; i < 16; i++ {
		k := len(nonvolGPRs) + i - 6
		if ctx.XMMKnown&(1<<i) == 0 {
			sr.regs[k] = regView{kind: regUnknown}
		} else if a := ctx.XMMAddr[i]; a != 0 {
			sr.regs[k] = regView{kind: regSaved, slot: decodeSym(a)}
		}
	}
	return
}

func (c *checker) cfiSide(pc uint64, fde *dwarf.FDE) (sr sideResult) {
	var regs dwarf.Registers
	for r := arch.RAX; r <= arch.R15; r++ {
		regs.Set(dwarfOf[r], centre(r))
	}
	for i := range 16 {
		regs.Set(dwarf.XMM0+uint64(i), xmmSentinel(i))
		regs.High[dwarf.XMM0+uint64(i)] = xmmSentinel(i)
	}
	regs.Set(dwarf.RA, pc)
	row, err := fde.RowAt(pc)
	if err != nil {
		sr.err = err
		return
	}
	sr.expr = row.CFA.Kind == dwarf.CFAExpr
	fr, err := dwarf.Step(fde, row, &regs, c.mem, dwarf.WindowsPreserved)
	if err != nil {
		sr.err = err
		return
	}
	if fr.End {
		sr.err = errors.New("CFI marks the outermost frame (undefined return address)")
		return
	}
	sr.cfa = decodeSym(fr.CFA)
	if fr.Caller.Saved.Has(dwarf.RA) {
		sr.ra, sr.raOK = decodeSym(fr.Caller.Addr[dwarf.RA]), true
	}
	view := func(d uint64, same uint64) regView {
		cl := &fr.Caller
		switch {
		case cl.Saved.Has(d):
			return regView{kind: regSaved, slot: decodeSym(cl.Addr[d])}
		case !cl.Known.Has(d):
			return regView{kind: regUnknown}
		case cl.Val[d] != same:
			return regView{kind: regOther, other: decodeSym(cl.Val[d])}
		}
		return regView{}
	}
	for k, r := range nonvolGPRs {
		if d := dwarfOf[r]; d != fde.CIE.RAReg {
			sr.regs[k] = view(d, centre(r))
		}
	}
	// A CIE may name another column as the return address (binutils'
	// delay-load thunks use 32, xmm15 in the x86-64 numbering): that
	// column's rule is the return address, not the register's.
	for i := 6; i < 16; i++ {
		if d := dwarf.XMM0 + uint64(i); d != fde.CIE.RAReg {
			sr.regs[len(nonvolGPRs)+i-6] = view(d, xmmSentinel(i))
		}
	}
	return
}

// relate converts a symbolic (non-deref) value to its distance from the
// true CFA, using the code tracker's knowledge of its base register.
func relate(s Sym, st *tstate) (int64, bool) {
	if s.Deref || s.Base < 0 || st == nil {
		return 0, false
	}
	v := st.regs[s.Base]
	if v.kind != avStack {
		return 0, false
	}
	return v.v + s.Off, true
}

// same reports whether two symbolic values are equal, directly or through
// the code tracker (one based on RSP, the other on the frame register).
func same(a, b Sym, st *tstate) bool {
	if a == b {
		return true
	}
	x, ok1 := relate(a, st)
	y, ok2 := relate(b, st)
	return ok1 && ok2 && x == y
}

func (c *checker) position(fn unwind.RuntimeFunction, tr *tracker, insts []inst, i int, pc uint64, fde *dwarf.FDE) {
	in := &insts[i]
	p := c.pdataSide(pc)
	q := c.cfiSide(pc, fde)
	st, reached := tr.at(in.off)
	d := Disagreement{
		FunctionRVA: fn.BeginAddress,
		Offset:      in.off,
		RVA:         uint32(pc - c.img.base),
		Instruction: x86asm.IntelSyntax(in.Inst, pc, nil),
		Code:        "unknown",
		Pdata:       describe(p, true),
		CFI:         describe(q, false),
	}
	if st != nil && st.regs[hwRSP].kind == avStack {
		d.Code = Sym{Base: int(arch.RSP), Off: -st.regs[hwRSP].v}.String()
	}
	cat := ""
	switch {
	case !reached && isPadding(in.Inst):
		if p.err != nil || q.err != nil || !same(p.cfa, q.cfa, nil) || p.regs != q.regs {
			cat = CatPadding
		}
	case p.err != nil:
		cat = CatPdataError
	case q.err != nil:
		cat = CatCFIError
	case !same(p.cfa, q.cfa, st):
		cat = c.classifyCFA(p, q, st, insts, i)
	case p.raOK != q.raOK || !same(p.ra, q.ra, st):
		cat = CatRASlot
	default:
		cat = c.compareRegs(p, q, st, &d)
	}
	if cat == "" {
		c.res.Agreements++
		return
	}
	c.res.add(cat)
	d.Category, d.Explained = cat, IsExplained(cat)
	c.example(d)
}

func (c *checker) example(d Disagreement) {
	d.Explained = IsExplained(d.Category)
	n := c.opts.Examples
	if n < 0 {
		return
	}
	if len(c.res.Examples) < n {
		c.res.Examples = append(c.res.Examples, d)
		return
	}
	// Keep unexplained examples in preference to explained ones.
	if d.Explained {
		return
	}
	for k := len(c.res.Examples) - 1; k >= 0; k-- {
		if c.res.Examples[k].Explained {
			c.res.Examples[k] = d
			return
		}
	}
}

// classifyCFA decides which side the instruction bytes support.
func (c *checker) classifyCFA(p, q sideResult, st *tstate, insts []inst, i int) string {
	if q.expr {
		return CatCFAExpression
	}
	pe, pk := relate(p.cfa, st)
	qe, qk := relate(q.cfa, st)
	if !pk || !qk {
		if p.epilog && pk && pe == 0 {
			return c.cfiEpilog(q, insts, i)
		}
		return CatUndetermined
	}
	switch {
	case pe == 0 && qe != 0:
		switch {
		case p.epilog:
			return c.cfiEpilog(q, insts, i)
		case p.prolog:
			return CatCFIProlog
		}
		return CatCFIBody
	case qe == 0 && pe != 0:
		switch {
		case p.epilog && insts[i].Op == x86asm.JMP:
			return CatPdataJmpOut
		case p.prolog:
			return CatPdataProlog
		case epilogShaped(insts, i):
			return CatPdataEpilog
		}
		return CatPdataBody
	}
	return CatBothWrong
}

// isPadding reports whether an instruction is what assemblers pad with.
func isPadding(in x86asm.Inst) bool {
	return in.Op == x86asm.NOP || in.Op == x86asm.INT && in.Args[0] == x86asm.Imm(3) || in.Op == x86asm.UD2
}

// cfiEpilog tells a CFI row that still describes the body (no epilog CFI)
// from one that describes the epilog wrongly.
func (c *checker) cfiEpilog(q sideResult, insts []inst, i int) string {
	start := i
	for k := 0; start > 0 && k < 24 && releases(insts[start-1].Inst); k++ {
		start--
	}
	base := c.img.base + uint64(c.fnBegin)
	if start < i {
		if fde := c.tabs.lookup(base + uint64(insts[start].off)); fde != nil {
			if b := c.cfiSide(base+uint64(insts[start].off), fde); b.err == nil && b.cfa == q.cfa {
				return CatCFIEpilog
			}
		}
	}
	if c.gccFramePop(q, insts, i) {
		return CatGCCEpilog
	}
	return CatCFIEpilogWrong
}

// gccFramePop recognises GCC's wrong row after popping the frame register:
// a ret (or a tail jmp) right after "pop <frame register>", an rsp-based
// CFI row there,
// and a CFI row before the pop that the code tracker confirms.
func (c *checker) gccFramePop(q sideResult, insts []inst, i int) bool {
	if c.frameReg == 0 || i == 0 || insts[i].Op != x86asm.RET && insts[i].Op != x86asm.JMP || insts[i-1].Op != x86asm.POP ||
		q.cfa.Base != int(arch.RSP) || q.cfa.Deref {
		return false
	}
	if r, _, ok := gpr(regArg(insts[i-1].Args[0])); !ok || r != int(c.frameReg) {
		return false
	}
	pc := c.img.base + uint64(c.fnBegin) + uint64(insts[i-1].off)
	fde := c.tabs.lookup(pc)
	if fde == nil || c.tr == nil {
		return false
	}
	prev := c.cfiSide(pc, fde)
	st, _ := c.tr.at(insts[i-1].off)
	e, ok := relate(prev.cfa, st)
	return prev.err == nil && ok && e == 0
}

func regArg(a x86asm.Arg) x86asm.Reg {
	r, _ := a.(x86asm.Reg)
	return r
}

// setFPEarly reports whether UWOP_SET_FPREG executes before a push or an
// allocation of the same prolog.
func setFPEarly(info *unwind.UnwindInfo) bool {
	fp := -1
	for _, uc := range info.Codes {
		if uc.Op == unwind.UWOP_SET_FPREG {
			fp = int(uc.CodeOffset)
		}
	}
	if fp < 0 {
		return false
	}
	for _, uc := range info.Codes {
		switch uc.Op {
		case unwind.UWOP_PUSH_NONVOL, unwind.UWOP_ALLOC_SMALL, unwind.UWOP_ALLOC_LARGE:
			if int(uc.CodeOffset) > fp {
				return true
			}
		}
	}
	return false
}

// bytesSlotIs reports whether the prolog's first store of compared
// register k (a push, or a mov/movaps/movups into a stack address the
// tracker knows) writes the slot s.
func (c *checker) bytesSlotIs(k int, s Sym, st *tstate) bool {
	want, ok := relate(s, st)
	if !ok {
		return false
	}
	for i, in := range c.insts {
		if i >= 64 {
			break
		}
		at, _ := c.tr.at(in.off)
		if at == nil {
			continue
		}
		switch in.Op {
		case x86asm.PUSH:
			if r, w, ok := gpr(regArg(in.Args[0])); ok && w == 8 && k < len(nonvolGPRs) && r == int(nonvolGPRs[k]) {
				sp := at.regs[hwRSP]
				return sp.kind == avStack && sp.v-8 == want
			}
		case x86asm.MOV, x86asm.MOVUPS, x86asm.MOVAPS, x86asm.MOVDQU, x86asm.MOVDQA, x86asm.MOVUPD, x86asm.MOVAPD:
			m, ok := in.Args[0].(x86asm.Mem)
			if !ok || m.Index != 0 || m.Base == 0 || !storesCompared(in.Args[1], k) {
				continue
			}
			r, w, ok := gpr(m.Base)
			if !ok || w != 8 || at.regs[r].kind != avStack {
				return false
			}
			return at.regs[r].v+disp(m) == want
		}
	}
	return false
}

// storesCompared reports whether a store's source is compared register k.
func storesCompared(a x86asm.Arg, k int) bool {
	r, ok := a.(x86asm.Reg)
	if !ok {
		return false
	}
	if k < len(nonvolGPRs) {
		n, w, ok := gpr(r)
		return ok && w == 8 && n == int(nonvolGPRs[k])
	}
	return r == x86asm.X0+x86asm.Reg(k-len(nonvolGPRs)+6)
}

// releases reports whether an instruction belongs to the frame-releasing
// part of an epilog: a pop, or an add, lea or mov into rsp.
func releases(in x86asm.Inst) bool {
	switch in.Op {
	case x86asm.POP, x86asm.LEAVE:
		return true
	case x86asm.ADD, x86asm.LEA, x86asm.MOV:
		return in.Args[0] == x86asm.RSP
	}
	return false
}

// epilogShaped reports whether the instructions from i on only release
// the frame (add/lea/mov to rsp, pops, leave) before a ret or jmp.
func epilogShaped(insts []inst, i int) bool {
	for k := i; k < len(insts) && k < i+24; k++ {
		in := insts[k].Inst
		switch in.Op {
		case x86asm.RET:
			return true
		case x86asm.JMP:
			return true
		case x86asm.POP, x86asm.LEAVE, x86asm.NOP:
		case x86asm.ADD, x86asm.LEA, x86asm.MOV:
			if in.Args[0] != x86asm.RSP {
				return false
			}
		default:
			return false
		}
	}
	return false
}

// compareRegs compares the callee-saved registers; the CFAs agree.
func (c *checker) compareRegs(p, q sideResult, st *tstate, d *Disagreement) string {
	cat := ""
	for k := range numCompared {
		a, b := p.regs[k], q.regs[k]
		var this string
		switch {
		case a.kind == regSaved && b.kind == regSaved:
			if !same(a.slot, b.slot, st) {
				this = CatRegSlot
				if c.setFPEarly && c.bytesSlotIs(k, b.slot, st) {
					this = CatSetFPEarly
				}
			}
		case a.kind == b.kind && a.kind != regOther:
		case b.kind == regOther && b.other.Base >= 0 && !b.other.Deref:
			this = CatRegRule
		case a.kind == regSame && b.kind == regUnknown:
			this = CatRegUnknown
		case (a.kind == regSame && b.kind == regSaved || a.kind == regSaved && b.kind == regSame) && (p.prolog || p.epilog):
			this = CatRegTiming
		case a.kind == regSame && b.kind == regSaved:
			this = CatRegCFIOnly
		case a.kind == regSaved && b.kind == regSame:
			this = CatRegPdataOnly
		default:
			this = CatRegSlot
		}
		if this == "" {
			continue
		}
		d.Details = append(d.Details, fmt.Sprintf("%s: pdata %s, cfi %s (%s)", regName(k), a, b, this))
		// The first unexplained kind wins.
		if cat == "" || (IsExplained(cat) && !IsExplained(this)) {
			cat = this
		}
	}
	return cat
}

func (v regView) String() string {
	switch v.kind {
	case regSaved:
		return "saved at " + v.slot.String()
	case regOther:
		return "= " + v.other.String()
	case regUnknown:
		return "unknown"
	}
	return "unchanged"
}

func describe(s sideResult, pdata bool) Side {
	if s.err != nil {
		return Side{Error: s.err.Error()}
	}
	out := Side{CFA: s.cfa.String()}
	if s.raOK {
		out.RA = "[" + s.ra.String() + "]"
	}
	switch {
	case pdata && s.epilog:
		out.Note = "epilog"
	case pdata && s.prolog:
		out.Note = "prolog"
	case !pdata && s.expr:
		out.Note = "CFA expression"
	}
	for k := range numCompared {
		if r := s.regs[k]; r.kind == regSaved || r.kind == regOther {
			out.Saved = append(out.Saved, regName(k)+" "+r.String())
		}
	}
	return out
}

// Total sums the counts of several results (examples and errors are not
// carried over). File is empty.
func Total(rs []*Result) *Result {
	t := &Result{counts: make(map[string]int)}
	for _, r := range rs {
		if r == nil {
			continue
		}
		t.PdataFunctions += r.PdataFunctions
		t.FDEs += r.FDEs
		t.Functions += r.Functions
		t.Positions += r.Positions
		t.Agreements += r.Agreements
		t.Disagreements += r.Disagreements
		t.Unexplained += r.Unexplained
		t.PdataOnlyPositions += r.PdataOnlyPositions
		t.DecodeStops += r.DecodeStops
		for _, c := range r.Categories {
			t.counts[c.Category] += c.Count
		}
	}
	t.finish()
	return t
}

// Count returns the number of disagreements of one category.
func (r *Result) Count(cat string) int {
	for _, c := range r.Categories {
		if c.Category == cat {
			return c.Count
		}
	}
	return 0
}
