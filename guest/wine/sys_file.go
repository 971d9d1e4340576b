package wine

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rspstub/rspstub/guest/process"
)

// File system calls over the sandbox.

const (
	FILE_SUPERSEDE    = 0
	FILE_OPEN         = 1
	FILE_CREATE       = 2
	FILE_OPEN_IF      = 3
	FILE_OVERWRITE    = 4
	FILE_OVERWRITE_IF = 5

	FILE_DIRECTORY_FILE          = 0x1
	FILE_SYNCHRONOUS_IO_ALERT    = 0x10
	FILE_SYNCHRONOUS_IO_NONALERT = 0x20
	FILE_NON_DIRECTORY_FILE      = 0x40
	FILE_DELETE_ON_CLOSE         = 0x1000

	FILE_SUPERSEDED     = 0
	FILE_OPENED         = 1
	FILE_CREATED        = 2
	FILE_OVERWRITTEN    = 3
	FILE_EXISTS         = 4
	FILE_DOES_NOT_EXIST = 5

	FILE_READ_DATA        = 0x1
	FILE_WRITE_DATA       = 0x2
	FILE_APPEND_DATA      = 0x4
	FILE_WRITE_EA         = 0x10
	FILE_WRITE_ATTRIBUTES = 0x100
	DELETE                = 0x10000
	WRITE_DAC             = 0x40000
	WRITE_OWNER           = 0x80000
	GENERIC_ALL           = 0x10000000
	GENERIC_WRITE         = 0x40000000
	GENERIC_READ          = 0x80000000
	MAXIMUM_ALLOWED       = 0x02000000

	FILE_DEVICE_DISK       = 0x7
	FILE_DEVICE_NAMED_PIPE = 0x11
	FILE_DEVICE_NULL       = 0x15
	FILE_DEVICE_CONSOLE    = 0x50
	FILE_DEVICE_UNKNOWN    = 0x22
)

func wantsWrite(access uint32) bool {
	return access&(FILE_WRITE_DATA|FILE_APPEND_DATA|GENERIC_WRITE|GENERIC_ALL|MAXIMUM_ALLOWED) != 0
}

// NtCreateFile(*handle, access, attr, iosb, alloc_size, attributes,
// sharing, disposition, options, ea, ea_length)
func ntCreateFile(p *Process, c *call) ntstatus {
	return p.createFile(c, c.arg(0), c.arg32(1), c.arg(2), c.arg(3), c.arg32(5), c.arg32(7), c.arg32(8))
}

// NtOpenFile(*handle, access, attr, iosb, sharing, options)
func ntOpenFile(p *Process, c *call) ntstatus {
	return p.createFile(c, c.arg(0), c.arg32(1), c.arg(2), c.arg(3), 0, FILE_OPEN, c.arg32(5))
}

