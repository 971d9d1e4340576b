package unwind

import (
	"errors"
	"fmt"
	"sort"

	"github.com/rspstub/rspstub/internal/bytecur"
	"github.com/rspstub/rspstub/internal/loaded"
	"github.com/rspstub/rspstub/internal/peimage"
)

// Module is a loaded image as the caller knows it (from the guest's loader
// list in practice): the project's one Module type. Its Synthetic marks
// code an emulator generated (API stubs): it calls guest code back
// without call instructions, so a return address into it is accepted
// without the call check (nodata.go).
type Module = loaded.Module

// Format is a module's file format.
type Format = loaded.Format

// The formats.
const (
	FormatPE  = loaded.FormatPE  // .pdata first, CFI where there is no entry
	FormatELF = loaded.FormatELF // no .pdata: CFI (.eh_frame) only
)

// Section is a PE section as mapped in memory.
type Section struct {
	Name            string
	VirtualAddress  uint32
	VirtualSize     uint32
	Characteristics uint32
}

// IMAGE_SCN_MEM_EXECUTE marks an executable section.
const IMAGE_SCN_MEM_EXECUTE = 0x20000000

// Limits on what an image may claim; a header beyond them is malformed.
const (
	maxFunctionTable  = 1 << 26 // bytes of .pdata (5.5 million entries)
	pdataChunk        = 4096
	runtimeFunctionSz = 12
)

// Image is the unwind-relevant part of a PE32+ image, read from guest memory.
type Image struct {
	Module
	Sections []Section
	// Exception directory (.pdata) location and size.
	ExceptionRVA  uint32
	ExceptionSize uint32
	// Functions is the RUNTIME_FUNCTION table. Entries whose bytes were
	// unreadable or zero are zero here and flagged in missing.
	Functions []RuntimeFunction
	missing   []bool
	valid     []int32 // indices of the entries not missing, when some are
	// Missing counts entries that were unreadable or zeroed.
	Missing int

	infos map[uint32]*UnwindInfo
}

// ReadImage parses the headers and the RUNTIME_FUNCTION table of the image
// mapped at mod.Base. Unreadable or zeroed parts of the table are recorded
// as missing rather than failing the whole image.
func ReadImage(m Memory, mod Module) (*Image, error) {
	img := &Image{Module: mod, infos: make(map[uint32]*UnwindInfo)}
	h, err := peimage.ReadNTHeaders(m, mod.Base)
	var re *bytecur.ReadError
	switch {
	case err != nil && errors.As(err, &re):
		return nil, re
	case err != nil:
		return nil, fmt.Errorf("module %s at %#x: %w (%v)", mod.Name, mod.Base, ErrNotPE, err)
	case mod.Size != 0 && uint64(h.NTHeaderOffset)+24+240 > mod.Size:
		return nil, fmt.Errorf("module %s: %w (e_lfanew %#x)", mod.Name, ErrNotPE, h.NTHeaderOffset)
	case h.Magic != peimage.IMAGE_NT_OPTIONAL_HDR64_MAGIC:
		return nil, fmt.Errorf("module %s: %w (optional header magic %#x)", mod.Name, ErrNotPE, h.Magic)
	}
	if img.Size == 0 {
		img.Size = uint64(h.SizeOfImage)
	}
	exc := h.DataDirectory[peimage.IMAGE_DIRECTORY_ENTRY_EXCEPTION]
	img.ExceptionRVA, img.ExceptionSize = exc.VirtualAddress, exc.Size
	if err := h.ReadSections(m, mod.Base, nil); err != nil {
		if errors.As(err, &re) {
			return nil, re
		}
		return nil, fmt.Errorf("module %s: %w (%v)", mod.Name, ErrNotPE, err)
	}
	for _, s := range h.Sections {
		img.Sections = append(img.Sections, Section{
			Name:            s.Name,
			VirtualSize:     s.VirtualSize,
			VirtualAddress:  s.VirtualAddress,
			Characteristics: s.Characteristics,
		})
	}
	img.readFunctionTable(m)
	return img, nil
}

// readFunctionTable reads .pdata page by page so that one absent page costs
// only the entries on it.
func (img *Image) readFunctionTable(m Memory) {
	size := img.ExceptionSize
	if img.ExceptionRVA == 0 || size < runtimeFunctionSz {
		return
	}
	if size > maxFunctionTable {
		size = maxFunctionTable
	}
	if img.Size != 0 && (uint64(img.ExceptionRVA) >= img.Size) {
		return
	}
	if img.Size != 0 && uint64(img.ExceptionRVA)+uint64(size) > img.Size {
		size = uint32(img.Size - uint64(img.ExceptionRVA))
	}
	n := int(size / runtimeFunctionSz)
	buf := make([]byte, n*runtimeFunctionSz)
	unread := make([]bool, n) // an entry with a byte that could not be read
	start := img.Base + uint64(img.ExceptionRVA)
	for off := 0; off < len(buf); {
		// Chunks end on guest page boundaries.
		end := off + pdataChunk - int((start+uint64(off))%pdataChunk)
		if end > len(buf) {
			end = len(buf)
		}
		got, _ := safeRead(m, start+uint64(off), buf[off:end])
		if off+got < end {
			for i := (off + got) / runtimeFunctionSz; i < n && i*runtimeFunctionSz < end; i++ {
				unread[i] = true
			}
		}
		off = end
	}
	img.Functions = make([]RuntimeFunction, n)
	img.missing = make([]bool, n)
	for i := range n {
		b := buf[i*runtimeFunctionSz:]
		if unread[i] {
			img.missing[i] = true
			img.Missing++
			continue
		}
		f := decodeRuntimeFunction(b)
		// A zeroed page yields zero fields; an entry cut by one yields some.
		if f.BeginAddress == 0 || f.EndAddress < f.BeginAddress || f.UnwindData == 0 {
			img.missing[i] = true
			img.Missing++
			continue
		}
		img.Functions[i] = f
	}
	if img.Missing > 0 {
		img.valid = make([]int32, 0, n-img.Missing)
		for i := range n {
			if !img.missing[i] {
				img.valid = append(img.valid, int32(i))
			}
		}
	}
}

