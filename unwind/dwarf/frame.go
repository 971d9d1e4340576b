package dwarf

import (
	"sort"
	"strings"
	"sync"
)

// Kind says which of the two CFI section formats a Section holds.
type Kind uint8

const (
	// EHFrame is .eh_frame (LSB 5.0): CIE id 0, CIE pointers relative to
	// the pointer field, DW_EH_PE pointer encodings, zero terminator.
	EHFrame Kind = iota
	// DebugFrame is .debug_frame (DWARF 5 section 6.4.1): CIE id all
	// ones, CIE pointers as section offsets, target-sized addresses.
	DebugFrame
)

func (k Kind) String() string {
	if k == DebugFrame {
		return ".debug_frame"
	}
	return ".eh_frame"
}

// Bases are the base addresses DW_EH_PE_textrel and DW_EH_PE_datarel
// pointers are relative to. GCC and clang never emit either for x86-64
// .eh_frame; they exist for other targets and hand-written CFI.
type Bases struct {
	Text uint64
	Data uint64
}

// Section is one CFI section: its bytes and the address its first byte
// has in the target (the base of DW_EH_PE_pcrel pointers). The bytes may
// come from a file or from guest memory. A Section caches decoded CIEs and
// is safe for concurrent use once built.
type Section struct {
	Kind  Kind
	Data  []byte
	Addr  uint64
	Bases Bases
	// AddressSize is the size of an address (DW_EH_PE_absptr, and the
	// initial location in .debug_frame CIEs of versions 1 and 3): 8 unless
	// set.
	AddressSize int
	// Mem, when set, reads DW_EH_PE_indirect pointers. Without it an
	// indirect FDE address is an error (ErrIndirect) and an indirect
	// personality or LSDA is reported as the address of its pointer.
	Mem Memory

	mu   sync.Mutex
	cies map[int64]*CIE
}

// NewEHFrame returns the .eh_frame section data loaded at addr.
func NewEHFrame(data []byte, addr uint64, bases Bases) *Section {
	return &Section{Kind: EHFrame, Data: data, Addr: addr, Bases: bases, AddressSize: 8}
}

// NewDebugFrame returns the .debug_frame section data loaded at addr
// (addr matters only for error messages: .debug_frame has no pc-relative
// pointers).
func NewDebugFrame(data []byte, addr uint64) *Section {
	return &Section{Kind: DebugFrame, Data: data, Addr: addr, AddressSize: 8}
}

// CIE is a Common Information Entry.
type CIE struct {
	Offset       int64 // of its length field, in the section
	Version      uint8
	Augmentation string
	AddressSize  uint8
	SegmentSize  uint8
	CodeAlign    uint64
	DataAlign    int64
	RAReg        uint64 // the return address column

	HasAugData   bool  // augmentation starts with 'z'
	FDEEncoding  uint8 // 'R' (DW_EH_PE_absptr by default)
	LSDAEncoding uint8 // 'L' (DW_EH_PE_omit by default)
	// Personality is the 'P' routine's address, or, when
	// PersonalityIndirect, the address of a pointer to it.
	Personality         uint64
	HasPersonality      bool
	PersonalityIndirect bool
	Signal              bool // 'S': FDEs using this CIE describe signal frames

	Instructions []byte // initial instructions
	instrAddr    uint64 // target address of Instructions[0]
	is64         bool   // 64-bit DWARF format
	sec          *Section
}

// FDE is a Frame Description Entry: the CFA program for [Begin, End).
type FDE struct {
	Offset int64 // of its length field, in the section
	CIE    *CIE
	Begin  uint64
	End    uint64
	// LSDA is the language-specific data area, or with LSDAIndirect the
	// address of a pointer to it.
	LSDA         uint64
	HasLSDA      bool
	LSDAIndirect bool

	Instructions []byte
	instrAddr    uint64
}

// Covers reports whether pc lies in [Begin, End).
func (f *FDE) Covers(pc uint64) bool { return pc >= f.Begin && pc < f.End }

