package wine

import (
	"github.com/rspstub/rspstub/internal/arch"
)

// Synchronization objects and waits.

type event struct {
	manual bool
	state  bool
}

func (e *event) typeName() string          { return "Event" }
func (e *event) signaled(*Thread) bool     { return e.state }
func (e *event) acquire(*Thread)           { e.state = e.state && e.manual }
func (e *event) set()                      { e.state = true }
func (e *event) isPermanent() bool         { return false }
func (m *mutant) typeName() string         { return "Mutant" }
func (s *semaphore) typeName() string      { return "Semaphore" }
func (k *keyedEvent) typeName() string     { return "KeyedEvent" }
func (s *semaphore) signaled(*Thread) bool { return s.count > 0 }
func (s *semaphore) acquire(*Thread)       { s.count-- }

type mutant struct {
	owner     *Thread
	count     int
	abandoned bool
}

func (m *mutant) signaled(t *Thread) bool {
	return m.owner == nil || m.owner == t || m.owner.state == threadTerminated
}

func (m *mutant) acquire(t *Thread) {
	if m.owner != nil && m.owner.state == threadTerminated {
		m.abandoned = true
		m.owner, m.count = nil, 0
	} else {
		m.abandoned = false
	}
	m.owner = t
	m.count++
}

type semaphore struct {
	count, max int32
}

// keyedEvent pairs waiters and releasers by key (Wine's critical sections
// and SRW locks fall back to it).
type keyedEvent struct {
	waiting   map[uint64][]*Thread // key -> threads in NtWaitForKeyedEvent
	releasing map[uint64][]*Thread // key -> threads in NtReleaseKeyedEvent
}

// createObject registers a new (possibly named) object and returns its
// handle.
func (p *Process) createObject(c *call, out uint64, access uint32, attr uint64, obj object, typ string) ntstatus {
	_, name, _ := c.objectAttributes(attr)
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	status := STATUS_SUCCESS
	if name != "" {
		c.note("%q", name)
		if o := p.handles.lookupName(name); o != nil {
			if o.typeName() != typ {
				return STATUS_OBJECT_TYPE_MISMATCH
			}
			obj, status = o, STATUS_OBJECT_NAME_EXISTS
		} else {
			p.handles.setName(name, obj)
		}
	}
	h := p.handles.add(obj, access)
	if h == 0 {
		return STATUS_INSUFFICIENT_RESOURCES
	}
	c.put64(out, h)
	return status
}

// openObject opens a named object of type typ.
func (p *Process) openObject(c *call, out uint64, access uint32, attr uint64, typ string) ntstatus {
	_, name, _ := c.objectAttributes(attr)
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	c.note("%q", name)
	o := p.handles.lookupName(name)
	if o == nil {
		return STATUS_OBJECT_NAME_NOT_FOUND
	}
	if o.typeName() != typ {
		return STATUS_OBJECT_TYPE_MISMATCH
	}
	c.put64(out, p.handles.add(o, access))
	return STATUS_SUCCESS
}

// NtCreateEvent(*handle, access, attr, type, initial)
func ntCreateEvent(p *Process, c *call) ntstatus {
	e := &event{manual: c.arg32(3) == 0, state: c.arg(4)&0xff != 0} // NotificationEvent = 0
	return p.createObject(c, c.arg(0), c.arg32(1), c.arg(2), e, "Event")
}

// NtOpenEvent(*handle, access, attr)
func ntOpenEvent(p *Process, c *call) ntstatus {
	return p.openObject(c, c.arg(0), c.arg32(1), c.arg(2), "Event")
}

func (p *Process) eventOf(h uint64) (*event, ntstatus) {
	o, st := p.objectOf(h)
	if st != STATUS_SUCCESS {
		return nil, st
	}
	e, ok := o.(*event)
	if !ok {
		return nil, STATUS_OBJECT_TYPE_MISMATCH
	}
	return e, STATUS_SUCCESS
}

// NtSetEvent(handle, *prev)
func ntSetEvent(p *Process, c *call) ntstatus {
	e, st := p.eventOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	c.put32(c.arg(1), boolU32(e.state))
	e.state = true
	return STATUS_SUCCESS
}

// NtResetEvent(handle, *prev)
func ntResetEvent(p *Process, c *call) ntstatus {
	e, st := p.eventOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	c.put32(c.arg(1), boolU32(e.state))
	e.state = false
	return STATUS_SUCCESS
}