// pathOf resolves OBJECT_ATTRIBUTES to a sandbox path (a RootDirectory
// handle makes the name relative to that folder).
func (p *Process) pathOf(c *call, attr uint64) (resolved, ntstatus) {
	root, name, _ := c.objectAttributes(attr)
	if c.err != nil {
		return resolved{}, STATUS_ACCESS_VIOLATION
	}
	if root != 0 {
		o, st := p.objectOf(root)
		if st != STATUS_SUCCESS {
			return resolved{}, st
		}
		d, ok := o.(*fileObject)
		switch {
		case ok && d.stream != nil && d.stream.kind == "console":
			// kernelbase opens "Connection" and "Reference" under its console.
			name = `\Device\ConDrv\` + strings.TrimPrefix(name, `\`)
		case !ok || !d.isDir:
			return resolved{}, STATUS_OBJECT_TYPE_MISMATCH
		default:
			name = `\??\` + strings.TrimSuffix(d.guestPath, `\`) + `\` + strings.TrimPrefix(name, `\`)
		}
	}
	c.note("%q", name)
	if name == "" {
		return resolved{}, STATUS_OBJECT_NAME_INVALID
	}
	return p.fs.resolve(name)
}

func (p *Process) createFile(c *call, out uint64, access uint32, attr, iosb uint64, attrs, disp, opts uint32) ntstatus {
	r, st := p.pathOf(c, attr)
	if st != STATUS_SUCCESS {
		return st
	}
	if r.device != "" {
		return p.openDevice(c, out, iosb, r, access)
	}
	if disp > FILE_OVERWRITE_IF {
		return STATUS_INVALID_PARAMETER
	}
	write := wantsWrite(access) || disp != FILE_OPEN && disp != FILE_OPEN_IF ||
		opts&FILE_DELETE_ON_CLOSE != 0 || access&DELETE != 0 && !r.exists
	if r.readOnly && r.exists && write && access&MAXIMUM_ALLOWED == 0 {
		return STATUS_ACCESS_DENIED
	}
	if r.readOnly && !r.exists && (disp == FILE_CREATE || disp == FILE_OPEN_IF || disp == FILE_OVERWRITE_IF || disp == FILE_SUPERSEDE) {
		return STATUS_ACCESS_DENIED
	}
	info := uint64(FILE_OPENED)
	switch {
	case !r.exists && (disp == FILE_OPEN || disp == FILE_OVERWRITE):
		if !r.parent {
			return STATUS_OBJECT_PATH_NOT_FOUND
		}
		return STATUS_OBJECT_NAME_NOT_FOUND
	case r.exists && disp == FILE_CREATE:
		return STATUS_OBJECT_NAME_COLLISION
	case r.exists && r.isDir && opts&FILE_NON_DIRECTORY_FILE != 0:
		return STATUS_FILE_IS_A_DIRECTORY
	case r.exists && !r.isDir && opts&FILE_DIRECTORY_FILE != 0:
		return STATUS_NOT_A_DIRECTORY
	}
	if !r.exists {
		// Create (first the skeleton folders above it, if virtual).
		if r.virtualParent {
			if err := os.MkdirAll(filepath.Dir(r.host), 0o755); err != nil {
				return statusOf(err)
			}
		}
		if opts&FILE_DIRECTORY_FILE != 0 {
			if err := os.Mkdir(r.host, 0o755); err != nil {
				return statusOf(err)
			}
			r.isDir = true
		} else {
			f, err := os.OpenFile(r.host, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return statusOf(err)
			}
			f.Close()
			p.fs.times[r.host] = p.clock.systemTime()
		}
		info = FILE_CREATED
	} else if !r.isDir && (disp == FILE_OVERWRITE || disp == FILE_OVERWRITE_IF || disp == FILE_SUPERSEDE) {
		if r.readOnly {
			return STATUS_ACCESS_DENIED
		}
		if err := os.Truncate(r.host, 0); err != nil {
			return statusOf(err)
		}
		p.fs.times[r.host] = p.clock.systemTime()
		info = FILE_OVERWRITTEN
		if disp == FILE_SUPERSEDE {
			info = FILE_SUPERSEDED
		}
	}
	flag := os.O_RDONLY
	if !r.isDir && !r.readOnly && wantsWrite(access) {
		flag = os.O_RDWR
	}
	var hf *os.File
	if !r.virtual {
		var err error
		if hf, err = os.OpenFile(r.host, flag|noFollow, 0); err != nil {
			return statusOf(err)
		}
	}
	f := &fileObject{guestPath: r.guest, hostPath: r.host, host: hf, isDir: r.isDir, readOnly: r.readOnly,
		access: access, options: opts, deleteOnClose: opts&FILE_DELETE_ON_CLOSE != 0}
	h := p.handles.add(f, access)
	if h == 0 {
		if hf != nil {
			hf.Close()
		}
		return STATUS_INSUFFICIENT_RESOURCES
	}
	c.put64(out, h)
	c.iosb(iosb, STATUS_SUCCESS, info)
	c.note("-> %#x", h)
	return STATUS_SUCCESS
}

// openDevice opens NUL, CONIN$, CONOUT$ and the console driver (the
// last three fail, as under wine, for a process without a console).
func (p *Process) openDevice(c *call, out, iosb uint64, r resolved, access uint32) ntstatus {
	var s *stream
	switch {
	case r.device == "nul":
		s = &stream{kind: "nul", r: eofReader{}, w: io.Discard}
	case r.device == "condrv" || r.device == "conin" || r.device == "conout":
		var st ntstatus
		if s, st = p.openConsole(r); st != STATUS_SUCCESS {
			return st
		}
	default:
		return STATUS_OBJECT_NAME_NOT_FOUND
	}
	f := &fileObject{guestPath: r.guest, stream: s, access: access}
	h := p.handles.add(f, access)
	c.put64(out, h)
	c.iosb(iosb, STATUS_SUCCESS, FILE_OPENED)
	return STATUS_SUCCESS
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// fileOf resolves a handle to a file object.
func (p *Process) fileOf(h uint64) (*fileObject, ntstatus) {
	o, st := p.objectOf(h)
	if st != STATUS_SUCCESS {
		return nil, st
	}
	f, ok := o.(*fileObject)
	if !ok {
		return nil, STATUS_OBJECT_TYPE_MISMATCH
	}
	return f, STATUS_SUCCESS
}

const maxIO = 64 << 20

// NtReadFile(handle, event, apc, apc_ctx, iosb, buffer, length, *offset, key)
func ntReadFile(p *Process, c *call) ntstatus {
	f, st := p.fileOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	ev, iosb, buf, length, offPtr := c.arg(1), c.arg(4), c.arg(5), c.arg32(6), c.arg(7)
	if length > maxIO {
		length = maxIO
	}
	b := make([]byte, length)
	var n int
	var err error
	switch {
	case f.stream != nil:
		if f.stream.kind == "pipe" && f.stream.eof {
			c.iosb(iosb, STATUS_PIPE_BROKEN, 0)
			return STATUS_PIPE_BROKEN
		}
		if con := f.stream.con; con != nil {
			var got []byte
			if f.stream.role == conInput {
				got, _ = con.readBytes(len(b))
			}
			n = copy(b, got)
			if n == 0 {
				err = io.EOF
			}
		} else {
			n, err = f.stream.r.Read(b)
		}
		if n == 0 && err != nil {
			f.stream.eof = true
			if f.stream.kind == "pipe" {
				c.iosb(iosb, STATUS_PIPE_BROKEN, 0)
				return STATUS_PIPE_BROKEN
			}
			c.iosb(iosb, STATUS_END_OF_FILE, 0)
			return STATUS_END_OF_FILE
		}
	case f.isDir:
		return STATUS_INVALID_DEVICE_REQUEST
	default:
		off := f.pos
		if offPtr != 0 {
			if o := int64(c.u64(offPtr)); o >= 0 {
				off = o
			}
		}
		n, err = f.host.ReadAt(b, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return statusOf(err)
		}
		if n == 0 && length > 0 {
			c.iosb(iosb, STATUS_END_OF_FILE, 0)
			return STATUS_END_OF_FILE
		}
		f.pos = off + int64(n)
	}
	c.putBytes(buf, b[:n])
	c.iosb(iosb, STATUS_SUCCESS, uint64(n))
	p.signalEvent(ev)
	c.note("%d bytes", n)
	return STATUS_SUCCESS
}

// NtWriteFile(handle, event, apc, apc_ctx, iosb, buffer, length, *offset, key)
func ntWriteFile(p *Process, c *call) ntstatus {
	f, st := p.fileOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	ev, iosb, buf, length, offPtr := c.arg(1), c.arg(4), c.arg(5), c.arg32(6), c.arg(7)
	if length > maxIO {
		return STATUS_INVALID_PARAMETER
	}
	b := c.bytes(buf, int(length))
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	switch {
	case f.stream != nil && f.stream.con != nil:
		if f.stream.role != conOutput {
			return STATUS_INVALID_HANDLE
		}
		if err := f.stream.con.writeBytes(f.stream.w, b); err != nil {
			return STATUS_PIPE_BROKEN
		}
	case f.stream != nil:
		if _, err := f.stream.w.Write(b); err != nil {
			return STATUS_PIPE_BROKEN
		}
	case f.isDir:
		return STATUS_INVALID_DEVICE_REQUEST
	case f.readOnly || !wantsWrite(f.access):
		return STATUS_ACCESS_DENIED
	default:
		off := f.pos
		if f.access&FILE_APPEND_DATA != 0 && f.access&FILE_WRITE_DATA == 0 {
			off = -1
		}
		if offPtr != 0 {
			switch o := int64(c.u64(offPtr)); {
			case o >= 0:
				off = o
			case o == -1: // FILE_WRITE_TO_END_OF_FILE
				off = -1
			}
		}
		if off < 0 {
			st, err := f.host.Stat()
			if err != nil {
				return statusOf(err)
			}
			off = st.Size()
		}
		n, err := f.host.WriteAt(b, off)
		if err != nil {
			return statusOf(err)
		}
		f.pos = off + int64(n)
		p.fs.times[f.hostPath] = p.clock.systemTime()
	}
	c.iosb(iosb, STATUS_SUCCESS, uint64(len(b)))
	p.signalEvent(ev)
	c.note("%d bytes", len(b))
	return STATUS_SUCCESS
}

// signalEvent sets the completion event of synchronous I/O, if any.
func (p *Process) signalEvent(h uint64) {
	if h == 0 {
		return
	}
	if o, ok := p.handles.get(h); ok {
		if e, ok := o.(*event); ok {
			e.set()
		}
	}
}

// File information classes.
const (
	FileDirectoryInformation       = 1
	FileFullDirectoryInformation   = 2
	FileBothDirectoryInformation   = 3
	FileBasicInformation           = 4
	FileStandardInformation        = 5
	FileInternalInformation        = 6
	FileEaInformation              = 7
	FileAccessInformation          = 8
	FileNameInformation            = 9
	FileRenameInformation          = 10
	FileNamesInformation           = 12
	FileDispositionInformation     = 13
	FilePositionInformation        = 14
	FileModeInformation            = 16
	FileAlignmentInformation       = 17
	FileAllInformation             = 18
	FileAllocationInformation      = 19
	FileEndOfFileInformation       = 20
	FilePipeLocalInformation       = 24
	FileNetworkOpenInformation     = 34
	FileAttributeTagInformation    = 35
	FileIdBothDirectoryInformation = 37
	FileIdFullDirectoryInformation = 38
	FileIoCompletionNotification   = 41
	FileIdInformation              = 59
	FileDispositionInformationEx   = 64
	FileRenameInformationEx        = 65
)

// stat returns the host file's information (nil for streams).
func (f *fileObject) stat() os.FileInfo {
	if f.host == nil {
		if f.isDir && f.stream == nil {
			if st, err := os.Stat(f.hostPath); err == nil {
				return st // a virtual folder the guest has since filled
			}
			return dirInfo{hostBase(f.hostPath)}
		}
		return nil
	}
	st, err := f.host.Stat()
	if err != nil {
		return nil
	}
	return st
}

func (p *Process) basicInfo(b memw, off int, host string, info os.FileInfo, readOnly bool) {
	t := uint64(p.fileTimes(host, info))
	for i := 0; i < 4; i++ {
		b.u64(off+8*i, t)
	}
	b.u32(off+32, attributesOf(info, readOnly))
}

func sizes(info os.FileInfo) (alloc, eof uint64) {
	if info == nil || info.IsDir() {
		return 0, 0
	}
	eof = uint64(info.Size())
	return (eof + 4095) &^ 4095, eof
}

// NtQueryInformationFile(handle, iosb, buffer, length, class)
func ntQueryInformationFile(p *Process, c *call) ntstatus {
	f, st := p.fileOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	iosb, buf, length, class := c.arg(1), c.arg(2), c.arg32(3), c.arg32(4)
	c.note("class=%d", class)
	info := f.stat()
	alloc, eof := sizes(info)
	name := process.UTF16Bytes(strings.TrimPrefix(f.guestPath, "C:"), false)
	var b memw
	switch class {
	case FileBasicInformation:
		b = make(memw, 40)
		p.basicInfo(b, 0, f.hostPath, info, f.readOnly)
	case FileStandardInformation:
		b = make(memw, 24)
		b.u64(0, alloc)
		b.u64(8, eof)
		b.u32(16, 1)
		if f.isDir {
			b.u8(21, 1)
		}
	case FileInternalInformation:
		b = make(memw, 8)
		b.u64(0, fileID(f.guestPath))
	case FileEaInformation:
		b = make(memw, 4)
	case FileAccessInformation:
		b = make(memw, 4)
		b.u32(0, f.access)
	case FileNameInformation:
		b = make(memw, 4+len(name))
		b.u32(0, uint32(len(name)))
		copy(b[4:], name)
	case FilePositionInformation:
		b = make(memw, 8)
		b.u64(0, uint64(f.pos))
	case FileModeInformation:
		b = make(memw, 4)
		b.u32(0, f.options&(FILE_SYNCHRONOUS_IO_ALERT|FILE_SYNCHRONOUS_IO_NONALERT|FILE_DELETE_ON_CLOSE|0x2|0x4))
	case FileAlignmentInformation:
		b = make(memw, 4)
	case FileAllInformation:
		b = make(memw, 100+len(name))
		p.basicInfo(b, 0, f.hostPath, info, f.readOnly)
		b.u64(40, alloc)
		b.u64(48, eof)
		b.u32(56, 1)
		if f.isDir {
			b.u8(61, 1)
		}
		b.u64(64, fileID(f.guestPath))
		b.u32(76, f.access)
		b.u64(80, uint64(f.pos))
		b.u32(96, uint32(len(name)))
		copy(b[100:], name)
	case FileNetworkOpenInformation:
		b = make(memw, 56)
		p.basicInfo(b, 0, f.hostPath, info, f.readOnly)
		b.u32(48, b32(b, 32))
		b.u64(32, alloc)
		b.u64(40, eof)
	case FileAttributeTagInformation:
		b = make(memw, 8)
		b.u32(0, attributesOf(info, f.readOnly))
	case FileIdInformation:
		b = make(memw, 24)
		b.u64(0, 0x5253505354554221)
		b.u64(8, fileID(f.guestPath))
	case FilePipeLocalInformation:
		if f.stream == nil || f.stream.kind != "pipe" {
			return STATUS_INVALID_PARAMETER
		}
		b = make(memw, 40)
	default:
		return STATUS_INVALID_INFO_CLASS
	}
	if f.stream != nil && class != FilePipeLocalInformation && class != FileModeInformation && class != FileAccessInformation {
		if class == FileStandardInformation {
			b = make(memw, 24)
			b.u32(16, 1)
		} else if class != FileNameInformation {
			return STATUS_INVALID_DEVICE_REQUEST
		}
	}
	n := uint32(len(b))
	status := STATUS_SUCCESS
	if length < n {
		if class != FileNameInformation && class != FileAllInformation || length < 4 {
			return STATUS_INFO_LENGTH_MISMATCH
		}
		n, status = length, STATUS_BUFFER_OVERFLOW
	}
	c.putBytes(buf, b[:n])
	c.iosb(iosb, status, uint64(n))
	return status
}

func b32(b memw, off int) uint32 {
	return uint32(b[off]) | uint32(b[off+1])<<8 | uint32(b[off+2])<<16 | uint32(b[off+3])<<24
}

// NtSetInformationFile(handle, iosb, buffer, length, class)
func ntSetInformationFile(p *Process, c *call) ntstatus {
	f, st := p.fileOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	iosb, buf, length, class := c.arg(1), c.arg(2), c.arg32(3), c.arg32(4)
	c.note("class=%d", class)
	switch class {
	case FilePositionInformation:
		if length < 8 {
			return STATUS_INFO_LENGTH_MISMATCH
		}
		pos := int64(c.u64(buf))
		if pos < 0 {
			return STATUS_INVALID_PARAMETER
		}
		f.pos = pos
	case FileEndOfFileInformation, FileAllocationInformation:
		if length < 8 {
			return STATUS_INFO_LENGTH_MISMATCH
		}
		size := int64(c.u64(buf))
		if f.host == nil || f.isDir || f.readOnly {
			return STATUS_ACCESS_DENIED
		}
		if class == FileAllocationInformation {
			if info := f.stat(); info != nil && size >= info.Size() {
				break
			}
		}
		if size < 0 || size > 1<<40 {
			return STATUS_INVALID_PARAMETER
		}
		if err := f.host.Truncate(size); err != nil {
			return statusOf(err)
		}
		p.fs.times[f.hostPath] = p.clock.systemTime()
	case FileDispositionInformation, FileDispositionInformationEx:
		if length < 1 {
			return STATUS_INFO_LENGTH_MISMATCH
		}
		if f.readOnly || f.hostPath == "" {
			return STATUS_CANNOT_DELETE
		}
		del := c.bytes(buf, 1)
		if c.err != nil {
			return STATUS_ACCESS_VIOLATION
		}
		if f.isDir && del[0]&1 != 0 {
			if ents, _ := os.ReadDir(f.hostPath); len(ents) > 0 {
				return STATUS_DIRECTORY_NOT_EMPTY
			}
		}
		f.deleteOnClose = del[0]&1 != 0
	case FileRenameInformation, FileRenameInformationEx:
		if length < 20 {
			return STATUS_INFO_LENGTH_MISMATCH
		}
		flags := c.u32(buf)
		replace := flags&1 != 0
		nlen := c.u32(buf + 16)
		if nlen > 0x10000 || c.err != nil {
			return STATUS_INVALID_PARAMETER
		}
		name := process.DecodeUTF16(c.bytes(buf+20, int(nlen)&^1))
		if c.err != nil {
			return STATUS_ACCESS_VIOLATION
		}
		c.note("-> %q", name)
		if f.readOnly || f.hostPath == "" {
			return STATUS_ACCESS_DENIED
		}
		if !strings.HasPrefix(name, `\`) {
			name = `\??\` + filepath.Dir(strings.ReplaceAll(f.guestPath, `\`, "/")) + `\` + name
			name = strings.ReplaceAll(name, "/", `\`)
		}
		r, st := p.fs.resolve(name)
		if st != STATUS_SUCCESS {
			return st
		}
		if r.device != "" || r.readOnly {
			return STATUS_ACCESS_DENIED
		}
		if r.exists && !replace {
			return STATUS_OBJECT_NAME_COLLISION
		}
		if err := os.Rename(f.hostPath, r.host); err != nil {
			return statusOf(err)
		}
		if t, ok := p.fs.times[f.hostPath]; ok {
			p.fs.times[r.host] = t
		}
		f.hostPath, f.guestPath = r.host, r.guest
	case FileBasicInformation, FileModeInformation, FileIoCompletionNotification:
	default:
		return STATUS_INVALID_INFO_CLASS
	}
	c.iosb(iosb, STATUS_SUCCESS, 0)
	return STATUS_SUCCESS
}

// NtQueryAttributesFile(attr, FILE_BASIC_INFORMATION*)
func ntQueryAttributesFile(p *Process, c *call) ntstatus {
	r, st := p.pathOf(c, c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	if r.device != "" {
		b := make(memw, 40)
		b.u32(32, FILE_ATTRIBUTE_NORMAL)
		c.putBytes(c.arg(1), b)
		return STATUS_SUCCESS
	}
	if !r.exists {
		return STATUS_OBJECT_NAME_NOT_FOUND
	}
	info, err := statResolved(r)
	if err != nil {
		return statusOf(err)
	}
	b := make(memw, 40)
	p.basicInfo(b, 0, r.host, info, r.readOnly)
	c.putBytes(c.arg(1), b)
	return STATUS_SUCCESS
}

// NtQueryFullAttributesFile(attr, FILE_NETWORK_OPEN_INFORMATION*)
func ntQueryFullAttributesFile(p *Process, c *call) ntstatus {
	r, st := p.pathOf(c, c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	if !r.exists || r.device != "" {
		return STATUS_OBJECT_NAME_NOT_FOUND
	}
	info, err := statResolved(r)
	if err != nil {
		return statusOf(err)
	}
	b := make(memw, 56)
	p.basicInfo(b, 0, r.host, info, r.readOnly)
	attrs := b32(b, 32)
	alloc, eof := sizes(info)
	b.u64(32, alloc)
	b.u64(40, eof)
	b.u32(48, attrs)
	c.putBytes(c.arg(1), b)
	return STATUS_SUCCESS
}

// NtDeleteFile(attr)
func ntDeleteFile(p *Process, c *call) ntstatus {
	r, st := p.pathOf(c, c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	if !r.exists {
		return STATUS_OBJECT_NAME_NOT_FOUND
	}
	if r.readOnly || r.device != "" || r.virtual {
		return STATUS_ACCESS_DENIED
	}
	return statusOf(os.Remove(r.host))
}

// NtQueryDirectoryFile(handle, event, apc, apc_ctx, iosb, buffer, length,
// class, single_entry, *mask, restart)
func ntQueryDirectoryFile(p *Process, c *call) ntstatus {
	f, st := p.fileOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	if !f.isDir {
		return STATUS_INVALID_PARAMETER
	}
	iosb, buf, length, class, single, maskPtr, restart := c.arg(4), c.arg(5), c.arg32(6), c.arg32(7), c.arg(8)&0xff != 0, c.arg(9), c.arg(10)&0xff != 0
	first := f.listing == nil
	if first || restart {
		f.listing = p.list(f)
		f.listPos = 0
		if maskPtr != 0 {
			f.mask = c.ustr(maskPtr)
		} else if first {
			f.mask = "*"
		}
	}
	c.note("class=%d mask=%q", class, f.mask)
	var fixed int
	switch class {
	case FileDirectoryInformation:
		fixed = 64
	case FileFullDirectoryInformation:
		fixed = 68
	case FileBothDirectoryInformation:
		fixed = 94
	case FileNamesInformation:
		fixed = 12
	case FileIdBothDirectoryInformation:
		fixed = 104
	case FileIdFullDirectoryInformation:
		fixed = 80
	default:
		return STATUS_INVALID_INFO_CLASS
	}
	out := make(memw, 0, length)
	prev := -1
	count := 0
	for f.listPos < len(f.listing) {
		e := f.listing[f.listPos]
		if !matchMask(f.mask, e.name) {
			f.listPos++
			continue
		}
		name := process.UTF16Bytes(e.name, false)
		size := (fixed + len(name) + 7) &^ 7
		if len(out)+fixed+len(name) > int(length) {
			if count == 0 {
				return STATUS_BUFFER_OVERFLOW
			}
			break
		}
		if prev >= 0 {
			memw(out).u32(prev, uint32(len(out)-prev))
		}
		ent := make(memw, size)
		if class == FileNamesInformation {
			ent.u32(8, uint32(len(name)))
		} else {
			host := filepath.Join(f.hostPath, e.name)
			p.basicInfo(ent, 8, host, e.info, f.readOnly)
			attrs := b32(ent, 40)
			ent.u64(40, 0)
			alloc, eof := sizes(e.info)
			ent.u64(40, eof)
			ent.u64(48, alloc)
			ent.u32(56, attrs)
			ent.u32(60, uint32(len(name)))
			switch class {
			case FileIdBothDirectoryInformation:
				ent.u64(96, fileID(f.guestPath+`\`+e.name))
			case FileIdFullDirectoryInformation:
				ent.u64(72, fileID(f.guestPath+`\`+e.name))
			}
		}
		copy(ent[fixed:], name)
		prev = len(out)
		if len(out)+size > int(length) {
			ent = ent[:fixed+len(name)]
		}
		out = append(out, ent...)
		f.listPos++
		count++
		if single {
			break
		}
	}
	if count == 0 {
		if first {
			return STATUS_NO_SUCH_FILE
		}
		return STATUS_NO_MORE_FILES
	}
	c.putBytes(buf, out)
	c.iosb(iosb, STATUS_SUCCESS, uint64(len(out)))
	return STATUS_SUCCESS
}

// NtQueryVolumeInformationFile(handle, iosb, buffer, length, class)
func ntQueryVolumeInformationFile(p *Process, c *call) ntstatus {
	f, st := p.fileOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	iosb, buf, length, class := c.arg(1), c.arg(2), c.arg32(3), c.arg32(4)
	c.note("class=%d", class)
	var b memw
	switch class {
	case 1: // FileFsVolumeInformation
		label := process.UTF16Bytes("", false)
		b = make(memw, 18+len(label))
		b.u64(0, uint64(virtualEpoch.UnixNano()/100+filetimeOffset))
		b.u32(8, 0x5253_5354) // serial
		b.u32(12, uint32(len(label)))
		b.u8(16, 1)
	case 3: // FileFsSizeInformation
		b = make(memw, 24)
		b.u64(0, 0x1000000)
		b.u64(8, 0x800000)
		b.u32(16, 8)
		b.u32(20, 512)
	case 4: // FileFsDeviceInformation
		b = make(memw, 8)
		dev := uint32(FILE_DEVICE_DISK)
		if f.stream != nil {
			switch f.stream.kind {
			case "pipe":
				dev = FILE_DEVICE_NAMED_PIPE
			case "nul":
				dev = FILE_DEVICE_NULL
			case "char":
				dev = FILE_DEVICE_UNKNOWN
			case "console":
				dev = FILE_DEVICE_CONSOLE
			}
		}
		b.u32(0, dev)
	case 5: // FileFsAttributeInformation
		fsName := process.UTF16Bytes("NTFS", false)
		b = make(memw, 12+len(fsName))
		b.u32(0, 0x2|0x1|0x4|0x8) // case preserved, case sensitive search, unicode, persistent ACLs
		b.u32(4, 255)
		b.u32(8, uint32(len(fsName)))
		copy(b[12:], fsName)
	case 7: // FileFsFullSizeInformation
		b = make(memw, 32)
		b.u64(0, 0x1000000)
		b.u64(8, 0x800000)
		b.u64(16, 0x800000)
		b.u32(24, 8)
		b.u32(28, 512)
	default:
		return STATUS_INVALID_INFO_CLASS
	}
	n := uint32(len(b))
	status := STATUS_SUCCESS
	if length < n {
		if class != 1 && class != 5 {
			return STATUS_INFO_LENGTH_MISMATCH
		}
		n, status = length, STATUS_BUFFER_OVERFLOW
	}
	c.putBytes(buf, b[:n])
	c.iosb(iosb, status, uint64(n))
	return status
}

// NtFlushBuffersFile(handle, iosb)
func ntFlushBuffersFile(p *Process, c *call) ntstatus {
	f, st := p.fileOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	if f.host != nil && !f.isDir && !f.readOnly {
		f.host.Sync()
	}
	c.iosb(c.arg(1), STATUS_SUCCESS, 0)
	return STATUS_SUCCESS
}

const FSCTL_GET_OBJECT_ID = 0x9009c

// NtFsControlFile(handle, event, apc, apc_ctx, iosb, code, in, in_len, out, out_len)
func ntFsControlFile(p *Process, c *call) ntstatus {
	f, st := p.fileOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	code, out, outLen := c.arg32(5), c.arg(8), c.arg32(9)
	c.note("code=%#x", code)
	switch code {
	case FSCTL_GET_OBJECT_ID:
		if f.hostPath == "" {
			return STATUS_INVALID_DEVICE_REQUEST
		}
		if outLen < 64 {
			return STATUS_BUFFER_TOO_SMALL
		}
		b := make(memw, 64)
		b.u64(0, fileID(f.guestPath))
		b.u64(8, 0x5253505354554221)
		c.putBytes(out, b)
		c.iosb(c.arg(4), STATUS_SUCCESS, 64)
		return STATUS_SUCCESS
	}
	return STATUS_INVALID_DEVICE_REQUEST
}

// NtDeviceIoControlFile(handle, event, apc, apc_ctx, iosb, code, in,
// in_len, out, out_len)
func ntDeviceIoControlFile(p *Process, c *call) ntstatus {
	f, st := p.fileOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	code := c.arg32(5)
	c.note("code=%#x", code)
	if f.stream != nil && f.stream.kind == "console" {
		return p.consoleIoctl(c, f)
	}
	// Not a console: kernelbase's console functions fail as on Windows.
	return STATUS_INVALID_HANDLE
}

// NtLockFile / NtUnlockFile / NtCancelIoFile: I/O is synchronous and
// there is one process, so there is nothing to wait for.
func ntFileNoop(p *Process, c *call) ntstatus {
	if _, st := p.fileOf(c.arg(0)); st != STATUS_SUCCESS {
		return st
	}
	return STATUS_SUCCESS
}

func ntNoEA(p *Process, c *call) ntstatus { return STATUS_EAS_NOT_SUPPORTED }

// statResolved stats a resolved path (a virtual folder has no host file).
func statResolved(r resolved) (os.FileInfo, error) {
	if r.virtual {
		return dirInfo{hostBase(r.host)}, nil
	}
	return os.Stat(r.host)
}
