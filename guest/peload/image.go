package peload

import (
	"errors"
	"fmt"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/peimage"
)

// Errors for bad program files, wrapped with the path and detail.
var (
	ErrNotPE   = errors.New("not a PE image")
	ErrNotX64  = errors.New("not an x86-64 (PE32+) image")
	ErrCorrupt = errors.New("corrupt PE image")
)

// maxImageSize bounds SizeOfImage (Windows itself refuses far less).
const maxImageSize = 1 << 30

const pageSize = 0x1000

func pageUp(v uint64) uint64 { return (v + pageSize - 1) &^ (pageSize - 1) }

// Image is what the loader needs from a file, validated.
type Image struct {
	Path           string
	Data           []byte
	File           *peimage.File // headers: File.ImageBase, File.SizeOfImage, ...
	Imports        []peimage.Import
	IsDLL          bool
	RelocsStripped bool
	img            []byte // memory layout, until Layout hands it out
}

// Parse reads a program or DLL file through internal/peimage and checks
// what the loader relies on; the image must fit below userLimit at its
// preferred base.
func Parse(path string, data []byte, userLimit uint64) (pp *Image, err error) {
	defer func() {
		if r := recover(); r != nil {
			pp, err = nil, fmt.Errorf("%s: %w: parser failure: %v", path, ErrCorrupt, r)
		}
	}()
	f, err := peimage.Parse(data)
	switch {
	case errors.Is(err, peimage.ErrNotPE32Plus):
		return nil, fmt.Errorf("%s: %w: %v", path, ErrNotX64, err)
	case errors.Is(err, peimage.ErrNotPE):
		return nil, fmt.Errorf("%s: %w: %v", path, ErrNotPE, err)
	case err != nil:
		return nil, fmt.Errorf("%s: %w: %v", path, ErrCorrupt, err)
	}
	if f.Machine != peimage.IMAGE_FILE_MACHINE_AMD64 {
		return nil, fmt.Errorf("%s: %w (machine %#x)", path, ErrNotX64, f.Machine)
	}
	pp = &Image{Path: path, Data: data, File: f,
		IsDLL:          f.Characteristics&peimage.IMAGE_FILE_DLL != 0,
		RelocsStripped: f.Characteristics&peimage.IMAGE_FILE_RELOCS_STRIPPED != 0}
	if err := pp.validate(userLimit); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pp.img = pp.Layout()
	if pp.Imports, err = f.Imports(pp.img); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrCorrupt, err)
	}
	return pp, nil
}

func (pp *Image) validate(userLimit uint64) error {
	oh := pp.File.OptionalHeader64
	if oh.SizeOfImage == 0 || oh.SizeOfImage > maxImageSize {
		return fmt.Errorf("%w: SizeOfImage %#x", ErrCorrupt, oh.SizeOfImage)
	}
	if oh.SectionAlignment < pageSize || oh.SectionAlignment&(oh.SectionAlignment-1) != 0 {
		return fmt.Errorf("%w: SectionAlignment %#x (only page-aligned images are supported)", ErrCorrupt, oh.SectionAlignment)
	}
	if oh.ImageBase%0x10000 != 0 || oh.ImageBase == 0 || oh.ImageBase+uint64(oh.SizeOfImage) > userLimit {
		return fmt.Errorf("%w: ImageBase %#x", ErrCorrupt, oh.ImageBase)
	}
	if oh.SizeOfHeaders > oh.SizeOfImage {
		return fmt.Errorf("%w: SizeOfHeaders %#x beyond SizeOfImage", ErrCorrupt, oh.SizeOfHeaders)
	}
	if oh.AddressOfEntryPoint >= oh.SizeOfImage {
		return fmt.Errorf("%w: entry point rva %#x outside the image", ErrCorrupt, oh.AddressOfEntryPoint)
	}
	if len(pp.File.Sections) == 0 {
		return fmt.Errorf("%w: no sections", ErrCorrupt)
	}
	for i, s := range pp.File.Sections {
		vsize := s.MemSize()
		if uint64(s.VirtualAddress)+uint64(vsize) > uint64(oh.SizeOfImage) {
			return fmt.Errorf("%w: section %d (%q) rva %#x+%#x beyond SizeOfImage %#x", ErrCorrupt, i, s.Name, s.VirtualAddress, vsize, oh.SizeOfImage)
		}
		if s.SizeOfRawData > 0 && uint64(s.PointerToRawData) >= uint64(len(pp.Data)) {
			return fmt.Errorf("%w: section %d (%q) raw data at %#x beyond the file", ErrCorrupt, i, s.Name, s.PointerToRawData)
		}
	}
	return nil
}

