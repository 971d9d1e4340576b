package winproc

import (
	"errors"
	"fmt"
	"sort"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/peimage"
)

// DefaultScanDistance bounds ScanImage: no image has its code more than
// 64 MiB past its headers.
const DefaultScanDistance = 64 << 20

// maxExpName bounds the export name ImageAt reads.
const maxExpName = 256

// ErrNoImage is wrapped by ScanImage's error when no header was found.
var ErrNoImage = errors.New("no PE32+ x64 image")

// ScanImage looks backwards from pc, one page at a time and at most
// maxDist bytes (DefaultScanDistance when 0), for a PE32+ x64 image
// whose SizeOfImage covers pc.
func ScanImage(mem Memory, pc uint64, maxDist uint64) (Module, error) {
	if maxDist == 0 {
		maxDist = DefaultScanDistance
	}
	start := pc &^ (process.PageSize - 1)
	var mz [2]byte
	for d := uint64(0); d <= maxDist && d <= start; d += process.PageSize {
		base := start - d
		if n, _ := mem.ReadMemory(base, mz[:]); n < 2 || mz != [2]byte{'M', 'Z'} {
			continue // not a header, or a page that is not mapped (paged out)
		}
		m, err := ImageAt(mem, base)
		if err != nil || pc >= m.End() {
			continue // an MZ that is not ours: keep looking
		}
		return m, nil
	}
	return Module{}, fmt.Errorf("%w within %#x bytes below %#x", ErrNoImage, maxDist, pc)
}

// ImageAt validates the PE32+ x64 headers at base and returns the image
// with its export name (or "image@BASE" without one).
func ImageAt(mem Memory, base uint64) (Module, error) {
	h, err := peimage.ReadNTHeaders(mem, base)
	if err != nil {
		return Module{}, fmt.Errorf("image at %#x: %w", base, err)
	}
	if lfanew := h.NTHeaderOffset; lfanew < 0x40 || lfanew > process.PageSize-24-120 || lfanew%4 != 0 {
		return Module{}, fmt.Errorf("e_lfanew %#x at %#x out of the header page", lfanew, base)
	}
	if h.Machine != peimage.IMAGE_FILE_MACHINE_AMD64 {
		return Module{}, fmt.Errorf("machine %#x at %#x is not x64", h.Machine, base)
	}
	if h.Magic != peimage.IMAGE_NT_OPTIONAL_HDR64_MAGIC {
		return Module{}, fmt.Errorf("optional header magic %#x at %#x is not PE32+", h.Magic, base)
	}
	size := uint64(h.SizeOfImage)
	if size < process.PageSize || size > MaxImageSize || base+size < base {
		return Module{}, fmt.Errorf("SizeOfImage %#x at %#x is not plausible", size, base)
	}
	m := Module{Base: base, Size: size, Name: fmt.Sprintf("image@%#x", base)}
	exp := h.DataDirectory[peimage.IMAGE_DIRECTORY_ENTRY_EXPORT]
	if exp.VirtualAddress == 0 || uint64(exp.VirtualAddress)+16 > size {
		return m, nil
	}
	d, ok, err := h.ReadExportDirectory(mem, base)
	if err != nil || !ok {
		return m, nil
	}
	if name := asciiz(mem, base+uint64(d.Name), base+size); name != "" {
		m.Name = name
	}
	return m, nil
}

// asciiz reads a printable NUL-terminated name below end, or "".
func asciiz(mem Memory, addr, end uint64) string {
	var b [maxExpName]byte
	if addr >= end {
		return ""
	}
	if end-addr < uint64(len(b)) {
		n, _ := mem.ReadMemory(addr, b[:end-addr])
		return printable(b[:n])
	}
	n, _ := mem.ReadMemory(addr, b[:])
	return printable(b[:n])
}

func printable(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
		if c < 0x20 || c > 0x7e {
			return ""
		}
	}
	return "" // no terminator within the bound
}

// Merge returns the discovered modules with the user's modules put over
// them: a user module replaces every discovered module it overlaps, and
// is added otherwise. The result is sorted by base, except that the
// first discovered module (the program) stays first when it survives.
func Merge(found, user []Module) []Module {
	out := make([]Module, 0, len(found)+len(user))
	for _, f := range found {
		keep := true
		for _, u := range user {
			if f.Base < u.End() && u.Base < f.End() {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, f)
		}
	}
	out = append(out, user...)
	first := 0
	if len(found) > 0 && len(out) > 0 && out[0] == found[0] {
		first = 1
	}
	rest := out[first:]
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].Base < rest[j].Base })
	return out
}

// FirstSectionRVA reads the RVA of the first section of the image at
// base from its headers in memory (what the Windows library list
// reports, as image base + this RVA). Without readable headers it
// answers 0x1000, where linkers put the first section.
func FirstSectionRVA(mem Memory, base uint64) uint32 {
	const dflt = 0x1000
	h, err := peimage.ReadNTHeaders(mem, base)
	if err != nil || h.NTHeaderOffset > process.PageSize || h.NumberOfSections == 0 {
		return dflt
	}
	h.NumberOfSections = 1 // only the first is needed
	if h.ReadSections(mem, base, nil) != nil {
		return dflt
	}
	if rva := h.Sections[0].VirtualAddress; rva != 0 {
		return rva
	}
	return dflt
}