// NtClearEvent(handle)
func ntClearEvent(p *Process, c *call) ntstatus {
	e, st := p.eventOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	e.state = false
	return STATUS_SUCCESS
}

// NtPulseEvent(handle, *prev): wakes the threads waiting now, then
// resets.
func ntPulseEvent(p *Process, c *call) ntstatus {
	e, st := p.eventOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	c.put32(c.arg(1), boolU32(e.state))
	e.state = true
	for _, t := range p.threads {
		if t.state == threadWaiting && t.wait != nil {
			if st, ok := p.tryWait(t, t.wait); ok {
				p.finishWait(t, st)
			}
		}
	}
	e.state = false
	return STATUS_SUCCESS
}

// NtQueryEvent(handle, class, buffer, length, *ret_len)
func ntQueryEvent(p *Process, c *call) ntstatus {
	e, st := p.eventOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	if c.arg32(3) < 8 {
		return STATUS_INFO_LENGTH_MISMATCH
	}
	typ := uint32(1)
	if e.manual {
		typ = 0
	}
	c.put32(c.arg(2), typ)
	c.put32(c.arg(2)+4, boolU32(e.state))
	c.put64(c.arg(4), 8)
	return STATUS_SUCCESS
}

func boolU32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// NtCreateMutant(*handle, access, attr, owned)
func ntCreateMutant(p *Process, c *call) ntstatus {
	m := &mutant{}
	if c.arg(3)&0xff != 0 {
		m.owner, m.count = c.t, 1
	}
	return p.createObject(c, c.arg(0), c.arg32(1), c.arg(2), m, "Mutant")
}

// NtOpenMutant(*handle, access, attr)
func ntOpenMutant(p *Process, c *call) ntstatus {
	return p.openObject(c, c.arg(0), c.arg32(1), c.arg(2), "Mutant")
}

// NtReleaseMutant(handle, *prev_count)
func ntReleaseMutant(p *Process, c *call) ntstatus {
	o, st := p.objectOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	m, ok := o.(*mutant)
	if !ok {
		return STATUS_OBJECT_TYPE_MISMATCH
	}
	if m.owner != c.t {
		return STATUS_MUTANT_NOT_OWNED
	}
	c.put32(c.arg(1), uint32(1-m.count))
	m.count--
	if m.count == 0 {
		m.owner = nil
	}
	return STATUS_SUCCESS
}

// NtCreateSemaphore(*handle, access, attr, initial, max)
func ntCreateSemaphore(p *Process, c *call) ntstatus {
	init, max := int32(c.arg32(3)), int32(c.arg32(4))
	if max <= 0 || init < 0 || init > max {
		return STATUS_INVALID_PARAMETER
	}
	return p.createObject(c, c.arg(0), c.arg32(1), c.arg(2), &semaphore{count: init, max: max}, "Semaphore")
}

// NtOpenSemaphore(*handle, access, attr)
func ntOpenSemaphore(p *Process, c *call) ntstatus {
	return p.openObject(c, c.arg(0), c.arg32(1), c.arg(2), "Semaphore")
}

// NtReleaseSemaphore(handle, count, *prev)
func ntReleaseSemaphore(p *Process, c *call) ntstatus {
	o, st := p.objectOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	s, ok := o.(*semaphore)
	if !ok {
		return STATUS_OBJECT_TYPE_MISMATCH
	}
	n := int32(c.arg32(1))
	if n <= 0 || s.count+n > s.max || s.count+n < s.count {
		return STATUS_SEMAPHORE_LIMIT_EXCEEDED
	}
	c.put32(c.arg(2), uint32(s.count))
	s.count += n
	return STATUS_SUCCESS
}

// NtCreateKeyedEvent(*handle, access, attr, flags)
func ntCreateKeyedEvent(p *Process, c *call) ntstatus {
	k := &keyedEvent{waiting: map[uint64][]*Thread{}, releasing: map[uint64][]*Thread{}}
	return p.createObject(c, c.arg(0), c.arg32(1), c.arg(2), k, "KeyedEvent")
}

// NtOpenKeyedEvent(*handle, access, attr)
func ntOpenKeyedEvent(p *Process, c *call) ntstatus {
	return p.openObject(c, c.arg(0), c.arg32(1), c.arg(2), "KeyedEvent")
}