// entry is the common header of a CIE or an FDE.
type entry struct {
	off     int64 // of the length field
	end     int   // one past the last byte
	body    int   // first byte after the id / CIE pointer
	is64    bool
	isCIE   bool
	cieOff  int64 // for FDEs
	zero    bool  // a zero length: terminator (.eh_frame) or padding
	idField int   // offset of the id / CIE pointer field
}

func (s *Section) ferr(entryOff int64, off int, err error) error {
	return &FormatError{Section: s.Kind.String(), Entry: entryOff, Offset: int64(off), Err: err}
}

func (s *Section) addrSize() int {
	if s.AddressSize == 4 {
		return 4
	}
	return 8
}

// header decodes the length and id of the entry at off.
func (s *Section) header(off int64) (entry, error) {
	e := entry{off: off}
	if off < 0 || off >= int64(len(s.Data)) {
		return e, s.ferr(off, int(off), ErrTruncated)
	}
	c := cursor{B: s.Data, Off: int(off)}
	length := uint64(c.U32())
	if length == 0xffffffff {
		length = c.U64()
		e.is64 = true
	}
	if c.Err != nil {
		return e, s.ferr(off, c.Off, c.Err)
	}
	if length == 0 {
		e.zero = true
		e.end = c.Off
		return e, nil
	}
	if length > uint64(c.Left()) {
		return e, s.ferr(off, c.Off, ErrLength)
	}
	e.end = c.Off + int(length)
	c.B = s.Data[:e.end]
	e.idField = c.Off
	// The id is offset-sized in .debug_frame; in .eh_frame the LSB gives
	// the CIE id and CIE pointer 4 bytes even after an extended length
	// (LLVM agrees; binutils reads 8).
	var id uint64
	if e.is64 && s.Kind == DebugFrame {
		id = c.U64()
	} else {
		id = uint64(c.U32())
	}
	if c.Err != nil {
		return e, s.ferr(off, c.Off, ErrLength)
	}
	e.body = c.Off
	switch s.Kind {
	case EHFrame:
		if id == 0 {
			e.isCIE = true
		} else {
			e.cieOff = int64(e.idField) - int64(id)
		}
	default:
		if (!e.is64 && id == 0xffffffff) || (e.is64 && id == ^uint64(0)) {
			e.isCIE = true
		} else {
			if id > uint64(len(s.Data)) {
				return e, s.ferr(off, e.idField, ErrCIEPointer)
			}
			e.cieOff = int64(id)
		}
	}
	return e, nil
}

// CIEAt decodes (or returns the cached) CIE whose length field is at
// section offset off.
func (s *Section) CIEAt(off int64) (*CIE, error) {
	s.mu.Lock()
	if c, ok := s.cies[off]; ok {
		s.mu.Unlock()
		return c, nil
	}
	s.mu.Unlock()
	e, err := s.header(off)
	if err != nil {
		return nil, err
	}
	if e.zero || !e.isCIE {
		return nil, s.ferr(off, int(off), ErrCIEPointer)
	}
	cie, err := s.parseCIE(e)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.cies == nil {
		s.cies = make(map[int64]*CIE)
	}
	s.cies[off] = cie
	s.mu.Unlock()
	return cie, nil
}

