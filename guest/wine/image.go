package wine

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/loaded"
	"github.com/rspstub/rspstub/internal/peimage"
)

// Images are mapped as Windows' memory manager maps a SEC_IMAGE view (and
// as Wine's unix side does in map_image_into_view): at the preferred base
// when it is free, elsewhere with base relocations applied otherwise; the
// headers read-only, each section with the protection its characteristics
// give (writable sections copy-on-write), pages shared by two sections
// with the union of both.

// sectionProt is the page protection of a section's characteristics.
func sectionProt(ch uint32) uint32 {
	x := ch&peimage.IMAGE_SCN_MEM_EXECUTE != 0
	w := ch&peimage.IMAGE_SCN_MEM_WRITE != 0
	r := ch&peimage.IMAGE_SCN_MEM_READ != 0
	shared := ch&peimage.IMAGE_SCN_MEM_SHARED != 0
	switch {
	case x && w && shared:
		return process.PAGE_EXECUTE_READWRITE
	case x && w:
		return process.PAGE_EXECUTE_WRITECOPY
	case x && r:
		return process.PAGE_EXECUTE_READ
	case x:
		return process.PAGE_EXECUTE
	case w && shared:
		return process.PAGE_READWRITE
	case w:
		return process.PAGE_WRITECOPY
	case r:
		return process.PAGE_READONLY
	}
	return process.PAGE_NOACCESS
}

// unionProt combines two protections of one page.
func unionProt(a, b uint32) uint32 {
	pa, pb := perm(a)|perm(b), uint32(0)
	cow := (a|b)&(process.PAGE_WRITECOPY|process.PAGE_EXECUTE_WRITECOPY) != 0
	switch {
	case pa&arch.PermExec != 0 && pa&arch.PermWrite != 0:
		pb = process.PAGE_EXECUTE_READWRITE
		if cow {
			pb = process.PAGE_EXECUTE_WRITECOPY
		}
	case pa&arch.PermExec != 0:
		pb = process.PAGE_EXECUTE_READ
	case pa&arch.PermWrite != 0:
		pb = process.PAGE_READWRITE
		if cow {
			pb = process.PAGE_WRITECOPY
		}
	case pa&arch.PermRead != 0:
		pb = process.PAGE_READONLY
	default:
		pb = process.PAGE_NOACCESS
	}
	return pb
}

// imageInfo is what a SEC_IMAGE section knows of its file.
type imageInfo struct {
	file      *peimage.File
	data      []byte
	hostPath  string
	guestPath string
}

// wineBuiltin reports the "Wine builtin DLL" marker Wine's own DLLs carry
// after their DOS header.
func (ii *imageInfo) wineBuiltin() bool {
	return len(ii.data) >= 0x40+32 && bytes.HasPrefix(ii.data[0x40:], []byte("Wine builtin DLL"))
}

// mapImageFile maps an image at its preferred base (or elsewhere) and
// records it as a module.
func (p *Process) mapImageFile(f *peimage.File, data []byte, hostPath, guestPath string) (*Module, error) {
	mod, _, err := p.mapImage(&imageInfo{file: f, data: data, hostPath: hostPath, guestPath: guestPath}, 0)
	if errors.Is(err, errConflict) {
		return nil, fmt.Errorf("%s cannot be placed: its base %#x is taken and it has no relocations", guestPath, f.ImageBase)
	}
	return mod, err
}

var errConflict = errors.New("conflicting addresses")

