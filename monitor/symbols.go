package monitor

import (
	"debug/dwarf"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/rspstub/rspstub/internal/demangle"
	"github.com/rspstub/rspstub/internal/peimage"
	"github.com/rspstub/rspstub/unwind"
)

// Limits on what symbol tables may cost; beyond them the rest is ignored.
const (
	maxExports   = 1 << 16
	maxSymbols   = 1 << 20
	maxLineRows  = 1 << 22
	maxNameBytes = 256
)

type symbol struct {
	rva  uint32
	name string
	size uint32 // bytes of code; 0 when unknown (COFF, exports)
}

type lineRow struct {
	rva  uint32
	file string
	line int
	end  bool // end of a sequence: no line from here
}

// modSyms is the symbol information of one module, built once.
type modSyms struct {
	mod   Module
	syms  []symbol  // sorted by rva
	lines []lineRow // sorted by rva
	notes []string  // why a source was unavailable
	// params holds DWARF parameters by function start rva; a trailing
	// "..." marks a variadic function.
	params map[uint32][]param
}

// symbolizer caches symbol tables per module (name, base, size).
type symbolizer struct {
	t       Target
	cache   map[Module]*modSyms
	formats map[Module]unwind.Format
	// funcStart says where the function holding an address begins
	// (.pdata; nil or false: unknown). A symbol before that start names
	// another function.
	funcStart func(addr uint64) (uint64, bool)
	// names caches demangled names ("" when a name is not a C++ one).
	names map[string]string

	// During a batch (one backtrace): the module list read once, the
	// last module's table, and each located address.
	inBatch bool
	mods    []Module
	last    *modSyms
	located map[[2]uint64]Location
}

// batch starts (on) or ends a run of lookups during which the target's
// modules do not change.
func (s *symbolizer) batch(on bool) {
	s.inBatch, s.last = on, nil
	s.mods = nil
	if on {
		s.mods = s.t.Modules()
		if s.located == nil {
			s.located = make(map[[2]uint64]Location)
		}
	}
	clear(s.located)
}

// maxDemangled bounds the demangled-name cache.
const maxDemangled = 1 << 14

// demangled returns a C++ name demangled, or "" when it is not one.
func (s *symbolizer) demangled(name string) string {
	if d, ok := s.names[name]; ok {
		return d
	}
	d, _ := demangle.Name(name)
	if s.names == nil || len(s.names) >= maxDemangled {
		s.names = make(map[string]string)
	}
	s.names[name] = d
	return d
}

func newSymbolizer(t Target) *symbolizer {
	return &symbolizer{t: t, cache: make(map[Module]*modSyms), formats: make(map[Module]unwind.Format)}
}

// module returns the module containing addr.
func (s *symbolizer) module(addr uint64) (Module, bool) {
	mods := s.mods
	if !s.inBatch {
		mods = s.t.Modules()
	}
	for _, m := range mods {
		if addr >= m.Base && addr-m.Base < m.Size {
			return m, true
		}
	}
	return Module{}, false
}

// table returns (building on first use) the symbols of m.
func (s *symbolizer) table(m Module) *modSyms {
	if s.last != nil && s.last.mod == m {
		return s.last
	}
	if ms, ok := s.cache[m]; ok {
		if s.inBatch {
			s.last = ms
		}
		return ms
	}
	ms := &modSyms{mod: m}
	seen := make(map[uint32]bool)
	if s.format(m) == unwind.FormatELF {
		ms.readELF(s.t)
		s.cache[m] = ms
		return ms
	}
	if f, ok := s.t.(ModuleFiler); ok && !m.Synthetic {
		if data, err := f.ModuleFile(m); err != nil {
			ms.notes = append(ms.notes, fmt.Sprintf("module file: %v", err))
		} else if err := ms.readFile(data, seen); err != nil {
			ms.notes = append(ms.notes, err.Error())
		}
	}
	if err := ms.readExports(s.t, seen); err != nil {
		ms.notes = append(ms.notes, fmt.Sprintf("exports: %v", err))
	}
	sort.SliceStable(ms.syms, func(i, j int) bool { return ms.syms[i].rva < ms.syms[j].rva })
	sort.SliceStable(ms.lines, func(i, j int) bool { return ms.lines[i].rva < ms.lines[j].rva })
	s.cache[m] = ms
	return ms
}

