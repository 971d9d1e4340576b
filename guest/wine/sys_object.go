package wine

import "github.com/rspstub/rspstub/guest/process"

// Handle and object system calls.

// NtClose(handle)
func ntClose(p *Process, c *call) ntstatus {
	h := c.arg(0)
	c.note("%#x", h)
	if !p.handles.close(h) {
		return STATUS_INVALID_HANDLE
	}
	return STATUS_SUCCESS
}

const (
	DUPLICATE_CLOSE_SOURCE = 1
	DUPLICATE_SAME_ACCESS  = 2
)

// NtDuplicateObject(src_process, src, dst_process, *dst, access, attrs, options)
func ntDuplicateObject(p *Process, c *call) ntstatus {
	srcProc, src, dstProc, dst, access, opts := c.arg(0), c.arg(1), c.arg(2), c.arg(3), c.arg32(4), c.arg32(6)
	if o, st := p.objectOf(srcProc); st != STATUS_SUCCESS || o != p {
		return STATUS_INVALID_HANDLE
	}
	o, st := p.objectOf(src)
	if st != STATUS_SUCCESS {
		return st
	}
	if opts&DUPLICATE_SAME_ACCESS != 0 {
		if e := p.handles.entries[src]; e != nil {
			access = e.access
		}
	}
	if dst != 0 || dstProc != 0 {
		if d, st := p.objectOf(dstProc); st != STATUS_SUCCESS || d != p {
			return STATUS_INVALID_HANDLE
		}
	}
	var h uint64
	if dstProc != 0 {
		if h = p.handles.add(o, access); h == 0 {
			return STATUS_INSUFFICIENT_RESOURCES
		}
	}
	if opts&DUPLICATE_CLOSE_SOURCE != 0 {
		p.handles.close(src)
	}
	c.put64(dst, h)
	c.note("%#x -> %#x", src, h)
	return STATUS_SUCCESS
}

// NtQueryObject(handle, class, buffer, length, *ret_len)
func ntQueryObject(p *Process, c *call) ntstatus {
	o, st := p.objectOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	class, buf, length, retPtr := c.arg32(1), c.arg(2), c.arg32(3), c.arg(4)
	var b memw
	switch class {
	case 0: // ObjectBasicInformation
		b = make(memw, 56)
		if e := p.handles.entries[c.arg(0)]; e != nil {
			b.u32(4, e.access)
		}
		b.u32(8, 1)
		b.u32(12, 1)
	case 1: // ObjectNameInformation
		name := ""
		if f, ok := o.(*fileObject); ok && f.guestPath != "" {
			name = `\Device\HarddiskVolume1` + f.guestPath[2:]
			if f.stream != nil {
				name = ""
			}
		}
		if k, ok := o.(*regHandle); ok {
			name = k.key.path()
		}
		data := process.UTF16Bytes(name, true)
		b = make(memw, 16+len(data))
		if name != "" {
			b.ustr(0, uint16(len(data)-2), uint16(len(data)), buf+16)
			copy(b[16:], data)
		}
	case 2: // ObjectTypeInformation
		data := process.UTF16Bytes(o.typeName(), true)
		b = make(memw, 0x68+len(data))
		b.ustr(0, uint16(len(data)-2), uint16(len(data)), buf+0x68)
		copy(b[0x68:], data)
	case 4: // ObjectDataInformation
		b = make(memw, 2)
	default:
		return STATUS_INVALID_INFO_CLASS
	}
	c.put32(retPtr, uint32(len(b)))
	if length < uint32(len(b)) {
		return STATUS_INFO_LENGTH_MISMATCH
	}
	c.putBytes(buf, b)
	return STATUS_SUCCESS
}

// NtCompareObjects(first, second)
func ntCompareObjects(p *Process, c *call) ntstatus {
	a, st := p.objectOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	b, st := p.objectOf(c.arg(1))
	if st != STATUS_SUCCESS {
		return st
	}
	if a == b {
		return STATUS_SUCCESS
	}
	return 0xC00001AC // STATUS_NOT_SAME_OBJECT
}

// NtMakeTemporaryObject / NtMakePermanentObject(handle)
func ntObjectNoop(p *Process, c *call) ntstatus {
	if _, st := p.objectOf(c.arg(0)); st != STATUS_SUCCESS {
		return st
	}
	return STATUS_SUCCESS
}

// NtQuerySecurityObject(handle, info, descriptor, length, *ret_len):
// every object grants everything to everyone (an empty DACL would deny;
// a NULL DACL allows all).
func ntQuerySecurityObject(p *Process, c *call) ntstatus {
	if _, st := p.objectOf(c.arg(0)); st != STATUS_SUCCESS {
		return st
	}
	buf, length, retPtr := c.arg(2), c.arg32(3), c.arg(4)
	sd := selfRelativeSD()
	c.put32(retPtr, uint32(len(sd)))
	if length < uint32(len(sd)) {
		return STATUS_BUFFER_TOO_SMALL
	}
	c.putBytes(buf, sd)
	return STATUS_SUCCESS
}

// selfRelativeSD is SECURITY_DESCRIPTOR_RELATIVE with an owner and group
// (the guest user) and no DACL (SE_DACL_PRESENT clear: full access).
func selfRelativeSD() []byte {
	user := userSID()
	b := make(memw, 20+2*len(user))
	b.u8(0, 1)                     // Revision
	b.u16(2, 0x8000)               // SE_SELF_RELATIVE
	b.u32(4, 20)                   // Owner
	b.u32(8, 20+uint32(len(user))) // Group
	copy(b[20:], user)
	copy(b[20+len(user):], user)
	return b
}

// NtSetSecurityObject(handle, info, descriptor)
func ntSetSecurityObject(p *Process, c *call) ntstatus { return ntObjectNoop(p, c) }
