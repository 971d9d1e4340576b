package wine

import (
	"errors"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/peimage"
)

// Sections and views: image sections (what Wine's loader maps DLLs with),
// file-backed data sections and pagefile-backed ones. A data view is a
// copy of the section's bytes when it is mapped; views of one pagefile
// section do not share memory.

type sectionObject struct {
	image *imageInfo // SEC_IMAGE
	data  []byte     // file contents for a file-backed data section
	size  uint64
	prot  uint32
	attrs uint32
}

func (s *sectionObject) typeName() string { return "Section" }

// view is what a mapped allocation came from.
type view struct {
	image  *imageInfo
	module *Module
	sec    *sectionObject
}

const (
	STATUS_INVALID_IMAGE_NOT_MZ  ntstatus = 0xC000012F
	STATUS_INVALID_IMAGE_WIN_64  ntstatus = 0xC0000359
	STATUS_INVALID_FILE_FOR_SECT ntstatus = 0xC0000020
	maxSectionFile                        = 512 << 20
)

// NtCreateSection(*handle, access, attr, *max_size, prot, attributes, file)
func ntCreateSection(p *Process, c *call) ntstatus {
	out, access, attr, sizePtr, prot, attrs, fh := c.arg(0), c.arg32(1), c.arg(2), c.arg(3), c.arg32(4), c.arg32(5), c.arg(6)
	_, name, _ := c.objectAttributes(attr)
	var size uint64
	if sizePtr != 0 {
		size = c.u64(sizePtr)
	}
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	c.note("file=%#x attrs=%#x size=%#x %q", fh, attrs, size, name)
	sec := &sectionObject{size: size, prot: prot, attrs: attrs}
	if fh != 0 {
		o, st := p.objectOf(fh)
		if st != STATUS_SUCCESS {
			return st
		}
		f, ok := o.(*fileObject)
		if !ok || f.isDir || f.host == nil {
			return STATUS_INVALID_FILE_FOR_SECT
		}
		data, err := f.readAll(maxSectionFile)
		if err != nil {
			return STATUS_INVALID_FILE_FOR_SECT
		}
		if attrs&SEC_IMAGE != 0 {
			pf, err := peimage.Parse(data)
			switch {
			case errors.Is(err, peimage.ErrNotPE32Plus):
				return STATUS_INVALID_IMAGE_WIN_64
			case err != nil:
				return STATUS_INVALID_IMAGE_NOT_MZ
			}
			sec.image = &imageInfo{file: pf, data: data, hostPath: f.hostPath, guestPath: f.guestPath}
			sec.size = process.PageUp(uint64(pf.SizeOfImage))
		} else {
			sec.data = data
			if sec.size == 0 {
				sec.size = uint64(len(data))
			}
			if sec.size == 0 {
				return STATUS_MAPPED_FILE_SIZE_ZERO
			}
		}
	} else if sec.size == 0 {
		return STATUS_INVALID_PARAMETER_4
	}
	if name != "" {
		if o := p.handles.lookupName(name); o != nil {
			if _, ok := o.(*sectionObject); ok {
				h := p.handles.add(o, access)
				c.put64(out, h)
				return STATUS_OBJECT_NAME_EXISTS
			}
			return STATUS_OBJECT_NAME_COLLISION
		}
		p.handles.setName(name, sec)
	}
	h := p.handles.add(sec, access)
	if h == 0 {
		return STATUS_INSUFFICIENT_RESOURCES
	}
	c.put64(out, h)
	return STATUS_SUCCESS
}

const (
	STATUS_INVALID_PARAMETER_4    ntstatus = 0xC00000F2
	STATUS_INSUFFICIENT_RESOURCES ntstatus = 0xC000009A
)

// NtOpenSection(*handle, access, attr)
func ntOpenSection(p *Process, c *call) ntstatus {
	_, name, _ := c.objectAttributes(c.arg(2))
	c.note("%q", name)
	o := p.handles.lookupName(name)
	if o == nil {
		return STATUS_OBJECT_NAME_NOT_FOUND
	}
	if _, ok := o.(*sectionObject); !ok {
		return STATUS_OBJECT_TYPE_MISMATCH
	}
	c.put64(c.arg(0), p.handles.add(o, c.arg32(1)))
	return STATUS_SUCCESS
}

// NtMapViewOfSection(section, process, *base, zero_bits, commit_size,
// *offset, *view_size, inherit, alloc_type, prot)
func ntMapViewOfSection(p *Process, c *call) ntstatus {
	sh, proc, basePtr, offPtr, sizePtr, prot := c.arg(0), c.arg(1), c.arg(2), c.arg(5), c.arg(6), c.arg32(9)
	return p.mapView(c, sh, proc, basePtr, offPtr, sizePtr, prot)
}

// NtMapViewOfSectionEx(section, process, *base, *offset, *view_size,
// alloc_type, prot, params, count)
func ntMapViewOfSectionEx(p *Process, c *call) ntstatus {
	sh, proc, basePtr, offPtr, sizePtr, prot := c.arg(0), c.arg(1), c.arg(2), c.arg(3), c.arg(4), c.arg32(6)
	return p.mapView(c, sh, proc, basePtr, offPtr, sizePtr, prot)
}