// Location is what the symbolizer knows about an address.
type Location struct {
	Module    string // "" outside every module
	ModBase   uint64
	RVA       uint64
	Symbol    string // "" when unknown; as in the symbol table (mangled)
	Display   string // Symbol demangled, or Symbol itself
	SymOffset uint64
	File      string // "" when unknown
	Line      int
}

// locate describes addr. lookup is the address used to find the function
// and line (a return address minus one for caller frames).
func (s *symbolizer) locate(addr, lookup uint64) Location {
	if !s.inBatch {
		return s.find(addr, lookup)
	}
	key := [2]uint64{addr, lookup}
	if loc, ok := s.located[key]; ok {
		return loc
	}
	loc := s.find(addr, lookup)
	s.located[key] = loc
	return loc
}

func (s *symbolizer) find(addr, lookup uint64) Location {
	m, ok := s.module(lookup)
	if !ok {
		return Location{}
	}
	loc := Location{Module: m.Name, ModBase: m.Base, RVA: addr - m.Base}
	ms := s.table(m)
	rva := uint32(lookup - m.Base)
	if i := sort.Search(len(ms.syms), func(i int) bool { return ms.syms[i].rva > rva }); i > 0 {
		if sym := ms.syms[i-1]; s.within(m, sym, lookup) {
			loc.Symbol, loc.SymOffset = sym.name, addr-(m.Base+uint64(sym.rva))
			loc.Display = s.demangled(sym.name)
		}
	}
	if i := sort.Search(len(ms.lines), func(i int) bool { return ms.lines[i].rva > rva }); i > 0 {
		if r := ms.lines[i-1]; !r.end && r.line > 0 {
			loc.File, loc.Line = r.file, r.line
		}
	}
	return loc
}

// within reports whether addr lies in the function that sym names: inside
// its size when the symbol table or DWARF gives one, otherwise not past
// the start of the function that holds addr (.pdata), which would make
// it another, unnamed function. The emulator's own modules are exempt:
// each API stub there is two functions under one name.
func (s *symbolizer) within(m Module, sym symbol, addr uint64) bool {
	rva := uint32(addr - m.Base)
	if sym.size != 0 {
		return rva-sym.rva < sym.size
	}
	if m.Synthetic || s.funcStart == nil {
		return true
	}
	start, ok := s.funcStart(addr)
	return !ok || m.Base+uint64(sym.rva) >= start
}

// shortModule is a module name without its .dll/.exe extension, as WinDbg
// shows it.
func shortModule(name string) string {
	lower := strings.ToLower(name)
	for _, ext := range []string{".dll", ".exe", ".sys"} {
		if strings.HasSuffix(lower, ext) {
			return name[:len(name)-len(ext)]
		}
	}
	return name
}

// Name is the symbol as shown: demangled when it is a C++ name.
func (l Location) Name() string {
	if l.Display != "" {
		return l.Display
	}
	return l.Symbol
}

// String renders a location as module!symbol+0xoff [file @ line].
func (l Location) String() string {
	if l.Module == "" {
		return ""
	}
	var b strings.Builder
	b.WriteString(shortModule(l.Module))
	if l.Symbol != "" {
		b.WriteString("!" + l.Name())
		if l.SymOffset != 0 {
			fmt.Fprintf(&b, "+%#x", l.SymOffset)
		}
	} else {
		fmt.Fprintf(&b, "+%#x", l.RVA)
	}
	if l.File != "" {
		fmt.Fprintf(&b, " [%s @ %d]", l.File, l.Line)
	}
	return b.String()
}