func (s *Section) parseCIE(e entry) (*CIE, error) {
	c := cursor{B: s.Data[:e.end], Off: e.body}
	cie := &CIE{Offset: e.off, is64: e.is64, sec: s, LSDAEncoding: DW_EH_PE_omit, FDEEncoding: DW_EH_PE_absptr}
	cie.Version = c.U8()
	switch cie.Version {
	case 1, 3, 4:
	default:
		if c.Err == nil {
			return nil, s.ferr(e.off, c.Off-1, ErrVersion)
		}
	}
	cie.Augmentation = c.CString()
	aug := cie.Augmentation
	cie.AddressSize = uint8(s.addrSize())
	if strings.HasPrefix(aug, "eh") {
		// Old GCC: a pointer to exception data follows the string.
		uN(&c, s.addrSize())
		aug = aug[2:]
	}
	if cie.Version == 4 {
		cie.AddressSize = c.U8()
		cie.SegmentSize = c.U8()
		if c.Err == nil && ((cie.AddressSize != 4 && cie.AddressSize != 8) || cie.SegmentSize > 8) {
			return nil, s.ferr(e.off, c.Off-2, ErrAddressSize)
		}
	}
	cie.CodeAlign = c.ULEB()
	cie.DataAlign = c.SLEB()
	if cie.Version == 1 {
		cie.RAReg = uint64(c.U8())
	} else {
		cie.RAReg = c.ULEB()
	}
	if c.Err != nil {
		return nil, s.ferr(e.off, c.Off, c.Err)
	}
	if strings.HasPrefix(aug, "z") {
		cie.HasAugData = true
		n := c.ULEB()
		dataStart := c.Off
		data := c.Bytes(n)
		if c.Err != nil {
			return nil, s.ferr(e.off, c.Off, ErrAugmentation)
		}
		if err := s.parseAugData(cie, aug[1:], data, dataStart); err != nil {
			return nil, s.ferr(e.off, dataStart, err)
		}
	} else if aug != "" {
		// Without 'z' we cannot know how long the unknown data is.
		return nil, s.ferr(e.off, c.Off, ErrAugmentation)
	}
	cie.Instructions = s.Data[c.Off:e.end:e.end]
	cie.instrAddr = s.Addr + uint64(c.Off)
	return cie, nil
}

// parseAugData reads the 'z' augmentation data of a CIE. An unknown letter
// stops the walk: 'z' gave the data's length, so the rest is skipped (as
// libgcc does).
func (s *Section) parseAugData(cie *CIE, letters string, data []byte, dataStart int) error {
	c := cursor{B: data}
	for i := 0; i < len(letters); i++ {
		switch letters[i] {
		case 'L':
			cie.LSDAEncoding = c.U8()
			if !validEncoding(cie.LSDAEncoding) {
				return ErrEncoding
			}
		case 'R':
			cie.FDEEncoding = c.U8()
			if !validEncoding(cie.FDEEncoding) || cie.FDEEncoding == DW_EH_PE_omit {
				return ErrEncoding
			}
		case 'P':
			enc := c.U8()
			if c.Err != nil {
				return c.Err
			}
			if !validEncoding(enc) || enc == DW_EH_PE_omit {
				return ErrEncoding
			}
			v, ind, err := s.pointer(&c, enc, s.Addr+uint64(dataStart), 0, false)
			if err != nil {
				return err
			}
			cie.Personality, cie.PersonalityIndirect, cie.HasPersonality = v, ind, true
		case 'S':
			cie.Signal = true
		case 'B', 'G':
			// AArch64 BTI and MTE markers: no data.
		default:
			return c.Err
		}
	}
	return c.Err
}

func validEncoding(enc uint8) bool {
	if enc == DW_EH_PE_omit {
		return true
	}
	switch enc & 0x0f {
	case DW_EH_PE_absptr, DW_EH_PE_uleb128, DW_EH_PE_udata2, DW_EH_PE_udata4, DW_EH_PE_udata8,
		DW_EH_PE_signed, DW_EH_PE_sleb128, DW_EH_PE_sdata2, DW_EH_PE_sdata4, DW_EH_PE_sdata8:
	default:
		return false
	}
	return enc&0x70 <= DW_EH_PE_aligned
}

// pointer decodes one DW_EH_PE-encoded value at c. base is the target
// address of c.B[0] (for pcrel); fn the function start (for funcrel, when
// haveFn). An indirect pointer is read through s.Mem when there is one;
// otherwise the address of the pointer is returned with indirect set.
func (s *Section) pointer(c *cursor, enc uint8, base, fn uint64, haveFn bool) (v uint64, indirect bool, err error) {
	return decodePointer(c, enc, base, s.addrSize(), s.Bases, fn, haveFn, s.Mem)
}

