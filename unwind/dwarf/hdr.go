package dwarf

import "encoding/binary"

// EHFrameHdr is a decoded .eh_frame_hdr (LSB 5.0, "The .eh_frame_hdr
// section"):
//
//	+0 u8  version (1)
//	+1 u8  eh_frame_ptr_enc
//	+2 u8  fde_count_enc
//	+3 u8  table_enc
//	+4     eh_frame_ptr (eh_frame_ptr_enc)
//	       fde_count    (fde_count_enc)
//	       table: fde_count pairs {initial_location, fde_address}
//	       (table_enc), sorted by initial_location
//
// DW_EH_PE_datarel in this section is relative to its first byte. The
// table is searched in place: only fixed-size encodings make it
// searchable, and a table with another encoding is reported as having no
// entries (Searchable false), as libgcc treats it.
type EHFrameHdr struct {
	Addr       uint64 // load address of the section
	Version    uint8
	EHFramePtr uint64 // address of .eh_frame
	Count      uint64 // entries in the search table
	Searchable bool

	table     []byte
	tableOff  int
	tableEnc  uint8
	entrySize int
}

// ParseEHFrameHdr decodes an .eh_frame_hdr section loaded at addr.
func ParseEHFrameHdr(data []byte, addr uint64) (*EHFrameHdr, error) {
	ferr := func(off int, err error) error {
		return &FormatError{Section: ".eh_frame_hdr", Entry: -1, Offset: int64(off), Err: err}
	}
	c := cursor{B: data}
	h := &EHFrameHdr{Addr: addr}
	h.Version = c.U8()
	ptrEnc, countEnc, tableEnc := c.U8(), c.U8(), c.U8()
	if c.Err != nil {
		return nil, ferr(c.Off, c.Err)
	}
	if h.Version != 1 {
		return nil, ferr(0, ErrVersion)
	}
	bases := Bases{Data: addr}
	pos := c.Off
	v, ind, err := decodePointer(&c, ptrEnc, addr, 8, bases, 0, false, nil)
	if err != nil || ind {
		if err == nil {
			err = ErrIndirect
		}
		return nil, ferr(pos, err)
	}
	h.EHFramePtr = v
	if countEnc == DW_EH_PE_omit || tableEnc == DW_EH_PE_omit {
		return h, nil
	}
	pos = c.Off
	n, ind, err := decodePointer(&c, countEnc, addr, 8, bases, 0, false, nil)
	if err != nil || ind {
		if err == nil {
			err = ErrIndirect
		}
		return nil, ferr(pos, err)
	}
	if !validEncoding(tableEnc) || tableEnc&DW_EH_PE_indirect != 0 {
		return nil, ferr(3, ErrEncoding)
	}
	size := 0
	switch tableEnc & 0x0f {
	case DW_EH_PE_udata2, DW_EH_PE_sdata2:
		size = 2
	case DW_EH_PE_udata4, DW_EH_PE_sdata4:
		size = 4
	case DW_EH_PE_udata8, DW_EH_PE_sdata8, DW_EH_PE_absptr, DW_EH_PE_signed:
		size = 8
	}
	if size == 0 || tableEnc&0x70 == DW_EH_PE_aligned {
		return h, nil // not searchable: callers fall back to a full table
	}
	if n > uint64(c.Left())/uint64(2*size) {
		return nil, ferr(c.Off, ErrTruncated)
	}
	h.Count = n
	h.Searchable = true
	h.table = data
	h.tableOff = c.Off
	h.tableEnc = tableEnc
	h.entrySize = size
	return h, nil
}

// field decodes the j-th value (0: initial location, 1: FDE address) of
// table entry i, which the caller has range-checked.
func (h *EHFrameHdr) field(i uint64, j int) uint64 {
	off := h.tableOff + int(i)*2*h.entrySize + j*h.entrySize
	b := h.table[off:]
	var v uint64
	switch h.entrySize {
	case 2:
		v = uint64(binary.LittleEndian.Uint16(b))
		if h.tableEnc&DW_EH_PE_signed != 0 {
			v = uint64(int64(int16(v)))
		}
	case 4:
		v = uint64(binary.LittleEndian.Uint32(b))
		if h.tableEnc&DW_EH_PE_signed != 0 {
			v = uint64(int64(int32(v)))
		}
	default:
		v = binary.LittleEndian.Uint64(b)
	}
	switch h.tableEnc & 0x70 {
	case DW_EH_PE_pcrel:
		v += h.Addr + uint64(off)
	case DW_EH_PE_datarel:
		v += h.Addr
	}
	return v
}

// Entry returns the i-th table entry: a function start and the address of
// its FDE.
func (h *EHFrameHdr) Entry(i uint64) (initialLoc, fdeAddr uint64, ok bool) {
	if !h.Searchable || i >= h.Count {
		return 0, 0, false
	}
	return h.field(i, 0), h.field(i, 1), true
}

// Lookup binary-searches the table for the last entry whose initial
// location is at or below pc. The FDE it names must still be checked to
// cover pc (Section.Find does).
func (h *EHFrameHdr) Lookup(pc uint64) (initialLoc, fdeAddr uint64, ok bool) {
	if !h.Searchable || h.Count == 0 {
		return 0, 0, false
	}
	lo, hi := uint64(0), h.Count // first entry with location > pc
	for lo < hi {                // at most 64 iterations
		mid := lo + (hi-lo)/2
		if h.field(mid, 0) > pc {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo == 0 {
		return 0, 0, false
	}
	return h.field(lo-1, 0), h.field(lo-1, 1), true
}

// Find returns the FDE covering pc through the search table of hdr,
// decoding only that FDE and its CIE: the way to use an .eh_frame read
// from guest memory without decoding all of it.
func (s *Section) Find(hdr *EHFrameHdr, pc uint64) (*FDE, error) {
	_, addr, ok := hdr.Lookup(pc)
	if !ok {
		return nil, ErrNoFDE
	}
	if addr < s.Addr || addr-s.Addr >= uint64(len(s.Data)) {
		return nil, &FormatError{Section: ".eh_frame_hdr", Entry: -1, Offset: int64(hdr.tableOff), Err: ErrNoFDE}
	}
	f, err := s.FDEAt(int64(addr - s.Addr))
	if err != nil {
		return nil, err
	}
	if !f.Covers(pc) {
		return nil, ErrNoFDE
	}
	return f, nil
}