// resolve finds the address of "symbol", "module!symbol" or "module!"
// (the module base), with an optional "+offset".
func (s *symbolizer) resolve(name string) (uint64, error) {
	var off uint64
	if i := strings.LastIndexByte(name, '+'); i > 0 {
		v, err := parseNumber(name[i+1:])
		if err != nil {
			return 0, fmt.Errorf("bad offset in %q: %w", name, err)
		}
		name, off = name[:i], v
	}
	modName, sym, qualified := strings.Cut(name, "!")
	if !qualified {
		sym, modName = modName, ""
	}
	if sym == "" && !qualified {
		return 0, errors.New("empty symbol name")
	}
	found := false
	for _, m := range s.t.Modules() {
		if qualified && !strings.EqualFold(m.Name, modName) && !strings.EqualFold(shortModule(m.Name), modName) {
			continue
		}
		found = true
		if sym == "" {
			return m.Base + off, nil
		}
		ms := s.table(m)
		for _, e := range ms.syms {
			if e.name == sym {
				return m.Base + uint64(e.rva) + off, nil
			}
		}
		// A C++ name as it is shown: "ns::Widget::poke(int) const", or
		// without its parameters when that names one function.
		var hits []uint64
		for _, e := range ms.syms {
			if len(e.name) < 2 || (e.name[0] != '?' && e.name[:2] != "_Z") {
				continue
			}
			d := s.demangled(e.name)
			if d == "" {
				continue
			}
			if d == sym {
				return m.Base + uint64(e.rva) + off, nil
			}
			if base, _, ok := strings.Cut(d, "("); ok && (base == sym || strings.HasSuffix(base, " "+sym)) {
				hits = append(hits, m.Base+uint64(e.rva))
			}
		}
		if len(hits) == 1 {
			return hits[0] + off, nil
		}
		if len(hits) > 1 {
			return 0, fmt.Errorf("%q names %d functions: give the parameters too (as monitor bt shows them)", sym, len(hits))
		}
	}
	if qualified && !found {
		return 0, &NotLoadedError{Module: modName}
	}
	return 0, fmt.Errorf("no symbol %q", name)
}

// readFile adds COFF symbols and DWARF lines from the module's file.
func (ms *modSyms) readFile(data []byte, seen map[uint32]bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("module file of %s: malformed (%v)", ms.mod.Name, r)
		}
	}()
	f, err := peimage.ReadDebug(data, maxSymbols)
	if err != nil {
		return fmt.Errorf("module file of %s: %w", ms.mod.Name, err)
	}
	defer f.Close()
	imageBase := f.ImageBase
	if f.Magic != peimage.IMAGE_NT_OPTIONAL_HDR64_MAGIC {
		imageBase = 0
	}
	isCode := func(sec int) (*peimage.Section, bool) {
		if sec < 1 || sec > len(f.Sections) {
			return nil, false
		}
		s := &f.Sections[sec-1]
		return s, s.Characteristics&(peimage.IMAGE_SCN_MEM_EXECUTE|peimage.IMAGE_SCN_CNT_CODE) != 0
	}
	for _, sym := range f.Symbols {
		sec, ok := isCode(int(sym.SectionNumber))
		if !ok || sym.Name == "" || strings.HasPrefix(sym.Name, ".") {
			continue
		}
		isFunc := sym.Type&0xf0 == 0x20
		external := sym.StorageClass == 2 // IMAGE_SYM_CLASS_EXTERNAL
		if !isFunc && !external {
			continue
		}
		rva := sec.VirtualAddress + sym.Value
		if seen[rva] {
			continue
		}
		seen[rva] = true
		ms.syms = append(ms.syms, symbol{rva: rva, name: sym.Name})
	}
	d, err := f.DWARF()
	if err != nil {
		return nil // no debug information: not worth a note
	}
	ms.readLines(d, imageBase)
	ms.readParams(d, imageBase)
	return nil
}

// readParams collects the formal parameters of each DWARF subprogram
// that has a low pc.
func (ms *modSyms) readParams(d *dwarf.Data, imageBase uint64) {
	ms.params = make(map[uint32][]param)
	r := d.Reader()
	depth, fnDepth := 0, -1
	var fnRVA uint32
	var names []param
	sizes := make(map[dwarf.Offset]int64)
	typeSize := func(e *dwarf.Entry) int64 {
		off, ok := e.Val(dwarf.AttrType).(dwarf.Offset)
		if !ok {
			return 0
		}
		if sz, ok := sizes[off]; ok {
			return sz
		}
		sz := int64(0)
		if t, err := d.Type(off); err == nil {
			sz = t.Size()
		}
		sizes[off] = sz
		return sz
	}
	flush := func() {
		if fnDepth >= 0 {
			ms.params[fnRVA] = names
		}
		fnDepth, names = -1, nil
	}
	for n := 0; n < maxSymbols*4; n++ {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag == 0 {
			depth--
			if depth <= fnDepth {
				flush()
			}
			continue
		}
		switch {
		case e.Tag == dwarf.TagSubprogram && fnDepth < 0:
			if lo, ok := e.Val(dwarf.AttrLowpc).(uint64); ok && lo >= imageBase && lo-imageBase < 1<<32 && e.Children {
				fnDepth, fnRVA, names = depth, uint32(lo-imageBase), []param{}
			} else if ok && lo >= imageBase && lo-imageBase < 1<<32 {
				ms.params[uint32(lo-imageBase)] = []param{}
			}
		case e.Tag == dwarf.TagFormalParameter && fnDepth >= 0 && depth == fnDepth+1:
			name, _ := e.Val(dwarf.AttrName).(string)
			if name == "" {
				name = "?"
			}
			names = append(names, param{name: name, size: typeSize(e)})
		case e.Tag == dwarf.TagUnspecifiedParameters && fnDepth >= 0 && depth == fnDepth+1:
			names = append(names, param{name: "..."})
		}
		if e.Children {
			depth++
		}
	}
	flush()
}

