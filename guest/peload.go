package guest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/saferwall/pe"
	pelog "github.com/saferwall/pe/log"
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

// peLogger collects saferwall/pe's warnings so that a directory it could not
// parse becomes an error instead of a silent omission, and so that it never
// prints anything.
type peLogger struct{ msgs []string }

func (l *peLogger) Log(level pelog.Level, kv ...interface{}) error {
	if level >= pelog.LevelWarn && len(l.msgs) < 32 {
		var parts []string
		for i := 1; i < len(kv); i += 2 {
			parts = append(parts, fmt.Sprint(kv[i]))
		}
		l.msgs = append(l.msgs, strings.Join(parts, " "))
	}
	return nil
}

// maxImageSize bounds SizeOfImage (Windows itself refuses far less).
const maxImageSize = 1 << 30

// parsedPE is what the loader needs from a file, validated.
type parsedPE struct {
	path        string
	data        []byte
	file        *pe.File
	oh          pe.ImageOptionalHeader64
	isDLL       bool
	relocsStrip bool
}

func parsePE(path string, data []byte) (pp *parsedPE, err error) {
	defer func() {
		if r := recover(); r != nil {
			pp, err = nil, fmt.Errorf("%s: %w: parser failure: %v", path, ErrCorrupt, r)
		}
	}()
	if len(data) < 2 || data[0] != 'M' || data[1] != 'Z' {
		return nil, fmt.Errorf("%s: %w (no MZ signature)", path, ErrNotPE)
	}
	lg := &peLogger{}
	f, err := pe.NewBytes(data, &pe.Options{
		Logger:                     lg,
		MaxCOFFSymbolsCount:        1,
		DisableCertValidation:      true,
		DisableSignatureValidation: true,
		OmitExportDirectory:        true, // parsed from the mapped image instead
		OmitExceptionDirectory:     true,
		OmitResourceDirectory:      true,
		OmitSecurityDirectory:      true,
		OmitDebugDirectory:         true,
		OmitArchitectureDirectory:  true,
		OmitGlobalPtrDirectory:     true,
		OmitTLSDirectory:           true, // read from the mapped, relocated image
		OmitLoadConfigDirectory:    true, // its parser prints to stdout
		OmitBoundImportDirectory:   true,
		OmitIATDirectory:           true,
		OmitDelayImportDirectory:   true,
		OmitCLRHeaderDirectory:     true,
		OmitCLRMetadata:            true,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrCorrupt, err)
	}
	if err := f.Parse(); err != nil {
		if len(data) < 0x40 || !hasPESignature(data) {
			return nil, fmt.Errorf("%s: %w: %v", path, ErrNotPE, err)
		}
		return nil, fmt.Errorf("%s: %w: %v %s", path, ErrCorrupt, err, strings.Join(lg.msgs, "; "))
	}
	if f.NtHeader.FileHeader.Machine != pe.ImageFileMachineAMD64 || !f.Is64 {
		return nil, fmt.Errorf("%s: %w (machine %#x)", path, ErrNotX64, uint16(f.NtHeader.FileHeader.Machine))
	}
	oh, ok := f.NtHeader.OptionalHeader.(pe.ImageOptionalHeader64)
	if !ok {
		return nil, fmt.Errorf("%s: %w", path, ErrNotX64)
	}
	if len(lg.msgs) > 0 {
		return nil, fmt.Errorf("%s: %w: %s", path, ErrCorrupt, strings.Join(lg.msgs, "; "))
	}
	pp = &parsedPE{path: path, data: data, file: f, oh: oh,
		isDLL:       f.NtHeader.FileHeader.Characteristics&pe.ImageFileDLL != 0,
		relocsStrip: f.NtHeader.FileHeader.Characteristics&pe.ImageFileRelocsStripped != 0}
	if err := pp.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pp, nil
}

func hasPESignature(data []byte) bool {
	off := uint64(binary.LittleEndian.Uint32(data[0x3C:]))
	return off+4 <= uint64(len(data)) && string(data[off:off+4]) == "PE\x00\x00"
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
		h := s.Header
		vsize := h.VirtualSize
		if vsize == 0 {
			vsize = h.SizeOfRawData
		}
		if uint64(h.VirtualAddress)+uint64(vsize) > uint64(oh.SizeOfImage) {
			return fmt.Errorf("%w: section %d (%q) rva %#x+%#x beyond SizeOfImage %#x", ErrCorrupt, i, s.String(), h.VirtualAddress, vsize, oh.SizeOfImage)
		}
		if h.SizeOfRawData > 0 && uint64(h.PointerToRawData) >= uint64(len(pp.data)) {
			return fmt.Errorf("%w: section %d (%q) raw data at %#x beyond the file", ErrCorrupt, i, s.String(), h.PointerToRawData)
		}
	}
	return nil
}