// Executable reports whether rva lies in an executable section.
func (img *Image) Executable(rva uint32) bool {
	for _, s := range img.Sections {
		if s.Characteristics&IMAGE_SCN_MEM_EXECUTE != 0 && rva >= s.VirtualAddress && rva-s.VirtualAddress < s.VirtualSize {
			return true
		}
	}
	return false
}

// lookupIndex finds the table index of the entry containing rva. found is
// false for a leaf function (no entry); err is ErrMissingUnwindData when
// missing entries could have covered rva.
func (img *Image) lookupIndex(rva uint32) (idx int, found bool, err error) {
	fs := img.Functions
	if img.Missing == 0 {
		i := searchTable(len(fs), func(i int) RuntimeFunction { return fs[i] }, rva)
		return max(i, 0), i >= 0, nil
	}
	// The valid entries are still sorted: search them, then look at the
	// gap rva fell into. It is a leaf function only if no missing entry
	// lies between the valid neighbours, so none could have covered rva.
	v := img.valid
	if i := searchTable(len(v), func(i int) RuntimeFunction { return fs[v[i]] }, rva); i >= 0 {
		return int(v[i]), true, nil
	}
	p := sort.Search(len(v), func(i int) bool { return fs[v[i]].EndAddress > rva })
	lo, hi := -1, len(fs)
	if p > 0 {
		lo = int(v[p-1])
	}
	if p < len(v) {
		hi = int(v[p])
	}
	if hi-lo > 1 { // some entries between the neighbours are missing
		return 0, false, ErrMissingUnwindData
	}
	return 0, false, nil
}

// searchTable is the binary search of RtlLookupFunctionEntry, probe for
// probe: with overlapping entries (clang's .seh_startchained gives the
// parent the whole procedure) the entry found depends on the probe order,
// and Windows' answer is the one that counts. It returns -1 if none.
func searchTable(n int, at func(int) RuntimeFunction, rva uint32) int {
	low, high := 0, n-1
	for low <= high {
		mid := int(uint(low+high) >> 1)
		f := at(mid)
		switch {
		case rva < f.BeginAddress:
			high = mid - 1
		case rva >= f.EndAddress:
			low = mid + 1
		default:
			return mid
		}
	}
	return -1
}

// LookupFunction returns the RUNTIME_FUNCTION covering rva, resolving an
// indirect entry once as RtlLookupFunctionEntry does. found is false for a
// leaf function.
func (img *Image) LookupFunction(m Memory, rva uint32) (fn RuntimeFunction, found bool, err error) {
	i, found, err := img.lookupIndex(rva)
	if !found || err != nil {
		return RuntimeFunction{}, found, err
	}
	fn = img.Functions[i]
	if fn.Indirect() {
		return img.resolveIndirect(m, fn)
	}
	return fn, true, nil
}

func (img *Image) resolveIndirect(m Memory, fn RuntimeFunction) (RuntimeFunction, bool, error) {
	target := fn.UnwindData &^ RUNTIME_FUNCTION_INDIRECT
	var b [runtimeFunctionSz]byte
	if err := readFull(m, "indirect RUNTIME_FUNCTION", img.Base+uint64(target), b[:]); err != nil {
		return RuntimeFunction{}, false, fmt.Errorf("%w at rva %#x: %w", ErrIndirect, target, err)
	}
	t := decodeRuntimeFunction(b[:])
	if t.Indirect() {
		return RuntimeFunction{}, false, fmt.Errorf("%w: rva %#x points at another indirect entry", ErrIndirect, target)
	}
	return t, true, nil
}

// UnwindInfo returns the decoded UNWIND_INFO at rva, cached.
func (img *Image) UnwindInfo(m Memory, rva uint32) (*UnwindInfo, error) {
	if u, ok := img.infos[rva]; ok {
		return u, nil
	}
	u, err := ReadUnwindInfo(m, img.Base, rva)
	if err != nil {
		return nil, err
	}
	if img.infos == nil {
		img.infos = make(map[uint32]*UnwindInfo)
	}
	img.infos[rva] = u
	return u, nil
}
