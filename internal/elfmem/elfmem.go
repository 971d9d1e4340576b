// Package elfmem reads the parts of a loaded ELF64 (x86-64, little
// endian) module that a debugger finds in guest memory: the ELF header,
// the program headers, the dynamic section and the dynamic symbol table.
// A loaded module has no section headers in memory (they are not in any
// PT_LOAD segment), so everything here goes through program headers and
// DT_* entries, as the dynamic linker itself does.
//
// Every read is bounded and every count is checked before it allocates:
// the bytes come from a guest that may be corrupt or hostile. Errors carry
// the address that could not be read or did not decode.
//
// Addresses. An ELF file's virtual addresses (p_vaddr, st_value, d_ptr)
// are link-time addresses; a module loaded at another address is shifted
// by its load bias (l_addr in the dynamic linker's link_map):
//
//	runtime address = bias + link-time address
//
// Non-PIE executables have bias 0; shared objects and PIEs are linked at
// 0 and their bias is where their first segment is. The Base of an Image
// is the address of the lowest PT_LOAD mapping (rounded down to the
// page), which is where the ELF header is.
package elfmem

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Memory is guest memory: ReadMemory works like io.ReaderAt with a 64-bit
// address, and a short count means "readable up to here".
type Memory interface {
	ReadMemory(addr uint64, p []byte) (int, error)
}

// Program header types, dynamic tags and symbol fields this package uses
// (names as in the System V gABI and <elf.h>).
const (
	PT_LOAD         = 1
	PT_DYNAMIC      = 2
	PT_INTERP       = 3
	PT_PHDR         = 6
	PT_GNU_EH_FRAME = 0x6474e550

	DT_NULL     = 0
	DT_HASH     = 4
	DT_STRTAB   = 5
	DT_SYMTAB   = 6
	DT_STRSZ    = 10
	DT_SYMENT   = 11
	DT_SONAME   = 14
	DT_DEBUG    = 21
	DT_GNU_HASH = 0x6ffffef5

	STT_FUNC      = 2
	STT_GNU_IFUNC = 10
	SHN_UNDEF     = 0
)

// Limits on what a guest may claim.
const (
	MaxPhnum      = 256     // program headers per module
	MaxDynamic    = 1024    // dynamic entries
	MaxString     = 4096    // a path or a name
	MaxSymbols    = 1 << 17 // dynamic symbols read per module
	MaxStrtab     = 8 << 20 // bytes of a dynamic string table
	PageSize      = 4096
	ehdrSize      = 64
	phdrSize      = 56
	dynSize       = 16
	symSize       = 24
	maxModuleSize = 1 << 40
)

// Errors.
var (
	ErrNotELF   = errors.New("not an ELF64 x86-64 little-endian image")
	ErrBadImage = errors.New("malformed ELF image")
	ErrRead     = errors.New("guest memory unreadable")
)

// Read fills p from addr or fails: a short read is an error naming what
// was read and where.
func Read(mem Memory, what string, addr uint64, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if addr+uint64(len(p)) < addr {
		return fmt.Errorf("read %s at %#x: %w (wraps the address space)", what, addr, ErrRead)
	}
	n, err := mem.ReadMemory(addr, p)
	if n >= len(p) {
		return nil
	}
	if n < 0 {
		n = 0
	}
	if err != nil {
		return fmt.Errorf("read %s at %#x: %w (%d of %d bytes: %v)", what, addr, ErrRead, n, len(p), err)
	}
	return fmt.Errorf("read %s at %#x: %w (%d of %d bytes)", what, addr, ErrRead, n, len(p))
}