func decodePointer(c *cursor, enc uint8, base uint64, addrSize int, bases Bases, fn uint64, haveFn bool, mem Memory) (uint64, bool, error) {
	if enc == DW_EH_PE_omit || !validEncoding(enc) {
		return 0, false, ErrEncoding
	}
	app := enc & 0x70
	if app == DW_EH_PE_aligned {
		// Aligned to the address size in the target's address space.
		a := uint64(addrSize)
		pos := base + uint64(c.Off)
		if pad := (a - pos%a) % a; pad > 0 {
			c.Bytes(pad)
		}
	}
	field := base + uint64(c.Off)
	var v uint64
	switch enc & 0x0f {
	case DW_EH_PE_absptr:
		v = uN(c, addrSize)
	case DW_EH_PE_signed:
		v = uN(c, addrSize)
		if addrSize == 4 {
			v = uint64(int64(int32(v)))
		}
	case DW_EH_PE_uleb128:
		v = c.ULEB()
	case DW_EH_PE_udata2:
		v = uint64(c.U16())
	case DW_EH_PE_udata4:
		v = uint64(c.U32())
	case DW_EH_PE_udata8:
		v = c.U64()
	case DW_EH_PE_sleb128:
		v = uint64(c.SLEB())
	case DW_EH_PE_sdata2:
		v = uint64(int64(int16(c.U16())))
	case DW_EH_PE_sdata4:
		v = uint64(int64(int32(c.U32())))
	case DW_EH_PE_sdata8:
		v = c.U64()
	}
	if c.Err != nil {
		return 0, false, c.Err
	}
	switch app {
	case DW_EH_PE_pcrel:
		v += field
	case DW_EH_PE_textrel:
		v += bases.Text
	case DW_EH_PE_datarel:
		v += bases.Data
	case DW_EH_PE_funcrel:
		if !haveFn {
			return 0, false, ErrEncoding
		}
		v += fn
	}
	if addrSize == 4 {
		v &= 0xffffffff
	}
	if enc&DW_EH_PE_indirect != 0 {
		if mem == nil {
			return v, true, nil
		}
		p, err := readUint(mem, "indirect pointer", v, addrSize)
		if err != nil {
			return 0, false, err
		}
		return p, false, nil
	}
	return v, false, nil
}

// FDEAt decodes the FDE whose length field is at section offset off.
func (s *Section) FDEAt(off int64) (*FDE, error) {
	e, err := s.header(off)
	if err != nil {
		return nil, err
	}
	if e.zero || e.isCIE {
		return nil, s.ferr(off, int(off), ErrNoFDE)
	}
	return s.parseFDE(e)
}

func (s *Section) parseFDE(e entry) (*FDE, error) {
	if e.cieOff < 0 || e.cieOff >= int64(len(s.Data)) {
		return nil, s.ferr(e.off, e.idField, ErrCIEPointer)
	}
	if ce, err := s.header(e.cieOff); err != nil || ce.zero || !ce.isCIE {
		return nil, s.ferr(e.off, e.idField, ErrCIEPointer)
	}
	cie, err := s.CIEAt(e.cieOff)
	if err != nil {
		return nil, err // the CIE's own error, at the CIE
	}
	if cie.is64 != e.is64 && s.Kind == DebugFrame {
		return nil, s.ferr(e.off, e.idField, ErrCIEPointer)
	}
	c := cursor{B: s.Data[:e.end], Off: e.body}
	f := &FDE{Offset: e.off, CIE: cie}
	if cie.SegmentSize > 0 {
		c.Bytes(uint64(cie.SegmentSize))
	}
	asz := int(cie.AddressSize)
	var length uint64
	if s.Kind == DebugFrame {
		f.Begin = uN(&c, asz)
		length = uN(&c, asz)
		if c.Err != nil {
			return nil, s.ferr(e.off, c.Off, c.Err)
		}
	} else {
		var ind bool
		pos := c.Off
		f.Begin, ind, err = decodePointer(&c, cie.FDEEncoding, s.Addr, asz, s.Bases, 0, false, s.Mem)
		if err != nil {
			return nil, s.ferr(e.off, pos, err)
		}
		if ind {
			return nil, s.ferr(e.off, pos, ErrIndirect)
		}
		pos = c.Off
		length, _, err = decodePointer(&c, cie.FDEEncoding&0x0f, s.Addr, asz, s.Bases, 0, false, nil)
		if err != nil {
			return nil, s.ferr(e.off, pos, err)
		}
	}
	f.End = f.Begin + length
	if asz == 4 {
		f.End &= 0xffffffff
	}
	if f.End < f.Begin {
		return nil, s.ferr(e.off, c.Off, ErrLength)
	}
	if cie.HasAugData {
		n := c.ULEB()
		start := c.Off
		data := c.Bytes(n)
		if c.Err != nil {
			return nil, s.ferr(e.off, c.Off, ErrAugmentation)
		}
		if cie.LSDAEncoding != DW_EH_PE_omit {
			ac := cursor{B: data}
			v, ind, err := decodePointer(&ac, cie.LSDAEncoding, s.Addr+uint64(start), asz, s.Bases, f.Begin, true, s.Mem)
			if err != nil {
				return nil, s.ferr(e.off, start+ac.Off, err)
			}
			f.LSDA, f.LSDAIndirect, f.HasLSDA = v, ind, true
		}
	}
	f.Instructions = s.Data[c.Off:e.end:e.end]
	f.instrAddr = s.Addr + uint64(c.Off)
	return f, nil
}

