package wine

import (
	"sort"
	"strings"

	"github.com/rspstub/rspstub/guest/process"
)

// object is anything a handle can refer to.
type object interface {
	typeName() string // the object type's name, as NtQueryObject gives it ("File", "Event")
}

// releaser is an object with host resources to free when its last
// handle closes.
type releaser interface {
	release()
}

type handleEntry struct {
	obj    object
	access uint32
}

// handleTable maps handle values to objects. Values are multiples of 4
// from 4 up, the lowest free one first, as Windows hands them out; so a
// program gets the same handle values on every run.
type handleTable struct {
	entries map[uint64]*handleEntry
	refs    map[object]int
	names   map[string]object // named objects by lower-case full name
}

const maxHandles = 1 << 16

func newHandleTable() *handleTable {
	return &handleTable{entries: map[uint64]*handleEntry{}, refs: map[object]int{}, names: map[string]object{}}
}

// add returns a new handle to obj, or 0 when the table is full.
func (t *handleTable) add(obj object, access uint32) uint64 {
	if len(t.entries) >= maxHandles {
		return 0
	}
	h := uint64(4)
	for t.entries[h] != nil {
		h += 4
	}
	t.entries[h] = &handleEntry{obj: obj, access: access}
	t.refs[obj]++
	return h
}

func (t *handleTable) get(h uint64) (object, bool) {
	e := t.entries[h]
	if e == nil {
		return nil, false
	}
	return e.obj, true
}

// close removes h; the object's resources go when no handle is left.
func (t *handleTable) close(h uint64) bool {
	e := t.entries[h]
	if e == nil {
		return false
	}
	delete(t.entries, h)
	t.refs[e.obj]--
	if t.refs[e.obj] <= 0 {
		delete(t.refs, e.obj)
		if r, ok := e.obj.(releaser); ok {
			r.release()
		}
		for n, o := range t.names {
			if o == e.obj && !isPermanent(o) {
				delete(t.names, n)
			}
		}
	}
	return true
}

// all returns every handle, sorted.
func (t *handleTable) all() []uint64 {
	out := make([]uint64, 0, len(t.entries))
	for h := range t.entries {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// lookupName finds a named object.
func (t *handleTable) lookupName(name string) object { return t.names[strings.ToLower(name)] }

func (t *handleTable) setName(name string, obj object) { t.names[strings.ToLower(name)] = obj }

type permanent interface{ isPermanent() bool }

func isPermanent(o object) bool {
	p, ok := o.(permanent)
	return ok && p.isPermanent()
}

// objectOf resolves a handle (or pseudo handle) for a system call.
func (p *Process) objectOf(h uint64) (object, ntstatus) {
	switch h {
	case process.CurrentProcessHandle:
		return p, STATUS_SUCCESS
	case process.CurrentThreadHandle:
		return p.cur, STATUS_SUCCESS
	}
	if o, ok := p.handles.get(h); ok {
		return o, STATUS_SUCCESS
	}
	return nil, STATUS_INVALID_HANDLE
}

func (p *Process) typeName() string { return "Process" }