func (p *Process) mapView(c *call, sh, proc, basePtr, offPtr, sizePtr uint64, prot uint32) ntstatus {
	if !p.isSelf(proc) {
		return STATUS_INVALID_HANDLE
	}
	o, st := p.objectOf(sh)
	if st != STATUS_SUCCESS {
		return st
	}
	sec, ok := o.(*sectionObject)
	if !ok {
		return STATUS_OBJECT_TYPE_MISMATCH
	}
	want := c.u64(basePtr)
	var off uint64
	if offPtr != 0 {
		off = c.u64(offPtr)
	}
	size := c.u64(sizePtr)
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	if sec.image != nil {
		mod, st, err := p.mapImage(sec.image, want)
		if err != nil && !errors.Is(err, errConflict) {
			if _, vm := err.(*vmError); vm {
				c.fail(err)
			}
		}
		if st != STATUS_SUCCESS && st != STATUS_IMAGE_NOT_AT_BASE {
			return st
		}
		c.note("%s at %#x", mod.Path, mod.Base)
		c.put64(basePtr, mod.Base)
		c.put64(sizePtr, mod.Size)
		return st
	}
	if off%allocGranule != 0 || off > sec.size {
		return STATUS_MAPPED_ALIGNMENT
	}
	if size == 0 {
		size = sec.size - off
	}
	if size == 0 || off+size > sec.size || off+size < off {
		return STATUS_INVALID_VIEW_SIZE
	}
	if !validProt(prot) {
		return STATUS_INVALID_PAGE_PROTECTION
	}
	span := process.PageUp(size)
	var base uint64
	if want != 0 {
		base = want &^ (allocGranule - 1)
		if !p.vm.isFree(base, span) {
			return STATUS_CONFLICTING_ADDRESSES
		}
	} else {
		var ok bool
		if base, ok = p.vm.findFree((span+allocGranule-1)&^(allocGranule-1), allocGranule, 0, false); !ok {
			return STATUS_NO_MEMORY
		}
	}
	a, err := p.vm.reserve(base, span, prot, process.MEM_MAPPED, "mapped view")
	if err != nil {
		return STATUS_NO_MEMORY
	}
	a.view = &view{sec: sec}
	if sec.attrs&SEC_RESERVE == 0 {
		if err := p.vm.commit(a, base, span, prot); err != nil {
			c.fail(err)
			return STATUS_NO_MEMORY
		}
		if off < uint64(len(sec.data)) {
			end := off + size
			if end > uint64(len(sec.data)) {
				end = uint64(len(sec.data))
			}
			c.fail(p.mem.Write(base, sec.data[off:end]))
		}
	}
	c.note("data view at %#x+%#x", base, span)
	c.put64(basePtr, base)
	c.put64(sizePtr, span)
	return STATUS_SUCCESS
}

const (
	STATUS_MAPPED_ALIGNMENT      ntstatus = 0xC0000220
	STATUS_MAPPED_FILE_SIZE_ZERO ntstatus = 0xC000011E
)

// NtUnmapViewOfSection(process, addr)
func ntUnmapViewOfSection(p *Process, c *call) ntstatus {
	if !p.isSelf(c.arg(0)) {
		return STATUS_INVALID_HANDLE
	}
	addr := c.arg(1)
	a := p.vm.find(addr)
	if a == nil || a.view == nil {
		return STATUS_NOT_MAPPED_VIEW
	}
	c.note("%#x", a.base)
	if err := p.unmapView(a); err != nil {
		c.fail(err)
	}
	return STATUS_SUCCESS
}

// NtUnmapViewOfSectionEx(process, addr, flags)
func ntUnmapViewOfSectionEx(p *Process, c *call) ntstatus { return ntUnmapViewOfSection(p, c) }

// NtQuerySection(section, class, buffer, length, *ret_len)
func ntQuerySection(p *Process, c *call) ntstatus {
	o, st := p.objectOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	sec, ok := o.(*sectionObject)
	if !ok {
		return STATUS_OBJECT_TYPE_MISMATCH
	}
	class, buf, length, retPtr := c.arg32(1), c.arg(2), c.arg(3), c.arg(4)
	switch class {
	case 0: // SectionBasicInformation
		if length < 24 {
			return STATUS_INFO_LENGTH_MISMATCH
		}
		b := make(memw, 24)
		attrs := sec.attrs
		if sec.image != nil {
			attrs |= SEC_FILE
		}
		b.u32(8, attrs)
		b.u64(16, sec.size)
		c.putBytes(buf, b)
		c.put64(retPtr, 24)
		return STATUS_SUCCESS
	case 1: // SectionImageInformation
		if sec.image == nil {
			return STATUS_SECTION_NOT_IMAGE
		}
		if length < siiSize {
			return STATUS_INFO_LENGTH_MISMATCH
		}
		c.putBytes(buf, sec.image.imageInformation())
		c.put64(retPtr, siiSize)
		return STATUS_SUCCESS
	}
	return STATUS_INVALID_INFO_CLASS
}