// The process-wide keyed event Wine's ntdll uses when given a NULL
// handle.
func (p *Process) keyedEventOf(h uint64) (*keyedEvent, ntstatus) {
	if h == 0 {
		if p.defaultKeyed == nil {
			p.defaultKeyed = &keyedEvent{waiting: map[uint64][]*Thread{}, releasing: map[uint64][]*Thread{}}
		}
		return p.defaultKeyed, STATUS_SUCCESS
	}
	o, st := p.objectOf(h)
	if st != STATUS_SUCCESS {
		return nil, st
	}
	k, ok := o.(*keyedEvent)
	if !ok {
		return nil, STATUS_OBJECT_TYPE_MISMATCH
	}
	return k, STATUS_SUCCESS
}

// keyWait is a waitable that completes when the keyed event pairs the
// thread with a partner.
type keyWait struct {
	k    *keyedEvent
	key  uint64
	done bool
}

func (w *keyWait) typeName() string      { return "KeyedEvent" }
func (w *keyWait) signaled(*Thread) bool { return w.done }
func (w *keyWait) acquire(*Thread)       {}
func (w *keyWait) isPermanent() bool     { return true }

// NtWaitForKeyedEvent(handle, key, alertable, *timeout)
func ntWaitForKeyedEvent(p *Process, c *call) ntstatus {
	return p.keyedOp(c, false)
}

// NtReleaseKeyedEvent(handle, key, alertable, *timeout)
func ntReleaseKeyedEvent(p *Process, c *call) ntstatus {
	return p.keyedOp(c, true)
}

func (p *Process) keyedOp(c *call, release bool) ntstatus {
	k, st := p.keyedEventOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	key := c.arg(1)
	other, mine := k.waiting, k.releasing
	if !release {
		other, mine = k.releasing, k.waiting
	}
	if q := other[key]; len(q) > 0 {
		partner := q[0]
		other[key] = q[1:]
		if len(other[key]) == 0 {
			delete(other, key)
		}
		if w, ok := partner.wait.objs[0].(*keyWait); ok {
			w.done = true
		}
		return STATUS_SUCCESS
	}
	deadline, st := p.deadline(c, c.arg(3))
	if st != STATUS_SUCCESS {
		return st
	}
	if deadline == 0 {
		return STATUS_TIMEOUT
	}
	me := c.t
	mine[key] = append(mine[key], me)
	w := &keyWait{k: k, key: key}
	c.block(&waitBlock{objs: []waitable{w}, deadline: deadline})
	me.onTimeout = func() {
		q := mine[key]
		for i, t := range q {
			if t == me {
				mine[key] = append(q[:i], q[i+1:]...)
				break
			}
		}
		if len(mine[key]) == 0 {
			delete(mine, key)
		}
	}
	return STATUS_PENDING
}

// deadline reads an NT timeout (*LARGE_INTEGER: NULL = forever, negative
// = relative in 100 ns units, positive = absolute FILETIME) and returns
// the clock value it ends at: -1 forever, 0 already passed.
func (p *Process) deadline(c *call, ptr uint64) (int64, ntstatus) {
	if ptr == 0 {
		return -1, STATUS_SUCCESS
	}
	v := int64(c.u64(ptr))
	if c.err != nil {
		return 0, STATUS_ACCESS_VIOLATION
	}
	now := p.clock.sinceBoot()
	var d int64
	if v < 0 {
		d = -v
	} else {
		d = v - p.clock.systemTime()
	}
	if d <= 0 {
		return 0, STATUS_SUCCESS
	}
	if now+d < now {
		return -1, STATUS_SUCCESS
	}
	return now + d, STATUS_SUCCESS
}

// waitables resolves handles for a wait.
func (p *Process) waitables(c *call, handles []uint64) ([]waitable, ntstatus) {
	objs := make([]waitable, len(handles))
	for i, h := range handles {
		o, st := p.objectOf(h)
		if st != STATUS_SUCCESS {
			return nil, st
		}
		w, ok := o.(waitable)
		if !ok {
			// Files and other objects are always signaled for a wait.
			w = alwaysSignaled{o}
		}
		objs[i] = w
	}
	return objs, STATUS_SUCCESS
}

type alwaysSignaled struct{ object }

func (alwaysSignaled) signaled(*Thread) bool { return true }
func (alwaysSignaled) acquire(*Thread)       {}