// mapImage maps an image view. want is the address the caller asked for
// (0: any). The status is STATUS_IMAGE_NOT_AT_BASE when the image moved.
func (p *Process) mapImage(ii *imageInfo, want uint64) (*Module, ntstatus, error) {
	f := ii.file
	size := process.PageUp(uint64(f.SizeOfImage))
	span := (size + allocGranule - 1) &^ (allocGranule - 1)
	status := STATUS_SUCCESS
	base := f.ImageBase
	switch {
	case want != 0:
		if want%allocGranule != 0 || !p.vm.isFree(want, span) {
			return nil, STATUS_CONFLICTING_ADDRESSES, errConflict
		}
		base = want
	case !p.vm.isFree(base, span):
		var ok bool
		if base, ok = p.vm.findFree(span, allocGranule, 0x1_0000_0000, false); !ok {
			return nil, STATUS_NO_MEMORY, fmt.Errorf("no room for a %#x-byte image", size)
		}
	}
	// At its own base the image is written into guest memory piece by
	// piece after the commit (no relocation to apply first): building
	// the whole image in a buffer cost the start-up a fresh megabytes-long
	// allocation and a copy.
	var img []byte
	if base != f.ImageBase {
		var err error
		if img, err = f.Layout(); err != nil {
			return nil, STATUS_INVALID_IMAGE_FORMAT, err
		}
		if err := f.Relocate(img, base); err != nil {
			if errors.Is(err, peimage.ErrNoRelocations) {
				return nil, STATUS_CONFLICTING_ADDRESSES, errConflict
			}
			return nil, STATUS_INVALID_IMAGE_FORMAT, err
		}
		status = STATUS_IMAGE_NOT_AT_BASE
	}
	// The module's name is its file's, as Wine's loader lists it
	// (LDR_DATA_TABLE_ENTRY.BaseDllName), so module lists read from guest
	// memory agree.
	name := path.Base(strings.ReplaceAll(ii.guestPath, `\`, "/"))
	a, err := p.vm.reserve(base, size, process.PAGE_EXECUTE_WRITECOPY, process.MEM_IMAGE, name)
	if err != nil {
		return nil, STATUS_NO_MEMORY, err
	}
	// Page protections: headers read-only, then each section's.
	npages := size / process.PageSize
	prots := make([]uint32, npages)
	for i := range prots {
		prots[i] = process.PAGE_READONLY
	}
	hdrPages := process.PageUp(uint64(f.SizeOfHeaders)) / process.PageSize
	if hdrPages == 0 {
		hdrPages = 1
	}
	seen := make([]bool, npages)
	for i := uint64(0); i < hdrPages && i < npages; i++ {
		seen[i] = true
	}
	for _, s := range f.Sections {
		sp := sectionProt(s.Characteristics)
		first := uint64(s.VirtualAddress) / process.PageSize
		last := process.PageUp(uint64(s.VirtualAddress)+uint64(s.MemSize())) / process.PageSize
		for pg := first; pg < last && pg < npages; pg++ {
			if seen[pg] && pg >= hdrPages {
				prots[pg] = unionProt(prots[pg], sp)
			} else {
				prots[pg] = sp
			}
			seen[pg] = true
		}
	}
	for start := uint64(0); start < npages; {
		end := start + 1
		for end < npages && prots[end] == prots[start] {
			end++
		}
		lo, hi := start*process.PageSize, end*process.PageSize
		if hi > uint64(len(img)) {
			hi = uint64(len(img))
		}
		var data []byte
		if lo < hi {
			data = img[lo:hi]
		}
		if err := p.vm.commitData(a, base+start*process.PageSize, (end-start)*process.PageSize, prots[start], data); err != nil {
			p.vm.release(a)
			if errors.Is(err, errCommitLimit) {
				return nil, STATUS_COMMITMENT_LIMIT, err
			}
			return nil, STATUS_NO_MEMORY, err
		}
		start = end
	}
	if img == nil {
		var werr error
		f.LayoutPieces(func(rva uint32, b []byte) {
			if werr != nil {
				return
			}
			if n, err := p.m.WriteMemory(base+uint64(rva), b); err != nil || n != len(b) {
				werr = &vmError{"write", fmt.Errorf("%d of %d bytes at %#x: %v", n, len(b), base+uint64(rva), err)}
			}
		})
		if werr != nil {
			p.vm.release(a)
			return nil, STATUS_NO_MEMORY, werr
		}
	}
	mod := &Module{Module: loaded.Module{Name: name, Path: ii.guestPath, Base: base, Size: size, HostPath: ii.hostPath}}
	if len(f.Sections) > 0 {
		mod.FirstSectionRVA = f.Sections[0].VirtualAddress
	}
	if f.AddressOfEntryPoint != 0 {
		mod.EntryPoint = base + uint64(f.AddressOfEntryPoint)
	}
	a.view = &view{image: ii, module: mod}
	p.modules = append(p.modules, mod)
	p.modsChanged = true
	p.modGen++
	return mod, status, nil
}

// unmapView releases a mapped view (image or data).
func (p *Process) unmapView(a *allocation) error {
	if a.view != nil && a.view.module != nil {
		for i, m := range p.modules {
			if m == a.view.module {
				p.modules = append(p.modules[:i], p.modules[i+1:]...)
				p.modsChanged = true
				p.modGen++
				break
			}
		}
	}
	return p.vm.release(a)
}

// imageInformation is SECTION_IMAGE_INFORMATION for an image.
func (ii *imageInfo) imageInformation() []byte {
	f := ii.file
	b := make(memw, siiSize)
	b.u64(0x0, f.ImageBase+uint64(f.AddressOfEntryPoint)) // TransferAddress
	b.u64(0x10, f.SizeOfStackReserve)
	b.u64(0x18, f.SizeOfStackCommit)
	b.u32(0x20, uint32(f.Subsystem))
	b.u16(0x24, f.MinorSubsystemVersion)
	b.u16(0x26, f.MajorSubsystemVersion)
	b.u16(0x28, f.MajorOperatingSystemVersion)
	b.u16(0x2a, f.MinorOperatingSystemVersion)
	b.u16(0x2c, f.Characteristics)
	b.u16(0x2e, f.DllCharacteristics)
	b.u16(0x30, f.Machine)
	hasCode := false
	for _, s := range f.Sections {
		if s.Characteristics&(peimage.IMAGE_SCN_CNT_CODE|peimage.IMAGE_SCN_MEM_EXECUTE) != 0 {
			hasCode = true
		}
	}
	if hasCode {
		b.u8(0x32, 1)
	}
	var flags uint8
	if ii.wineBuiltin() {
		flags |= 0x40 // WineBuiltin
	}
	b.u8(0x33, flags)
	b.u32(0x34, f.LoaderFlags)
	b.u32(0x38, uint32(len(ii.data)))
	b.u32(0x3c, f.CheckSum)
	return b
}