// Read64 reads one little-endian 64-bit word.
func Read64(mem Memory, what string, addr uint64) (uint64, error) {
	var b [8]byte
	if err := Read(mem, what, addr, b[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// ReadString reads a NUL-terminated string of at most max bytes
// (MaxString when max <= 0), in chunks that stop at the first unreadable
// byte.
func ReadString(mem Memory, addr uint64, max int) (string, error) {
	if max <= 0 || max > MaxString {
		max = MaxString
	}
	var out []byte
	var buf [256]byte
	for len(out) < max {
		chunk := buf[:min(len(buf), max-len(out))]
		// Stay within one page per read: the next one may be unmapped.
		if left := PageSize - int((addr+uint64(len(out)))%PageSize); left < len(chunk) {
			chunk = chunk[:left]
		}
		a := addr + uint64(len(out))
		if a < addr {
			break
		}
		n, err := mem.ReadMemory(a, chunk)
		n = max0(min(n, len(chunk)))
		for i := 0; i < n; i++ {
			if chunk[i] == 0 {
				return string(append(out, chunk[:i]...)), nil
			}
		}
		out = append(out, chunk[:n]...)
		if n < len(chunk) {
			if err == nil {
				err = errors.New("short read")
			}
			return string(out), fmt.Errorf("read string at %#x: %w (%v)", addr, ErrRead, err)
		}
	}
	return string(out), fmt.Errorf("string at %#x: %w (longer than %d bytes)", addr, ErrBadImage, max)
}

func max0(n int) int {
	if n < 0 {
		return 0
	}
	return n
}

// Header is the part of the ELF header a loaded module needs.
type Header struct {
	Type      uint16 // ET_EXEC 2, ET_DYN 3
	Entry     uint64
	Phoff     uint64
	Phentsize uint16
	Phnum     uint16
}

// ReadHeader reads and checks the ELF header at addr.
func ReadHeader(mem Memory, addr uint64) (Header, error) {
	var b [ehdrSize]byte
	if err := Read(mem, "ELF header", addr, b[:]); err != nil {
		return Header{}, err
	}
	return ParseHeader(b[:], addr)
}

// ParseHeader decodes an ELF header from b (at least 64 bytes); addr only
// names it in errors.
func ParseHeader(b []byte, addr uint64) (Header, error) {
	if len(b) < ehdrSize || string(b[:4]) != "\x7fELF" {
		return Header{}, fmt.Errorf("at %#x: %w (no ELF magic)", addr, ErrNotELF)
	}
	if b[4] != 2 || b[5] != 1 || binary.LittleEndian.Uint16(b[18:]) != 62 {
		return Header{}, fmt.Errorf("at %#x: %w (class %d, data %d, machine %d)", addr, ErrNotELF,
			b[4], b[5], binary.LittleEndian.Uint16(b[18:]))
	}
	h := Header{
		Type:      binary.LittleEndian.Uint16(b[16:]),
		Entry:     binary.LittleEndian.Uint64(b[24:]),
		Phoff:     binary.LittleEndian.Uint64(b[32:]),
		Phentsize: binary.LittleEndian.Uint16(b[54:]),
		Phnum:     binary.LittleEndian.Uint16(b[56:]),
	}
	if h.Phnum > 0 && h.Phentsize != phdrSize {
		return Header{}, fmt.Errorf("at %#x: %w (e_phentsize %d)", addr, ErrBadImage, h.Phentsize)
	}
	if h.Phnum > MaxPhnum {
		return Header{}, fmt.Errorf("at %#x: %w (%d program headers)", addr, ErrBadImage, h.Phnum)
	}
	return h, nil
}

// Prog is one program header.
type Prog struct {
	Type   uint32
	Flags  uint32
	Off    uint64
	Vaddr  uint64
	Filesz uint64
	Memsz  uint64
	Align  uint64
}

// ReadProgs reads n program headers at addr.
func ReadProgs(mem Memory, addr uint64, n int) ([]Prog, error) {
	if n < 0 || n > MaxPhnum {
		return nil, fmt.Errorf("program headers at %#x: %w (%d entries)", addr, ErrBadImage, n)
	}
	b := make([]byte, n*phdrSize)
	if err := Read(mem, "program headers", addr, b); err != nil {
		return nil, err
	}
	ps := make([]Prog, n)
	for i := range ps {
		p := b[i*phdrSize:]
		ps[i] = Prog{
			Type:   binary.LittleEndian.Uint32(p[0:]),
			Flags:  binary.LittleEndian.Uint32(p[4:]),
			Off:    binary.LittleEndian.Uint64(p[8:]),
			Vaddr:  binary.LittleEndian.Uint64(p[16:]),
			Filesz: binary.LittleEndian.Uint64(p[32:]),
			Memsz:  binary.LittleEndian.Uint64(p[40:]),
			Align:  binary.LittleEndian.Uint64(p[48:]),
		}
	}
	return ps, nil
}

// Image is a loaded module as its program headers describe it.
type Image struct {
	Base  uint64 // lowest PT_LOAD mapping (page-aligned): the ELF header
	Bias  uint64 // runtime address - link-time address
	Size  uint64 // from Base to the end of the highest PT_LOAD, page-aligned
	Progs []Prog
	// Runtime addresses, 0 when the segment is absent.
	Dynamic        uint64
	DynamicSize    uint64
	EHFrameHdr     uint64
	EHFrameHdrSize uint64
	Interp         uint64
}

// FromProgs lays a module out from its program headers and load bias.
func FromProgs(progs []Prog, bias uint64) (*Image, error) {
	img := &Image{Bias: bias, Progs: progs}
	lo, hi, any := ^uint64(0), uint64(0), false
	for _, p := range progs {
		switch p.Type {
		case PT_LOAD:
			if p.Memsz == 0 {
				continue
			}
			end := p.Vaddr + p.Memsz
			if end < p.Vaddr || p.Memsz > maxModuleSize {
				return nil, fmt.Errorf("%w: PT_LOAD at %#x size %#x", ErrBadImage, p.Vaddr, p.Memsz)
			}
			lo, hi, any = min(lo, p.Vaddr), max(hi, end), true
		case PT_DYNAMIC:
			img.Dynamic, img.DynamicSize = bias+p.Vaddr, p.Memsz
		case PT_GNU_EH_FRAME:
			img.EHFrameHdr, img.EHFrameHdrSize = bias+p.Vaddr, p.Memsz
		case PT_INTERP:
			img.Interp = bias + p.Vaddr
		}
	}
	if !any {
		return nil, fmt.Errorf("%w: no PT_LOAD segment", ErrBadImage)
	}
	lo &^= PageSize - 1
	hi = (hi + PageSize - 1) &^ (PageSize - 1)
	if hi-lo > maxModuleSize {
		return nil, fmt.Errorf("%w: PT_LOAD extent %#x", ErrBadImage, hi-lo)
	}
	img.Base, img.Size = bias+lo, hi-lo
	return img, nil
}

// Load reads the module whose ELF header is at base (its lowest PT_LOAD
// mapping): the header, the program headers (which must lie in the
// first page-run the header is in, as every linker places them) and the
// layout. The bias is base minus the lowest PT_LOAD's page.
func Load(mem Memory, base uint64) (*Image, error) {
	h, err := ReadHeader(mem, base)
	if err != nil {
		return nil, err
	}
	if h.Phoff > 1<<20 {
		return nil, fmt.Errorf("ELF at %#x: %w (e_phoff %#x)", base, ErrBadImage, h.Phoff)
	}
	progs, err := ReadProgs(mem, base+h.Phoff, int(h.Phnum))
	if err != nil {
		return nil, err
	}
	lo, any := ^uint64(0), false
	for _, p := range progs {
		if p.Type == PT_LOAD && p.Memsz != 0 {
			lo, any = min(lo, p.Vaddr), true
		}
	}
	if !any {
		return nil, fmt.Errorf("ELF at %#x: %w: no PT_LOAD segment", base, ErrBadImage)
	}
	return FromProgs(progs, base-(lo&^(PageSize-1)))
}

// Contains reports whether addr lies in the module's extent.
func (img *Image) Contains(addr uint64) bool { return addr >= img.Base && addr-img.Base < img.Size }

// Dyn is one dynamic entry.
type Dyn struct {
	Tag int64
	Val uint64
}

// ReadDynamic reads the dynamic entries at addr up to DT_NULL, at most
// MaxDynamic of them and at most size bytes (size 0: no byte bound).
func ReadDynamic(mem Memory, addr, size uint64) ([]Dyn, error) {
	n := MaxDynamic
	if size != 0 && size/dynSize < uint64(n) {
		n = int(size / dynSize)
	}
	var out []Dyn
	var b [dynSize * 16]byte
	for i := 0; i < n; {
		k := min(16, n-i)
		if err := Read(mem, "dynamic section", addr+uint64(i*dynSize), b[:k*dynSize]); err != nil {
			return out, err
		}
		for j := 0; j < k; j++ {
			d := Dyn{Tag: int64(binary.LittleEndian.Uint64(b[j*dynSize:])), Val: binary.LittleEndian.Uint64(b[j*dynSize+8:])}
			if d.Tag == DT_NULL {
				return out, nil
			}
			out = append(out, d)
		}
		i += k
	}
	return out, nil
}

// Lookup returns the value of the first entry with tag.
func Lookup(dyn []Dyn, tag int64) (uint64, bool) {
	for _, d := range dyn {
		if d.Tag == tag {
			return d.Val, true
		}
	}
	return 0, false
}

// Ptr turns a DT_* address into a runtime address. glibc's dynamic
// linker relocates the d_ptr entries of a writable dynamic section in
// place (elf_get_dynamic_info) but not those of a read-only one (the
// vDSO's), nor before it has run: a value already inside the module is
// taken as relocated, any other is shifted by the bias.
func (img *Image) Ptr(v uint64) uint64 {
	if img.Contains(v) {
		return v
	}
	return v + img.Bias
}

// SoName reads DT_SONAME through DT_STRTAB, "" when there is none.
func (img *Image) SoName(mem Memory, dyn []Dyn) (string, error) {
	off, ok := Lookup(dyn, DT_SONAME)
	if !ok {
		return "", nil
	}
	strtab, ok := Lookup(dyn, DT_STRTAB)
	if !ok {
		return "", fmt.Errorf("%w: DT_SONAME without DT_STRTAB", ErrBadImage)
	}
	if sz, ok := Lookup(dyn, DT_STRSZ); ok && off >= sz {
		return "", fmt.Errorf("%w: DT_SONAME %#x outside DT_STRSZ %#x", ErrBadImage, off, sz)
	}
	return ReadString(mem, img.Ptr(strtab)+off, 0)
}
