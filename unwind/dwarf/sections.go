package dwarf

import (
	"bytes"
	"compress/zlib"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/rspstub/rspstub/internal/peimage"
)

// RawSection is one section's bytes and the address its first byte has
// when the module is loaded at its preferred base.
type RawSection struct {
	Name string
	Addr uint64
	Data []byte
}

// Sections are the CFI sections of one module file.
type Sections struct {
	Format     string // "pe" or "elf"
	ImageBase  uint64 // PE ImageBase; 0 for ELF
	EHFrame    *RawSection
	EHFrameHdr *RawSection
	DebugFrame *RawSection
	Bases      Bases // .text and (ELF) .got addresses, for textrel/datarel
}

// ErrNotPE and ErrNotELF report a file of another format.
var (
	ErrNotPE  = errors.New("not a PE image")
	ErrNotELF = errors.New("not an ELF file")
)

// Finder returns the best FDE finder the sections give: .eh_frame through
// its .eh_frame_hdr search table, else a full .eh_frame table, else a
// .debug_frame table. Entries that fail to decode do not make it fail;
// Tables reports them.
func (s *Sections) Finder() (Finder, error) {
	if s.EHFrame != nil {
		sec := NewEHFrame(s.EHFrame.Data, s.EHFrame.Addr, s.Bases)
		if s.EHFrameHdr != nil {
			if h, err := ParseEHFrameHdr(s.EHFrameHdr.Data, s.EHFrameHdr.Addr); err == nil && h.Searchable && h.EHFramePtr == s.EHFrame.Addr {
				return HdrFinder{Section: sec, Hdr: h}, nil
			}
		}
		t, _ := NewTable(sec)
		return t, nil
	}
	if s.DebugFrame != nil {
		t, _ := ParseDebugFrame(s.DebugFrame.Data, s.DebugFrame.Addr)
		return t, nil
	}
	return nil, ErrNoFDE
}

// PESections finds .eh_frame, .eh_frame_hdr and .debug_frame in a PE file
// (file layout, as read from disk). Section names longer than eight bytes
// are stored as "/decimal" (or "//base64") offsets into the COFF string
// table that follows the symbol table; they are resolved here. The bytes
// of a section are its raw data, cut to its VirtualSize.
func PESections(file []byte) (*Sections, error) {
	return PESectionsAt(bytes.NewReader(file), int64(len(file)))
}

// PESectionsAt is PESections reading from r (a file of the given size):
// only the headers, the string table and the CFI sections are read.
func PESectionsAt(r io.ReaderAt, size int64) (*Sections, error) {
	perr := func(off int, err error) error {
		return &FormatError{Section: "PE header", Entry: -1, Offset: int64(off), Err: err}
	}
	read := func(off, n uint64) ([]byte, error) {
		if off > uint64(size) || n > uint64(size)-off {
			return nil, ErrTruncated
		}
		b := make([]byte, n)
		// ReadAt may report io.EOF with a full read at the end.
		if got, err := r.ReadAt(b, int64(off)); got < len(b) {
			if err == nil {
				err = ErrTruncated
			}
			return nil, err
		}
		return b, nil
	}
	f, err := peimage.ReadFile(r, size)
	if err != nil {
		var fe *peimage.FormatError
		switch {
		case errors.Is(err, peimage.ErrNotPE):
			return nil, perr(0, fmt.Errorf("%w: %v", ErrNotPE, err))
		case errors.As(err, &fe):
			return nil, perr(int(fe.Off), fmt.Errorf("%w: %v", ErrTruncated, err))
		}
		return nil, perr(0, fmt.Errorf("%w: %v", ErrTruncated, err))
	}
	out := &Sections{Format: "pe", ImageBase: f.ImageBase}
	for i, s := range f.Sections {
		hdr := int(f.SectionTableOffset()) + 40*i
		name := s.Name
		va := uint64(s.VirtualAddress)
		vsize, rawSize, rawPtr := uint64(s.VirtualSize), uint64(s.SizeOfRawData), uint64(s.PointerToRawData)
		if name == ".text" {
			out.Bases.Text = out.ImageBase + va
		}
		var dst **RawSection
		compressed := false
		switch name {
		case ".eh_frame":
			dst = &out.EHFrame
		case ".eh_frame_hdr":
			dst = &out.EHFrameHdr
		case ".debug_frame":
			dst = &out.DebugFrame
		case ".zdebug_frame":
			// Go's linker compresses its DWARF on Windows; an
			// uncompressed .debug_frame, if any, wins.
			if out.DebugFrame != nil && out.DebugFrame.Name == ".debug_frame" {
				continue
			}
			dst, compressed = &out.DebugFrame, true
		default:
			continue
		}
		n := rawSize
		if vsize != 0 && vsize < n {
			n = vsize
		}
		if rawPtr > uint64(size) {
			n = 0
		} else if n > uint64(size)-rawPtr {
			n = uint64(size) - rawPtr
		}
		data, err := read(rawPtr, n)
		if err != nil {
			return nil, perr(hdr, fmt.Errorf("section %s: %w", name, err))
		}
		if compressed {
			if data, err = zdebug(data); err != nil {
				return nil, perr(hdr, fmt.Errorf("section %s: %w", name, err))
			}
		}
		*dst = &RawSection{Name: name, Addr: out.ImageBase + va, Data: data}
	}
	return out, nil
}