// layout copies headers and section contents into a buffer in memory layout.
func (pp *parsedPE) layout() []byte {
	img := make([]byte, pageUp(uint64(pp.oh.SizeOfImage)))
	hdr := int(pp.oh.SizeOfHeaders)
	if hdr > len(pp.data) {
		hdr = len(pp.data)
	}
	copy(img, pp.data[:hdr])
	for _, s := range pp.file.Sections {
		h := s.Header
		n := uint64(h.SizeOfRawData)
		if h.VirtualSize != 0 && uint64(h.VirtualSize) < n {
			n = uint64(h.VirtualSize)
		}
		start := uint64(h.PointerToRawData)
		if start > uint64(len(pp.data)) {
			continue
		}
		if start+n > uint64(len(pp.data)) {
			n = uint64(len(pp.data)) - start
		}
		if uint64(h.VirtualAddress)+n > uint64(len(img)) {
			n = uint64(len(img)) - uint64(h.VirtualAddress)
		}
		copy(img[h.VirtualAddress:], pp.data[start:start+n])
	}
	return img
}

func (pp *parsedPE) sections() []sectionInfo {
	var out []sectionInfo
	for _, s := range pp.file.Sections {
		h := s.Header
		vs := h.VirtualSize
		if vs == 0 {
			vs = h.SizeOfRawData
		}
		out = append(out, sectionInfo{name: s.String(), rva: h.VirtualAddress, size: vs, perm: h.Characteristics})
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
	le := binary.LittleEndian
	for bi, r := range pp.file.Relocations {
		for _, e := range r.Entries {
			off := uint64(r.Data.VirtualAddress) + uint64(e.Offset)
			switch e.Type {
			case pe.ImageRelBasedAbsolute:
			case pe.ImageRelBasedDir64:
				if off+8 > uint64(len(img)) {
					return fmt.Errorf("%w: relocation block %d: DIR64 at rva %#x outside the image", ErrCorrupt, bi, off)
				}
				le.PutUint64(img[off:], le.Uint64(img[off:])+delta)
			case pe.ImageRelBasedHighLow:
				if off+4 > uint64(len(img)) {
					return fmt.Errorf("%w: relocation block %d: HIGHLOW at rva %#x outside the image", ErrCorrupt, bi, off)
				}
				le.PutUint32(img[off:], le.Uint32(img[off:])+uint32(delta))
			default:
				return fmt.Errorf("%w: relocation block %d: unsupported type %d at rva %#x", ErrCorrupt, bi, e.Type, off)
			}
		}
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

// parseExports decodes an export directory from a memory-layout image.
// Bounded by the image and by maxExports; bad entries are skipped.
func parseExports(img []byte, dirRVA, dirSize uint32) (*exportTable, error) {
	const maxExports = 1 << 16
	le := binary.LittleEndian
	et := &exportTable{names: map[string]uint32{}, fwd: map[uint32]string{}}
	if dirRVA == 0 {
		return et, nil
	}
	if uint64(dirRVA)+40 > uint64(len(img)) {
		return nil, fmt.Errorf("%w: export directory rva %#x outside the image", ErrCorrupt, dirRVA)
	}
	d := img[dirRVA:]
	et.ordBase = le.Uint32(d[16:])
	nf, nn := le.Uint32(d[20:]), le.Uint32(d[24:])
	aof, aon, aoo := le.Uint32(d[28:]), le.Uint32(d[32:]), le.Uint32(d[36:])
	if nf > maxExports || nn > maxExports || uint64(aof)+4*uint64(nf) > uint64(len(img)) ||
		uint64(aon)+4*uint64(nn) > uint64(len(img)) || uint64(aoo)+2*uint64(nn) > uint64(len(img)) {
		return nil, fmt.Errorf("%w: export directory tables outside the image", ErrCorrupt)
	}
	et.funcs = make([]uint32, nf)
	for i := range et.funcs {
		r := le.Uint32(img[aof+4*uint32(i):])
		et.funcs[i] = r
		if r >= dirRVA && r < dirRVA+dirSize {
			et.fwd[uint32(i)] = cstr(img, r, 512)
		}
	}
	for i := uint32(0); i < nn; i++ {
		nr := le.Uint32(img[aon+4*i:])
		idx := uint32(le.Uint16(img[aoo+2*i:]))
		if idx >= nf || nr >= uint32(len(img)) {
			continue
		}
		et.names[cstr(img, nr, 512)] = idx
	}
	return et, nil
}

func cstr(b []byte, off uint32, max int) string {
	if uint64(off) >= uint64(len(b)) {
		return ""
	}
	s := b[off:]
	if len(s) > max {
		s = s[:max]
	}
	for i, c := range s {
		if c == 0 {
			return string(s[:i])
		}
	}
	return string(s)
}
