package guest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/peimage"
)

// Errors for bad program files. Load wraps them with the path and detail.
var (
	ErrNotFound     = errors.New("file not found")
	ErrNotPE        = errors.New("not a PE image")
	ErrNotX64       = errors.New("not an x86-64 (PE32+) image")
	ErrCorrupt      = errors.New("corrupt PE image")
	ErrDLLNotFound  = errors.New("DLL not found")
	ErrImport       = errors.New("unresolved import")
	ErrNoRelocation = errors.New("image base is taken and the image has no relocations")
)

// maxImageSize bounds SizeOfImage (Windows itself refuses far less).
const maxImageSize = 1 << 30

// parsedPE is what the loader needs from a file, validated.
type parsedPE struct {
	path        string
	data        []byte
	file        *peimage.File
	oh          peimage.OptionalHeader64
	imports     []peimage.Import
	img         []byte // memory layout, until mapReal takes it
	isDLL       bool
	relocsStrip bool
}

// parsePE reads a program or DLL file through internal/peimage and checks
// what the loader relies on.
func parsePE(path string, data []byte) (pp *parsedPE, err error) {
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
	pp = &parsedPE{path: path, data: data, file: f, oh: f.OptionalHeader64,
		isDLL:       f.Characteristics&peimage.IMAGE_FILE_DLL != 0,
		relocsStrip: f.Characteristics&peimage.IMAGE_FILE_RELOCS_STRIPPED != 0}
	if err := pp.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pp.img = pp.layout()
	if pp.imports, err = f.Imports(pp.img); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrCorrupt, err)
	}
	return pp, nil
}

func (pp *parsedPE) validate() error {
	oh := pp.oh
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
	if len(pp.file.Sections) == 0 {
		return fmt.Errorf("%w: no sections", ErrCorrupt)
	}
	for i, s := range pp.file.Sections {
		vsize := s.MemSize()
		if uint64(s.VirtualAddress)+uint64(vsize) > uint64(oh.SizeOfImage) {
			return fmt.Errorf("%w: section %d (%q) rva %#x+%#x beyond SizeOfImage %#x", ErrCorrupt, i, s.Name, s.VirtualAddress, vsize, oh.SizeOfImage)
		}
		if s.SizeOfRawData > 0 && uint64(s.PointerToRawData) >= uint64(len(pp.data)) {
			return fmt.Errorf("%w: section %d (%q) raw data at %#x beyond the file", ErrCorrupt, i, s.Name, s.PointerToRawData)
		}
	}
	return nil
}

// layout returns the image in memory layout, SizeOfImage rounded up to
// the page: the copy parsePE made the first time, a new one after.
func (pp *parsedPE) layout() []byte {
	if img := pp.img; img != nil {
		pp.img = nil
		return img
	}
	img, err := pp.file.Layout()
	if err != nil {
		return make([]byte, pageUp(uint64(pp.oh.SizeOfImage)))
	}
	if n := pageUp(uint64(len(img))); n > uint64(len(img)) {
		img = append(img, make([]byte, n-uint64(len(img)))...)
	}
	return img
}

func (pp *parsedPE) sections() []sectionInfo {
	var out []sectionInfo
	for _, s := range pp.file.Sections {
		out = append(out, sectionInfo{name: s.Name, rva: s.VirtualAddress, size: s.MemSize(), perm: s.Characteristics})
	}
	return out
}

func scnPerm(c uint32) arch.Perm {
	var p arch.Perm
	if c&scnRead != 0 {
		p |= arch.PermRead
	}
	if c&scnWrite != 0 {
		p |= arch.PermWrite
	}
	if c&scnExec != 0 {
		p |= arch.PermExec | arch.PermRead
	}
	return p
}

// applyRelocations rebases img from its preferred base by delta.
func (pp *parsedPE) applyRelocations(img []byte, delta uint64) error {
	if err := pp.file.Relocate(img, pp.oh.ImageBase+delta); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil
}

// findDLL looks for a DLL file beside the program and in the DLL paths.
func (p *Process) findDLL(name string) (string, bool) {
	dirs := append([]string{filepath.Dir(p.exePath)}, p.cfg.DLLPaths...)
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !e.IsDir() && strings.EqualFold(e.Name(), name) {
				return filepath.Join(d, e.Name()), true
			}
		}
	}
	return "", false
}

// exportTable is a parsed export directory.
type exportTable struct {
	names   map[string]uint32 // name -> index into funcs
	funcs   []uint32          // RVAs (or forwarder string RVAs)
	fwd     map[uint32]string // index -> forwarder
	ordBase uint32
}

// parseExports decodes an export directory from a memory-layout image
// (internal/peimage); names beyond the function table are skipped.
func parseExports(img []byte, dirRVA, dirSize uint32) (*exportTable, error) {
	et := &exportTable{names: map[string]uint32{}, fwd: map[uint32]string{}}
	if dirRVA == 0 {
		return et, nil
	}
	t, err := peimage.ReadExportTable(peimage.Bytes(img), 0, peimage.DataDirectory{VirtualAddress: dirRVA, Size: dirSize})
	if err != nil {
		return nil, fmt.Errorf("%w: export directory at rva %#x: %v", ErrCorrupt, dirRVA, err)
	}
	et.ordBase, et.funcs = t.OrdinalBase, t.Functions
	for i, r := range et.funcs {
		if t.IsForwarder(r) {
			et.fwd[uint32(i)] = peimage.CString(img, r, peimage.MaxName)
		}
	}
	for _, n := range t.Names {
		if n.Index < uint32(len(et.funcs)) {
			et.names[n.Name] = n.Index
		}
	}
	return et, nil
}