// Layout returns the image in memory layout, SizeOfImage rounded up to
// the page: the copy Parse made the first time, a new one after.
func (pp *Image) Layout() []byte {
	if img := pp.img; img != nil {
		pp.img = nil
		return img
	}
	img, err := pp.File.Layout()
	if err != nil {
		return make([]byte, pageUp(uint64(pp.File.SizeOfImage)))
	}
	if n := pageUp(uint64(len(img))); n > uint64(len(img)) {
		img = append(img, make([]byte, n-uint64(len(img)))...)
	}
	return img
}

// Sections are the image's sections as mapped.
func (pp *Image) Sections() []Section {
	var out []Section
	for _, s := range pp.File.Sections {
		out = append(out, Section{Name: s.Name, RVA: s.VirtualAddress, Size: s.MemSize(), Characteristics: s.Characteristics})
	}
	return out
}

// Perm is the page permission IMAGE_SCN_* characteristics give.
func Perm(c uint32) arch.Perm {
	var p arch.Perm
	if c&peimage.IMAGE_SCN_MEM_READ != 0 {
		p |= arch.PermRead
	}
	if c&peimage.IMAGE_SCN_MEM_WRITE != 0 {
		p |= arch.PermWrite
	}
	if c&peimage.IMAGE_SCN_MEM_EXECUTE != 0 {
		p |= arch.PermExec | arch.PermRead
	}
	return p
}

// Relocate rebases img from its preferred base by delta.
func (pp *Image) Relocate(img []byte, delta uint64) error {
	if err := pp.File.Relocate(img, pp.File.ImageBase+delta); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil
}

// ExportTable is a parsed export directory.
type ExportTable struct {
	Names   map[string]uint32 // name -> index into Funcs
	Funcs   []uint32          // RVAs (or forwarder string RVAs)
	Fwd     map[uint32]string // index -> forwarder
	OrdBase uint32
}

// ParseExports decodes an export directory from a memory-layout image
// (internal/peimage); names beyond the function table are skipped.
func ParseExports(img []byte, dirRVA, dirSize uint32) (*ExportTable, error) {
	et := &ExportTable{Names: map[string]uint32{}, Fwd: map[uint32]string{}}
	if dirRVA == 0 {
		return et, nil
	}
	t, err := peimage.ReadExportTable(peimage.Bytes(img), 0, peimage.DataDirectory{VirtualAddress: dirRVA, Size: dirSize})
	if err != nil {
		return nil, fmt.Errorf("%w: export directory at rva %#x: %v", ErrCorrupt, dirRVA, err)
	}
	et.OrdBase, et.Funcs = t.OrdinalBase, t.Functions
	for i, r := range et.Funcs {
		if t.IsForwarder(r) {
			et.Fwd[uint32(i)] = peimage.CString(img, r, peimage.MaxName)
		}
	}
	for _, n := range t.Names {
		if n.Index < uint32(len(et.Funcs)) {
			et.Names[n.Name] = n.Index
		}
	}
	return et, nil
}

// Section is a section as mapped: what its pages hold and allow.
type Section struct {
	Name            string
	RVA, Size       uint32
	Characteristics uint32 // IMAGE_SCN_*
}

// PagePerms is the permission of each page of an image of size bytes:
// read-only, with each section's permissions added to its pages.
func PagePerms(size uint64, secs []Section) []arch.Perm {
	n := pageUp(size) / pageSize
	perms := make([]arch.Perm, n)
	for i := range perms {
		perms[i] = arch.PermRead
	}
	for _, s := range secs {
		if s.Size == 0 {
			continue
		}
		first := uint64(s.RVA) / pageSize
		last := (uint64(s.RVA) + uint64(s.Size) - 1) / pageSize
		for pg := first; pg <= last && pg < n; pg++ {
			perms[pg] |= Perm(s.Characteristics)
		}
	}
	return perms
}

// PermRuns splits pages into runs [first, end) of equal permission.
func PermRuns(perms []arch.Perm) [][2]uint64 {
	var runs [][2]uint64
	n := uint64(len(perms))
	for i := uint64(0); i < n; {
		j := i
		for j < n && perms[j] == perms[i] {
			j++
		}
		runs = append(runs, [2]uint64{i, j})
		i = j
	}
	return runs
}
