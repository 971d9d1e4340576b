package peimage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/rspstub/rspstub/internal/bytecur"
)

// Memory is where the headers are read from: guest memory (an image in
// memory layout at some base) or a file through ReaderAt (base 0). A
// short count means "readable up to here".
type Memory = bytecur.Memory

// ReadError is a part of the image that could not be read.
type ReadError = bytecur.ReadError

// Bytes is a Memory over a byte slice whose first byte is at address 0.
type Bytes []byte

// ReadMemory copies what there is at addr.
func (b Bytes) ReadMemory(addr uint64, p []byte) (int, error) {
	if addr >= uint64(len(b)) {
		return 0, nil
	}
	return copy(p, b[addr:]), nil
}

// ReaderAt is a Memory over a file of Size bytes.
type ReaderAt struct {
	R    io.ReaderAt
	Size int64
}

// ReadMemory reads what the file has at addr.
func (r ReaderAt) ReadMemory(addr uint64, p []byte) (int, error) {
	if r.Size < 0 || addr >= uint64(r.Size) {
		return 0, nil
	}
	if left := uint64(r.Size) - addr; uint64(len(p)) > left {
		p = p[:left]
	}
	n, err := r.R.ReadAt(p, int64(addr))
	if n == len(p) || errors.Is(err, io.EOF) {
		err = nil // ReadAt may report io.EOF with a full read at the end
	}
	return n, err
}

// The header walk. Everything below reads the headers of one image:
//
//	+0      DOS header ("MZ" ... e_lfanew at 0x3c)
//	lfanew  "PE\0\0"
//	+4      FileHeader (20 bytes)
//	+24     OptionalHeader32 (224) or OptionalHeader64 (240)
//	+24+SizeOfOptionalHeader
//	        NumberOfSections SectionHeader32s (40 bytes each)

// ReadNTHeaders reads the DOS header, the file header and the optional
// header of the image whose first byte is at base. A PE32 optional
// header is widened into File.OptionalHeader64 (Magic tells them apart).
// Data directories past NumberOfRvaAndSizes read as zero. Errors wrap ErrNotPE (not a PE image; with a *ReadError
// too when the bytes were unreadable), or are a *ReadError.
func ReadNTHeaders(mem Memory, base uint64) (*File, error) {
	var dos [dosHeaderSize]byte
	if err := bytecur.ReadFull(mem, "DOS header", base, dos[:]); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotPE, err)
	}
	if dos[0] != 'M' || dos[1] != 'Z' {
		return nil, fmt.Errorf("%w: no MZ signature", ErrNotPE)
	}
	lfanew := binary.LittleEndian.Uint32(dos[lfanewOffset:])
	if lfanew > MaxNTHeaderOffset {
		return nil, fmt.Errorf("%w: e_lfanew %#x", ErrNotPE, lfanew)
	}
	var nt [4 + fileHeaderSize]byte
	if err := bytecur.ReadFull(mem, "NT headers", base+uint64(lfanew), nt[:]); err != nil {
		return nil, fmt.Errorf("%w: e_lfanew %#x: %w", ErrNotPE, lfanew, err)
	}
	if string(nt[:4]) != "PE\x00\x00" {
		return nil, fmt.Errorf("%w: no PE signature at %#x", ErrNotPE, lfanew)
	}
	f := &File{NTHeaderOffset: lfanew}
	if _, err := binary.Decode(nt[4:], binary.LittleEndian, &f.FileHeader); err != nil {
		return nil, err // not reached: the buffer has the size
	}
	// The optional header is read whole whatever SizeOfOptionalHeader
	// says, as Windows' loader reads it; SizeOfOptionalHeader only places
	// the section table.
	var opt [optionalHeader64Size]byte
	at := base + uint64(lfanew) + 24
	n, rerr := bytecur.Read(mem, at, opt[:])
	if n < 2 {
		return nil, &ReadError{What: "optional header", Addr: at, Want: optionalHeader64Size, Got: n, Err: rerr}
	}
	switch magic := binary.LittleEndian.Uint16(opt[:]); magic {
	case IMAGE_NT_OPTIONAL_HDR64_MAGIC:
		if n < optionalHeader64Size {
			return nil, &ReadError{What: "optional header", Addr: at, Want: optionalHeader64Size, Got: n, Err: rerr}
		}
		binary.Decode(opt[:], binary.LittleEndian, &f.OptionalHeader64)
	case IMAGE_NT_OPTIONAL_HDR32_MAGIC:
		if n < optionalHeader32Size {
			return nil, &ReadError{What: "optional header", Addr: at, Want: optionalHeader32Size, Got: n, Err: rerr}
		}
		var h OptionalHeader32
		binary.Decode(opt[:optionalHeader32Size], binary.LittleEndian, &h)
		f.OptionalHeader64 = h.widen()
	default:
		return nil, fmt.Errorf("%w: optional header magic %#x", ErrNotPE, magic)
	}
	for i := min(f.NumberOfRvaAndSizes, 16); i < 16; i++ {
		f.DataDirectory[i] = DataDirectory{}
	}
	return f, nil
}