// param is one formal parameter from DWARF.
type param struct {
	name string
	size int64 // bytes of its type; 0 when unknown
}

// params returns the DWARF parameters of the function starting at addr,
// if the module's debug information describes it.
func (s *symbolizer) params(addr uint64) ([]param, bool) {
	m, ok := s.module(addr)
	if !ok {
		return nil, false
	}
	p, ok := s.table(m).params[uint32(addr-m.Base)]
	return p, ok
}

func (ms *modSyms) readLines(d *dwarf.Data, imageBase uint64) {
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			return
		}
		if e.Tag != dwarf.TagCompileUnit {
			r.SkipChildren()
			continue
		}
		lr, err := d.LineReader(e)
		r.SkipChildren()
		if err != nil || lr == nil {
			continue
		}
		var le dwarf.LineEntry
		for len(ms.lines) < maxLineRows {
			if err := lr.Next(&le); err != nil {
				break
			}
			if le.Address < imageBase || le.Address-imageBase >= 1<<32 {
				continue
			}
			row := lineRow{rva: uint32(le.Address - imageBase), line: le.Line, end: le.EndSequence}
			if n := len(ms.lines); !le.IsStmt && !le.EndSequence && n > 0 && ms.lines[n-1].rva == row.rva && !ms.lines[n-1].end {
				// Several rows at one address (GCC's location views): the
				// statement row is the line, as GDB shows it.
				continue
			}
			if le.File != nil {
				row.file = le.File.Name
			}
			ms.lines = append(ms.lines, row)
		}
	}
}

// readExports adds the export table, read from guest memory (this works
// for synthesized modules and for images without a file).
func (ms *modSyms) readExports(t Target, seen map[uint32]bool) error {
	base := ms.mod.Base
	h, err := peimage.ReadNTHeaders(t, base)
	if err != nil {
		if errors.Is(err, peimage.ErrNotPE) {
			return errors.New("no PE header")
		}
		return err
	}
	if h.Magic != peimage.IMAGE_NT_OPTIONAL_HDR64_MAGIC {
		return errors.New("not a PE32+ image")
	}
	et, err := h.ReadExportTable(t, base)
	if err != nil {
		return fmt.Errorf("export directory: %w", err)
	}
	for _, n := range et.Names {
		if int(n.Index) >= len(et.Functions) {
			continue
		}
		rva := et.Functions[n.Index]
		if rva == 0 || et.IsForwarder(rva) || uint64(rva) >= ms.mod.Size {
			continue // forwarder or bogus
		}
		if len(n.Name) > maxNameBytes {
			n.Name = n.Name[:maxNameBytes]
		}
		if n.Name == "" || seen[rva] {
			continue
		}
		seen[rva] = true
		ms.syms = append(ms.syms, symbol{rva: rva, name: n.Name})
	}
	return nil
}

// readFull reads len(p) bytes at addr or says how many were readable.
func readFull(t Target, addr uint64, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	n, err := t.ReadMemory(addr, p)
	if n >= len(p) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("memory at %#x: %d of %d bytes readable: %w", addr, max(n, 0), len(p), err)
	}
	return fmt.Errorf("memory at %#x: %d of %d bytes readable", addr, max(n, 0), len(p))
}

func read64(t Target, addr uint64) (uint64, error) {
	var b [8]byte
	if err := readFull(t, addr, b[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// NotLoadedError is a MODULE!symbol whose module is not (yet) loaded.
type NotLoadedError struct{ Module string }

func (e *NotLoadedError) Error() string { return fmt.Sprintf("no module %q is loaded", e.Module) }