// Walk decodes every entry in order and returns the FDEs that decoded and
// one error per entry that did not. A length that cannot be trusted ends
// the walk (the next entry's position is unknown); a zero length ends an
// .eh_frame (its terminator) and is skipped in a .debug_frame.
func (s *Section) Walk() ([]*FDE, []error) {
	var fdes []*FDE
	var errs []error
	off := 0
	// Each iteration consumes at least four bytes.
	for off+4 <= len(s.Data) {
		e, err := s.header(int64(off))
		if err != nil {
			errs = append(errs, err)
			break
		}
		if e.zero {
			if s.Kind == EHFrame {
				break
			}
			off = e.end
			continue
		}
		if e.isCIE {
			if _, err := s.CIEAt(e.off); err != nil {
				errs = append(errs, err)
			}
		} else if f, err := s.parseFDE(e); err != nil {
			errs = append(errs, err)
		} else {
			fdes = append(fdes, f)
		}
		off = e.end
	}
	return fdes, errs
}

// Table is every FDE of a section, sorted by start address.
type Table struct {
	Section *Section
	FDEs    []*FDE
	// Errors has one entry per CIE or FDE that did not decode.
	Errors []error
}

// NewTable decodes every entry of s. It returns a Table even when some
// entries fail; err is then the first of Table.Errors.
func NewTable(s *Section) (*Table, error) {
	fdes, errs := s.Walk()
	sort.SliceStable(fdes, func(i, j int) bool { return fdes[i].Begin < fdes[j].Begin })
	t := &Table{Section: s, FDEs: fdes, Errors: errs}
	if len(errs) > 0 {
		return t, errs[0]
	}
	return t, nil
}

// ParseEHFrame decodes an .eh_frame section loaded at addr.
func ParseEHFrame(data []byte, addr uint64, bases Bases) (*Table, error) {
	return NewTable(NewEHFrame(data, addr, bases))
}

// ParseDebugFrame decodes a .debug_frame section.
func ParseDebugFrame(data []byte, addr uint64) (*Table, error) {
	return NewTable(NewDebugFrame(data, addr))
}

// overlapScan bounds how far Lookup looks back past the nearest FDE for an
// earlier one that still covers the PC (FDEs do not normally overlap; a
// .debug_frame of discarded sections may hold empty ones).
const overlapScan = 16

// Lookup returns the FDE covering pc, by binary search.
func (t *Table) Lookup(pc uint64) (*FDE, error) {
	i := sort.Search(len(t.FDEs), func(i int) bool { return t.FDEs[i].Begin > pc })
	for j, n := i-1, 0; j >= 0 && n < overlapScan; j, n = j-1, n+1 {
		if t.FDEs[j].Covers(pc) {
			return t.FDEs[j], nil
		}
	}
	return nil, ErrNoFDE
}