// SectionTableOffset is where the section headers start, from the image's
// first byte.
func (f *File) SectionTableOffset() uint64 {
	return uint64(f.NTHeaderOffset) + 4 + fileHeaderSize + uint64(f.SizeOfOptionalHeader)
}

// ReadSections reads the section table of the image at base (headers from
// ReadNTHeaders) into f.Sections. Names longer than eight bytes stay as
// stored ("/4") unless strtab, the COFF string table, is given.
func (f *File) ReadSections(mem Memory, base uint64, strtab []byte) error {
	n := uint64(f.NumberOfSections)
	if n > MaxSections {
		return &FormatError{uint64(f.NTHeaderOffset) + 6, fmt.Sprintf("%d sections", n)}
	}
	if n == 0 {
		f.Sections = nil
		return nil
	}
	off := f.SectionTableOffset()
	raw := make([]byte, sectionHeaderSize*n)
	if err := bytecur.ReadFull(mem, "section headers", base+off, raw); err != nil {
		return err
	}
	f.Sections = make([]Section, n)
	for i := range f.Sections {
		s := &f.Sections[i]
		binary.Decode(raw[sectionHeaderSize*i:], binary.LittleEndian, &s.SectionHeader32)
		name, err := sectionName(s.SectionHeader32.Name[:], strtab)
		if err != nil {
			return &FormatError{off + sectionHeaderSize*uint64(i), err.Error()}
		}
		s.Name = name
	}
	return nil
}

// ReadHeaders reads the headers and the section table of the image whose
// first byte is at base (an image in memory layout: long section names
// stay unresolved, the string table is not mapped).
func ReadHeaders(mem Memory, base uint64) (*File, error) {
	f, err := ReadNTHeaders(mem, base)
	if err != nil {
		return nil, err
	}
	if err := f.ReadSections(mem, base, nil); err != nil {
		return nil, err
	}
	return f, nil
}

// ReadFile reads the headers and the section table of a PE file (file
// layout, size bytes), with long section names resolved through the COFF
// string table. It reads the headers and the string table only.
func ReadFile(r io.ReaderAt, size int64) (*File, error) {
	mem := ReaderAt{r, size}
	f, err := ReadNTHeaders(mem, 0)
	if err != nil {
		return nil, err
	}
	if err := f.ReadSections(mem, 0, readStringTable(mem, &f.FileHeader)); err != nil {
		return nil, err
	}
	return f, nil
}

// readStringTable reads the COFF string table that follows the symbol
// table; its first four bytes are its size, themselves included. Without
// one (or unreadable) it is nil.
func readStringTable(mem ReaderAt, fh *FileHeader) []byte {
	if fh.PointerToSymbolTable == 0 {
		return nil
	}
	const symbolSize = 18
	at := uint64(fh.PointerToSymbolTable) + uint64(fh.NumberOfSymbols)*symbolSize
	var sz [4]byte
	if bytecur.ReadFull(mem, "string table", at, sz[:]) != nil {
		return nil
	}
	n := uint64(binary.LittleEndian.Uint32(sz[:]))
	if n < 4 || mem.Size < 0 || at > uint64(mem.Size) || n > uint64(mem.Size)-at {
		return nil
	}
	tab := make([]byte, n)
	if bytecur.ReadFull(mem, "string table", at, tab) != nil {
		return nil
	}
	return tab
}

// sectionName decodes an eight-byte name field: the bytes up to the first
// NUL, or with a string table, the long name "/decimal" or "//base64"
// points at.
func sectionName(raw, strtab []byte) (string, error) {
	n := 0
	for n < len(raw) && raw[n] != 0 {
		n++
	}
	name := string(raw[:n])
	if strtab == nil || len(name) < 2 || name[0] != '/' {
		return name, nil
	}
	var off uint64
	if name[1] == '/' {
		// "//" then base64 digits, most significant first.
		const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
		for i := 2; i < len(name); i++ {
			d := -1
			for j := 0; j < len(digits); j++ {
				if digits[j] == name[i] {
					d = j
					break
				}
			}
			if d < 0 {
				return "", fmt.Errorf("section name %q: bad base64 digit", name)
			}
			off = off*64 + uint64(d)
		}
	} else {
		v, err := strconv.ParseUint(name[1:], 10, 32)
		if err != nil {
			return name, nil // not a string table reference
		}
		off = v
	}
	if off < 4 || off >= uint64(len(strtab)) {
		return "", fmt.Errorf("section name %q: string table offset outside the table (%d bytes)", name, len(strtab))
	}
	end := off
	for end < uint64(len(strtab)) && strtab[end] != 0 {
		end++
	}
	return string(strtab[off:end]), nil
}