// ELFSections finds .eh_frame, .eh_frame_hdr and .debug_frame (compressed
// or not) in an ELF file, with their link-time addresses. For a
// position-independent module loaded at a bias, add the bias to each Addr
// before decoding.
func ELFSections(r io.ReaderAt) (out *Sections, err error) {
	defer func() {
		// debug/elf is fuzzed upstream; this keeps our promise anyway.
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("%w: debug/elf panicked: %v", ErrNotELF, p)
		}
	}()
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotELF, err)
	}
	out = &Sections{Format: "elf"}
	for _, s := range f.Sections {
		var dst **RawSection
		switch s.Name {
		case ".eh_frame":
			dst = &out.EHFrame
		case ".eh_frame_hdr":
			dst = &out.EHFrameHdr
		case ".debug_frame":
			dst = &out.DebugFrame
		case ".text":
			out.Bases.Text = s.Addr
			continue
		case ".got":
			out.Bases.Data = s.Addr
			continue
		default:
			continue
		}
		if s.Type == elf.SHT_NOBITS {
			continue
		}
		data, err := s.Data()
		if err != nil {
			return nil, fmt.Errorf("read ELF section %s: %w", s.Name, err)
		}
		*dst = &RawSection{Name: s.Name, Addr: s.Addr, Data: data}
	}
	return out, nil
}

// MaxZDebug bounds the uncompressed size of a .zdebug_ section.
const MaxZDebug = 1 << 28

// ErrCompressed: a .zdebug_ section that is not a "ZLIB" header and a
// zlib stream of the stated size.
var ErrCompressed = errors.New("bad compressed debug section")

// zdebug decompresses a GNU-style compressed debug section:
//
//	"ZLIB"  uncompressed size (8 bytes, big-endian)  zlib stream
//
// The stated size is checked against MaxZDebug, memory grows only with
// what the stream gives, and it must give exactly the stated size.
func zdebug(b []byte) ([]byte, error) {
	if len(b) < 12 || string(b[:4]) != "ZLIB" {
		return nil, fmt.Errorf("%w: no ZLIB header", ErrCompressed)
	}
	size := binary.BigEndian.Uint64(b[4:12])
	if size > MaxZDebug {
		return nil, fmt.Errorf("%w: %d bytes uncompressed (limit %d)", ErrCompressed, size, MaxZDebug)
	}
	zr, err := zlib.NewReader(bytes.NewReader(b[12:]))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCompressed, err)
	}
	defer zr.Close()
	// Grow with what the stream really gives, not with the stated size.
	out, err := io.ReadAll(io.LimitReader(zr, int64(size)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCompressed, err)
	}
	if uint64(len(out)) != size {
		return nil, fmt.Errorf("%w: %d bytes uncompressed, the header says %d", ErrCompressed, len(out), size)
	}
	return out, nil
}