// wait starts a wait: satisfied now, timed out now, or blocked.
func (p *Process) wait(c *call, w *waitBlock, timeout uint64) ntstatus {
	if st, ok := p.tryWait(c.t, w); ok {
		return st
	}
	d, st := p.deadline(c, timeout)
	if st != STATUS_SUCCESS {
		return st
	}
	if d == 0 {
		return STATUS_TIMEOUT
	}
	w.deadline = d
	c.block(w)
	return STATUS_PENDING
}

// NtWaitForSingleObject(handle, alertable, *timeout)
func ntWaitForSingleObject(p *Process, c *call) ntstatus {
	objs, st := p.waitables(c, []uint64{c.arg(0)})
	if st != STATUS_SUCCESS {
		return st
	}
	c.note("%#x", c.arg(0))
	return p.wait(c, &waitBlock{objs: objs, alertable: c.arg(1)&0xff != 0}, c.arg(2))
}

// NtWaitForMultipleObjects(count, handles, type, alertable, *timeout)
func ntWaitForMultipleObjects(p *Process, c *call) ntstatus {
	n := c.arg32(0)
	if n == 0 || n > 64 {
		return STATUS_INVALID_PARAMETER_1
	}
	hs := make([]uint64, n)
	for i := range hs {
		hs[i] = c.u64(c.arg(1) + 8*uint64(i))
	}
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	objs, st := p.waitables(c, hs)
	if st != STATUS_SUCCESS {
		return st
	}
	c.note("%#x", hs)
	return p.wait(c, &waitBlock{objs: objs, all: c.arg32(2) == 0, alertable: c.arg(3)&0xff != 0}, c.arg(4))
}

// NtSignalAndWaitForSingleObject(signal, wait, alertable, *timeout)
func ntSignalAndWaitForSingleObject(p *Process, c *call) ntstatus {
	o, st := p.objectOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	switch s := o.(type) {
	case *event:
		s.state = true
	case *semaphore:
		if s.count >= s.max {
			return STATUS_SEMAPHORE_LIMIT_EXCEEDED
		}
		s.count++
	case *mutant:
		if s.owner != c.t {
			return STATUS_MUTANT_NOT_OWNED
		}
		if s.count--; s.count == 0 {
			s.owner = nil
		}
	default:
		return STATUS_OBJECT_TYPE_MISMATCH
	}
	objs, st := p.waitables(c, []uint64{c.arg(1)})
	if st != STATUS_SUCCESS {
		return st
	}
	return p.wait(c, &waitBlock{objs: objs, alertable: c.arg(2)&0xff != 0}, c.arg(3))
}

// NtDelayExecution(alertable, *timeout)
func ntDelayExecution(p *Process, c *call) ntstatus {
	d, st := p.deadline(c, c.arg(1))
	if st != STATUS_SUCCESS {
		return st
	}
	c.note("until %d", d)
	if d == 0 {
		// Sleep(0): give the rest of the turn away.
		p.sinceSwitch = quantumSyscalls
		return STATUS_SUCCESS
	}
	c.block(&waitBlock{delay: true, deadline: d, alertable: c.arg(0)&0xff != 0})
	return STATUS_PENDING
}

// NtYieldExecution()
func ntYieldExecution(p *Process, c *call) ntstatus {
	p.sinceSwitch = quantumSyscalls
	for _, t := range p.threads {
		if t != c.t && t.state == threadReady {
			return STATUS_SUCCESS
		}
	}
	return 0x40000024 // STATUS_NO_YIELD_PERFORMED
}

// NtWaitForAlertByThreadId(address, *timeout): Wine's SRW locks,
// condition variables and WaitOnAddress sleep here.
func ntWaitForAlertByThreadId(p *Process, c *call) ntstatus {
	if c.t.alerted {
		c.t.alerted = false
		return STATUS_ALERTED
	}
	d, st := p.deadline(c, c.arg(1))
	if st != STATUS_SUCCESS {
		return st
	}
	if d == 0 {
		return STATUS_TIMEOUT
	}
	c.block(&waitBlock{alertWait: true, deadline: d})
	return STATUS_PENDING
}

// NtAlertThreadByThreadId(tid)
func ntAlertThreadByThreadId(p *Process, c *call) ntstatus {
	t := p.thread(c.arg32(0))
	if t == nil {
		return STATUS_INVALID_CID
	}
	t.alerted = true
	return STATUS_SUCCESS
}

var _ = arch.RAX
