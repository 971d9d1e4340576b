package wine

import (
	"strings"

	"github.com/rspstub/rspstub/guest/process"
)

// Registry system calls.

type regHandle struct{ key *regKey }

func (h *regHandle) typeName() string { return "Key" }

func (p *Process) keyOf(h uint64) (*regKey, ntstatus) {
	o, st := p.objectOf(h)
	if st != STATUS_SUCCESS {
		return nil, st
	}
	k, ok := o.(*regHandle)
	if !ok {
		return nil, STATUS_OBJECT_TYPE_MISMATCH
	}
	if k.key.deleted {
		return nil, 0xC000017C // STATUS_KEY_DELETED
	}
	return k.key, STATUS_SUCCESS
}

// keyPath reads OBJECT_ATTRIBUTES for a key: the parent key (nil for an
// absolute name) and the name.
func (p *Process) keyPath(c *call, attr uint64) (*regKey, string, ntstatus) {
	root, name, _ := c.objectAttributes(attr)
	if c.err != nil {
		return nil, "", STATUS_ACCESS_VIOLATION
	}
	c.note("%q", name)
	if root == 0 {
		if !strings.HasPrefix(name, `\`) {
			return nil, "", STATUS_OBJECT_PATH_SYNTAX_BAD
		}
		return nil, name, STATUS_SUCCESS
	}
	k, st := p.keyOf(root)
	if st != STATUS_SUCCESS {
		return nil, "", st
	}
	if strings.HasPrefix(name, `\`) {
		return nil, "", STATUS_OBJECT_PATH_SYNTAX_BAD
	}
	return k, name, STATUS_SUCCESS
}

// NtCreateKey(*handle, access, attr, index, class, options, *disposition)
func ntCreateKey(p *Process, c *call) ntstatus {
	parent, name, st := p.keyPath(c, c.arg(2))
	if st != STATUS_SUCCESS {
		return st
	}
	k, created, st := p.reg.create(parent, name)
	if st != STATUS_SUCCESS {
		return st
	}
	if created {
		k.class = c.ustr(c.arg(4))
		k.modified = p.clock.systemTime()
	}
	c.put64(c.arg(0), p.handles.add(&regHandle{k}, c.arg32(1)))
	disp := uint32(2) // REG_OPENED_EXISTING_KEY
	if created {
		disp = 1 // REG_CREATED_NEW_KEY
	}
	c.put32(c.arg(6), disp)
	return STATUS_SUCCESS
}

// NtOpenKey(*handle, access, attr)
func ntOpenKey(p *Process, c *call) ntstatus {
	parent, name, st := p.keyPath(c, c.arg(2))
	if st != STATUS_SUCCESS {
		return st
	}
	k := p.reg.lookup(parent, name)
	if k == nil {
		return STATUS_OBJECT_NAME_NOT_FOUND
	}
	c.put64(c.arg(0), p.handles.add(&regHandle{k}, c.arg32(1)))
	return STATUS_SUCCESS
}

// Key value information classes.
const (
	KeyValueBasicInformation          = 0
	KeyValueFullInformation           = 1
	KeyValuePartialInformation        = 2
	KeyValuePartialInformationAlign64 = 3
)

func valueInfo(v *regValue, class uint32) (memw, ntstatus) {
	name := process.UTF16Bytes(v.name, false)
	var b memw
	switch class {
	case KeyValueBasicInformation:
		b = make(memw, 12+len(name))
		b.u32(4, v.typ)
		b.u32(8, uint32(len(name)))
		copy(b[12:], name)
	case KeyValueFullInformation:
		off := (20 + len(name) + 7) &^ 7
		b = make(memw, off+len(v.data))
		b.u32(4, v.typ)
		b.u32(8, uint32(off))
		b.u32(12, uint32(len(v.data)))
		b.u32(16, uint32(len(name)))
		copy(b[20:], name)
		copy(b[off:], v.data)
	case KeyValuePartialInformation:
		b = make(memw, 12+len(v.data))
		b.u32(4, v.typ)
		b.u32(8, uint32(len(v.data)))
		copy(b[12:], v.data)
	case KeyValuePartialInformationAlign64:
		b = make(memw, 8+len(v.data))
		b.u32(0, v.typ)
		b.u32(4, uint32(len(v.data)))
		copy(b[8:], v.data)
	default:
		return nil, STATUS_INVALID_PARAMETER
	}
	return b, STATUS_SUCCESS
}

// putInfo writes a variable-size answer: the fixed part must fit, the
// rest is cut with STATUS_BUFFER_OVERFLOW.
func (c *call) putInfo(buf uint64, length uint32, retPtr uint64, b memw, fixed int) ntstatus {
	c.put32(retPtr, uint32(len(b)))
	if length < uint32(fixed) {
		return STATUS_BUFFER_TOO_SMALL
	}
	if length < uint32(len(b)) {
		c.putBytes(buf, b[:length])
		return STATUS_BUFFER_OVERFLOW
	}
	c.putBytes(buf, b)
	return STATUS_SUCCESS
}

var valueFixed = map[uint32]int{0: 12, 1: 20, 2: 12, 3: 8}

// NtQueryValueKey(key, name, class, buffer, length, *ret_len)
func ntQueryValueKey(p *Process, c *call) ntstatus {
	k, st := p.keyOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	name := c.ustr(c.arg(1))
	class := c.arg32(2)
	c.note("%s %q", k.path(), name)
	v := k.value(name)
	if v == nil {
		return STATUS_OBJECT_NAME_NOT_FOUND
	}
	b, st := valueInfo(v, class)
	if st != STATUS_SUCCESS {
		return st
	}
	return c.putInfo(c.arg(3), c.arg32(4), c.arg(5), b, valueFixed[class])
}

// NtEnumerateValueKey(key, index, class, buffer, length, *ret_len)
func ntEnumerateValueKey(p *Process, c *call) ntstatus {
	k, st := p.keyOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	i, class := c.arg32(1), c.arg32(2)
	if int(i) >= len(k.values) {
		return STATUS_NO_MORE_ENTRIES
	}
	b, st := valueInfo(k.values[i], class)
	if st != STATUS_SUCCESS {
		return st
	}
	return c.putInfo(c.arg(3), c.arg32(4), c.arg(5), b, valueFixed[class])
}

// NtSetValueKey(key, name, index, type, data, size)
func ntSetValueKey(p *Process, c *call) ntstatus {
	k, st := p.keyOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	name := c.ustr(c.arg(1))
	typ, size := c.arg32(3), c.arg32(5)
	if size > maxRegData {
		return STATUS_INVALID_PARAMETER
	}
	data := c.bytes(c.arg(4), int(size))
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	c.note("%s %q", k.path(), name)
	if !k.setValue(name, typ, data) {
		return STATUS_INSUFFICIENT_RESOURCES
	}
	k.modified = p.clock.systemTime()
	return STATUS_SUCCESS
}

// NtDeleteValueKey(key, name)
func ntDeleteValueKey(p *Process, c *call) ntstatus {
	k, st := p.keyOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	name := c.ustr(c.arg(1))
	for i, v := range k.values {
		if strings.EqualFold(v.name, name) {
			k.values = append(k.values[:i], k.values[i+1:]...)
			return STATUS_SUCCESS
		}
	}
	return STATUS_OBJECT_NAME_NOT_FOUND
}

// NtDeleteKey(key)
func ntDeleteKey(p *Process, c *call) ntstatus {
	k, st := p.keyOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	for _, s := range k.subs {
		if !s.deleted {
			return STATUS_CANNOT_DELETE
		}
	}
	if k.parent == nil {
		return STATUS_ACCESS_DENIED
	}
	k.deleted = true
	delete(k.parent.subs, strings.ToLower(k.name))
	return STATUS_SUCCESS
}

// Key information classes.
const (
	KeyBasicInformation  = 0
	KeyNodeInformation   = 1
	KeyFullInformation   = 2
	KeyNameInformation   = 3
	KeyCachedInformation = 4
)

func (p *Process) keyInfo(k *regKey, class uint32) (memw, int, ntstatus) {
	name := process.UTF16Bytes(k.name, false)
	cls := process.UTF16Bytes(k.class, false)
	t := uint64(k.modified)
	if t == 0 {
		t = uint64(virtualEpoch.UnixNano()/100 + filetimeOffset)
	}
	subs := k.sortedSubs()
	var maxName, maxValName, maxData, maxClass int
	for _, s := range subs {
		if n := 2 * len([]rune(s.name)); n > maxName {
			maxName = n
		}
		if n := 2 * len([]rune(s.class)); n > maxClass {
			maxClass = n
		}
	}
	for _, v := range k.values {
		if n := 2 * len([]rune(v.name)); n > maxValName {
			maxValName = n
		}
		if len(v.data) > maxData {
			maxData = len(v.data)
		}
	}
	var b memw
	switch class {
	case KeyBasicInformation:
		b = make(memw, 16+len(name))
		b.u64(0, t)
		b.u32(12, uint32(len(name)))
		copy(b[16:], name)
		return b, 16, STATUS_SUCCESS
	case KeyNodeInformation:
		b = make(memw, 24+len(name)+len(cls))
		b.u64(0, t)
		b.u32(12, uint32(24+len(name)))
		b.u32(16, uint32(len(cls)))
		b.u32(20, uint32(len(name)))
		copy(b[24:], name)
		copy(b[24+len(name):], cls)
		return b, 24, STATUS_SUCCESS
	case KeyFullInformation:
		b = make(memw, 44+len(cls))
		b.u64(0, t)
		b.u32(12, 44)
		b.u32(16, uint32(len(cls)))
		b.u32(20, uint32(len(subs)))
		b.u32(24, uint32(maxName))
		b.u32(28, uint32(maxClass))
		b.u32(32, uint32(len(k.values)))
		b.u32(36, uint32(maxValName))
		b.u32(40, uint32(maxData))
		copy(b[44:], cls)
		return b, 44, STATUS_SUCCESS
	case KeyNameInformation:
		full := process.UTF16Bytes(k.path(), false)
		b = make(memw, 4+len(full))
		b.u32(0, uint32(len(full)))
		copy(b[4:], full)
		return b, 4, STATUS_SUCCESS
	case KeyCachedInformation:
		b = make(memw, 36)
		b.u64(0, t)
		b.u32(12, uint32(len(subs)))
		b.u32(16, uint32(maxName))
		b.u32(20, uint32(len(k.values)))
		b.u32(24, uint32(maxValName))
		b.u32(28, uint32(maxData))
		b.u32(32, uint32(len(name)))
		return b, 36, STATUS_SUCCESS
	}
	return nil, 0, STATUS_INVALID_PARAMETER
}

// NtQueryKey(key, class, buffer, length, *ret_len)
func ntQueryKey(p *Process, c *call) ntstatus {
	k, st := p.keyOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	b, fixed, st := p.keyInfo(k, c.arg32(1))
	if st != STATUS_SUCCESS {
		return st
	}
	return c.putInfo(c.arg(2), c.arg32(3), c.arg(4), b, fixed)
}

// NtEnumerateKey(key, index, class, buffer, length, *ret_len)
func ntEnumerateKey(p *Process, c *call) ntstatus {
	k, st := p.keyOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	subs := k.sortedSubs()
	i := c.arg32(1)
	if int(i) >= len(subs) {
		return STATUS_NO_MORE_ENTRIES
	}
	b, fixed, st := p.keyInfo(subs[i], c.arg32(2))
	if st != STATUS_SUCCESS {
		return st
	}
	return c.putInfo(c.arg(3), c.arg32(4), c.arg(5), b, fixed)
}

// NtFlushKey(key)
func ntFlushKey(p *Process, c *call) ntstatus {
	_, st := p.keyOf(c.arg(0))
	return st
}

// NtNotifyChangeKey / NtNotifyChangeMultipleKeys: the registry changes
// only through the guest itself; an asynchronous request stays pending.
func ntNotifyChangeKey(p *Process, c *call) ntstatus {
	if _, st := p.keyOf(c.arg(0)); st != STATUS_SUCCESS {
		return st
	}
	return STATUS_PENDING
}
