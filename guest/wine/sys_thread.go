package wine

import (
	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/arch"
)

// Process and thread system calls.

func (p *Process) threadOf(h uint64) (*Thread, ntstatus) {
	o, st := p.objectOf(h)
	if st != STATUS_SUCCESS {
		return nil, st
	}
	t, ok := o.(*Thread)
	if !ok {
		return nil, STATUS_OBJECT_TYPE_MISMATCH
	}
	return t, STATUS_SUCCESS
}

// NtTerminateProcess(handle, status). Handle 0 ends every other thread
// (ExitProcess does this first, then detaches the DLLs); the process
// itself ends with -1.
func ntTerminateProcess(p *Process, c *call) ntstatus {
	h, code := c.arg(0), c.arg32(1)
	c.note("code=%d", int32(code))
	switch h {
	case 0:
		for _, t := range p.threads {
			if t != c.t && t.state != threadTerminated {
				p.exitThread(t, code)
			}
		}
		return STATUS_SUCCESS
	case process.CurrentProcessHandle:
		p.exited, p.exitCode = true, code
		for _, t := range p.threads {
			t.state = threadTerminated
		}
		return STATUS_SUCCESS
	}
	if _, st := p.objectOf(h); st != STATUS_SUCCESS {
		return st
	}
	return STATUS_ACCESS_DENIED
}

// NtTerminateThread(handle, status)
func ntTerminateThread(p *Process, c *call) ntstatus {
	h, code := c.arg(0), c.arg32(1)
	t := c.t
	if h != 0 && h != process.CurrentThreadHandle {
		var st ntstatus
		if t, st = p.threadOf(h); st != STATUS_SUCCESS {
			return st
		}
	}
	if t.state == threadTerminated {
		return STATUS_SUCCESS
	}
	p.exitThread(t, code)
	if t == c.t {
		c.exitThread = true
	}
	return STATUS_SUCCESS
}

// PS_ATTRIBUTE numbers kernelbase passes to NtCreateThreadEx.
const (
	PS_ATTRIBUTE_CLIENT_ID   = 0x10003
	PS_ATTRIBUTE_TEB_ADDRESS = 0x10004
)

// NtCreateThreadEx(*handle, access, attr, process, start, param, flags,
// zero_bits, stack_commit, stack_reserve, attr_list)
func ntCreateThreadEx(p *Process, c *call) ntstatus {
	out, access, proc, start, param, flags := c.arg(0), c.arg32(1), c.arg(3), c.arg(4), c.arg(5), c.arg32(6)
	commit, reserve, attrList := c.arg(8), c.arg(9), c.arg(10)
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	if !p.isSelf(proc) {
		return STATUS_INVALID_HANDLE
	}
	if reserve == 0 {
		reserve = p.exeFile.SizeOfStackReserve
	}
	t, err := p.newThread(start, param, reserve, commit)
	if err != nil {
		c.fail(err)
		return STATUS_NO_MEMORY
	}
	if flags&1 != 0 { // THREAD_CREATE_FLAGS_CREATE_SUSPENDED
		t.suspend = 1
		t.state = threadSuspended
	}
	h := p.handles.add(t, access)
	c.put64(out, h)
	c.note("start=%#x tid=%#x", start, t.tid)
	if attrList != 0 {
		total := c.u64(attrList)
		n := (total - 8) / 32
		if total < 8 || n > 16 {
			n = 0
		}
		for i := uint64(0); i < n; i++ {
			a := attrList + 8 + 32*i
			switch c.u64(a) {
			case PS_ATTRIBUTE_CLIENT_ID:
				v := c.u64(a + 16)
				c.put64(v, pid)
				c.put64(v+8, uint64(t.tid))
			case PS_ATTRIBUTE_TEB_ADDRESS:
				c.put64(c.u64(a+16), t.teb)
			}
		}
	}
	return STATUS_SUCCESS
}

// NtResumeThread(handle, *prev)
func ntResumeThread(p *Process, c *call) ntstatus {
	t, st := p.threadOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	c.put32(c.arg(1), uint32(t.suspend))
	if t.suspend > 0 {
		t.suspend--
		if t.suspend == 0 && t.state == threadSuspended {
			t.state = threadReady
		}
	}
	return STATUS_SUCCESS
}

// NtSuspendThread(handle, *prev)
func ntSuspendThread(p *Process, c *call) ntstatus {
	t, st := p.threadOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	if t.suspend >= 127 {
		return STATUS_SUSPEND_COUNT_EXCEEDED
	}
	c.put32(c.arg(1), uint32(t.suspend))
	t.suspend++
	if t.state == threadReady {
		t.state = threadSuspended
	}
	if t == c.t {
		// Suspending itself: the thread stops here until resumed.
		c.block(&waitBlock{objs: []waitable{resumeWait{t}}, deadline: -1})
	}
	return STATUS_SUCCESS
}

type resumeWait struct{ t *Thread }

func (r resumeWait) typeName() string      { return "Thread" }
func (r resumeWait) signaled(*Thread) bool { return r.t.suspend == 0 }
func (r resumeWait) acquire(*Thread)       {}

// NtGetContextThread(handle, CONTEXT*)
func ntGetContextThread(p *Process, c *call) ntstatus {
	t, st := p.threadOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	ptr := c.arg(1)
	flags := c.u32(ptr + ctxFlags)
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	cur := t.ctx
	b := make(memw, ctxSize)
	c.fail(p.mem.Read(ptr, b))
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	var tmp memw = make(memw, ctxSize)
	encodeContext(tmp, &cur, flags)
	copy(b[ctxFlags:ctxFlags+4], tmp[ctxFlags:ctxFlags+4])
	if flags&CONTEXT_CONTROL == CONTEXT_CONTROL {
		copy(b[ctxSegCs:ctxSegCs+2], tmp[ctxSegCs:])
		copy(b[ctxSegSs:ctxSegSs+2], tmp[ctxSegSs:])
		copy(b[ctxEFlags:ctxEFlags+4], tmp[ctxEFlags:])
		copy(b[ctxRax+8*4:ctxRax+8*6], tmp[ctxRax+8*4:]) // Rsp, Rbp
		copy(b[ctxRip:ctxRip+8], tmp[ctxRip:])
	}
	if flags&CONTEXT_INTEGER == CONTEXT_INTEGER {
		for i := 0; i < 16; i++ {
			if i != 4 && i != 5 {
				copy(b[ctxRax+8*i:ctxRax+8*i+8], tmp[ctxRax+8*i:])
			}
		}
	}
	if flags&CONTEXT_SEGMENTS == CONTEXT_SEGMENTS {
		copy(b[ctxSegDs:ctxSegDs+8], tmp[ctxSegDs:])
	}
	if flags&CONTEXT_FLOATING_POINT == CONTEXT_FLOATING_POINT {
		copy(b[ctxMxCsr:ctxMxCsr+4], tmp[ctxMxCsr:])
		copy(b[ctxFltSave:ctxFltSave+0x200], tmp[ctxFltSave:])
	}
	if flags&CONTEXT_DEBUG_REGISTERS == CONTEXT_DEBUG_REGISTERS {
		clear(b[0x48:0x78])
	}
	c.putBytes(ptr, b)
	return STATUS_SUCCESS
}

// NtSetContextThread(handle, CONTEXT*)
func ntSetContextThread(p *Process, c *call) ntstatus {
	t, st := p.threadOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	b := c.bytes(c.arg(1), ctxSize)
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	decodeContext(b, &t.ctx)
	if t == c.t {
		c.contextSet = true
		c.keepRAX = b32(memw(b), ctxFlags)&CONTEXT_INTEGER == CONTEXT_INTEGER
	}
	return STATUS_SUCCESS
}

// NtContinue(CONTEXT*, alertable): resume at a saved context (the end of
// exception dispatch, of LdrInitializeThunk and of APC delivery).
func ntContinue(p *Process, c *call) ntstatus {
	b := c.bytes(c.arg(0), ctxSize)
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	decodeContext(b, c.regs)
	c.contextSet, c.keepRAX = true, true
	c.note("rip=%#x", c.regs.RIP)
	return STATUS_SUCCESS
}

// Thread information classes.
const (
	ThreadBasicInformation          = 0
	ThreadTimes                     = 1
	ThreadPriority                  = 2
	ThreadBasePriority              = 3
	ThreadAffinityMask              = 4
	ThreadImpersonationToken        = 5
	ThreadQuerySetWin32StartAddress = 9
	ThreadZeroTlsCell               = 10
	ThreadAmILastThread             = 12
	ThreadIdealProcessor            = 13
	ThreadPriorityBoost             = 14
	ThreadSetTlsArrayAddress        = 15
	ThreadIsIoPending               = 16
	ThreadHideFromDebugger          = 17
	ThreadIsTerminated              = 20
	ThreadGroupInformation          = 30
	ThreadIdealProcessorEx          = 33
	ThreadSuspendCount              = 35
	ThreadDescription               = 38
)

// NtQueryInformationThread(handle, class, buffer, length, *ret_len)
func ntQueryInformationThread(p *Process, c *call) ntstatus {
	t, st := p.threadOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	class, buf, length, retPtr := c.arg32(1), c.arg(2), c.arg32(3), c.arg(4)
	c.note("class=%d", class)
	var b memw
	switch class {
	case ThreadBasicInformation:
		b = make(memw, 48)
		b.u32(0, t.exitCode)
		if t.state != threadTerminated {
			b.u32(0, 0x103) // STILL_ACTIVE
		}
		b.u64(8, t.teb)
		b.u64(16, pid)
		b.u64(24, uint64(t.tid))
		b.u64(32, 1)
		b.u32(40, 8)
		b.u32(44, 8)
	case ThreadTimes:
		b = make(memw, 32)
		b.u64(0, uint64(p.clock.systemTime()))
	case ThreadAmILastThread:
		b = make(memw, 4)
		alive := 0
		for _, o := range p.threads {
			if o.state != threadTerminated {
				alive++
			}
		}
		b.u32(0, boolU32(alive == 1))
	case ThreadQuerySetWin32StartAddress:
		b = make(memw, 8)
	case ThreadIsTerminated:
		b = make(memw, 4)
		b.u32(0, boolU32(t.state == threadTerminated))
	case ThreadHideFromDebugger:
		b = make(memw, 1)
	case ThreadIsIoPending, ThreadPriorityBoost, ThreadSuspendCount:
		b = make(memw, 4)
		if class == ThreadSuspendCount {
			b.u32(0, uint32(t.suspend))
		}
	case ThreadGroupInformation:
		b = make(memw, 16)
		b.u64(0, 1)
	case ThreadIdealProcessorEx:
		b = make(memw, 4)
	case ThreadDescription:
		name := process.UTF16Bytes(t.name, false)
		b = make(memw, 16+len(name))
		b.ustr(0, uint16(len(name)), uint16(len(name)), buf+16)
		copy(b[16:], name)
	default:
		return STATUS_INVALID_INFO_CLASS
	}
	if length < uint32(len(b)) {
		c.put32(retPtr, uint32(len(b)))
		if class == ThreadDescription {
			return STATUS_BUFFER_TOO_SMALL
		}
		return STATUS_INFO_LENGTH_MISMATCH
	}
	c.putBytes(buf, b)
	c.put32(retPtr, uint32(len(b)))
	return STATUS_SUCCESS
}

// NtSetInformationThread(handle, class, buffer, length)
func ntSetInformationThread(p *Process, c *call) ntstatus {
	t, st := p.threadOf(c.arg(0))
	if st != STATUS_SUCCESS {
		return st
	}
	class, buf, length := c.arg32(1), c.arg(2), c.arg32(3)
	c.note("class=%d", class)
	switch class {
	case ThreadZeroTlsCell:
		if length != 4 {
			return STATUS_INVALID_PARAMETER
		}
		idx := uint64(c.u32(buf))
		for _, o := range p.threads {
			if o.state == threadTerminated {
				continue
			}
			if idx < 64 {
				c.put64(o.teb+process.TEBTLSSlots+8*idx, 0)
			} else if idx < 64+1024 {
				if exp := c.u64(o.teb + 0x1780); exp != 0 {
					c.put64(exp+8*(idx-64), 0)
				}
			}
		}
	case ThreadDescription:
		if length < 16 {
			return STATUS_INFO_LENGTH_MISMATCH
		}
		t.name = c.ustr(buf)
	case ThreadPriority, ThreadBasePriority, ThreadAffinityMask, ThreadImpersonationToken,
		ThreadQuerySetWin32StartAddress, ThreadIdealProcessor, ThreadPriorityBoost,
		ThreadHideFromDebugger, ThreadGroupInformation, ThreadSetTlsArrayAddress, ThreadIdealProcessorEx:
	default:
		return STATUS_INVALID_INFO_CLASS
	}
	return STATUS_SUCCESS
}

// NtOpenThread(*handle, access, attr, CLIENT_ID*)
func ntOpenThread(p *Process, c *call) ntstatus {
	cid := c.arg(3)
	tid := uint32(c.u64(cid + 8))
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	t := p.thread(tid)
	if t == nil {
		return STATUS_INVALID_CID
	}
	c.put64(c.arg(0), p.handles.add(t, c.arg32(1)))
	return STATUS_SUCCESS
}

// NtOpenProcess(*handle, access, attr, CLIENT_ID*): only this process.
func ntOpenProcess(p *Process, c *call) ntstatus {
	id := c.u64(c.arg(3))
	if c.err != nil {
		return STATUS_ACCESS_VIOLATION
	}
	if id != pid {
		return STATUS_INVALID_CID
	}
	c.put64(c.arg(0), p.handles.add(p, c.arg32(1)))
	return STATUS_SUCCESS
}

// Process information classes.
const (
	ProcessBasicInformation       = 0
	ProcessQuotaLimits            = 1
	ProcessIoCounters             = 2
	ProcessVmCounters             = 3
	ProcessTimes                  = 4
	ProcessDebugPort              = 7
	ProcessDefaultHardErrorMode   = 12
	ProcessPriorityClass          = 18
	ProcessHandleCount            = 20
	ProcessAffinityMask           = 21
	ProcessPriorityBoost          = 22
	ProcessSessionInformation     = 24
	ProcessWow64Information       = 26
	ProcessImageFileName          = 27
	ProcessDebugObjectHandle      = 30
	ProcessDebugFlags             = 31
	ProcessExecuteFlags           = 34
	ProcessCookie                 = 36
	ProcessImageInformation       = 37
	ProcessCycleTime              = 38
	ProcessImageFileNameWin32     = 43
	ProcessInstrumentationCallbck = 40
	ProcessThreadStackAllocation  = 41
	ProcessTlsInformation         = 35
)

// NtQueryInformationProcess(handle, class, buffer, length, *ret_len)
func ntQueryInformationProcess(p *Process, c *call) ntstatus {
	h := c.arg(0)
	if o, st := p.objectOf(h); st != STATUS_SUCCESS {
		return st
	} else if o != p {
		return STATUS_OBJECT_TYPE_MISMATCH
	}
	class, buf, length, retPtr := c.arg32(1), c.arg(2), c.arg32(3), c.arg(4)
	c.note("class=%d", class)
	var b memw
	switch class {
	case ProcessBasicInformation:
		b = make(memw, 48)
		b.u32(0, 0x103)
		b.u64(8, p.peb)
		b.u64(16, 1)
		b.u32(24, 8)
		b.u64(32, pid)
		b.u64(40, 0x10)
	case ProcessQuotaLimits:
		b = make(memw, 64)
	case ProcessIoCounters:
		b = make(memw, 48)
	case ProcessVmCounters:
		b = make(memw, 80)
		if length >= 88 {
			b = make(memw, 88)
		}
	case ProcessTimes:
		b = make(memw, 32)
		b.u64(0, uint64(virtualEpoch.UnixNano()/100+filetimeOffset))
	case ProcessDebugPort:
		b = make(memw, 8)
	case ProcessDefaultHardErrorMode, ProcessHandleCount, ProcessSessionInformation, ProcessCookie:
		b = make(memw, 4)
		switch class {
		case ProcessHandleCount:
			b.u32(0, uint32(len(p.handles.entries)))
		case ProcessSessionInformation:
			b.u32(0, 1)
		case ProcessCookie:
			b.u32(0, 0x1c0ffee)
		}
	case ProcessPriorityClass:
		b = make(memw, 2)
		b.u8(1, 2) // PROCESS_PRIORITY_CLASS_NORMAL
	case ProcessPriorityBoost:
		b = make(memw, 4)
	case ProcessWow64Information:
		b = make(memw, 8)
	case ProcessImageFileName, ProcessImageFileNameWin32:
		name := p.fs.programPath
		if class == ProcessImageFileName {
			name = `\Device\HarddiskVolume1` + name[2:]
		}
		data := process.UTF16Bytes(name, true)
		b = make(memw, 16+len(data))
		b.ustr(0, uint16(len(data)-2), uint16(len(data)), buf+16)
		copy(b[16:], data)
	case ProcessDebugObjectHandle:
		c.put64(buf, 0)
		return 0xC0000353 // STATUS_PORT_NOT_SET
	case ProcessDebugFlags:
		b = make(memw, 4)
		b.u32(0, 1)
	case ProcessExecuteFlags:
		b = make(memw, 4)
		b.u32(0, 0x2|0x8|0x20) // MEM_EXECUTE_OPTION_ENABLE | PERMANENT... as Wine reports for x64
	case ProcessImageInformation:
		b = memw((&imageInfo{file: p.exeFile, data: nil}).imageInformation())
	case ProcessCycleTime:
		b = make(memw, 16)
	default:
		return STATUS_INVALID_INFO_CLASS
	}
	if length < uint32(len(b)) {
		c.put32(retPtr, uint32(len(b)))
		if class == ProcessImageFileName || class == ProcessImageFileNameWin32 {
			return STATUS_INFO_LENGTH_MISMATCH
		}
		return STATUS_INFO_LENGTH_MISMATCH
	}
	c.putBytes(buf, b)
	c.put32(retPtr, uint32(len(b)))
	return STATUS_SUCCESS
}

// NtSetInformationProcess(handle, class, buffer, length)
func ntSetInformationProcess(p *Process, c *call) ntstatus {
	if o, st := p.objectOf(c.arg(0)); st != STATUS_SUCCESS {
		return st
	} else if o != p {
		return STATUS_OBJECT_TYPE_MISMATCH
	}
	c.note("class=%d", c.arg32(1))
	switch c.arg32(1) {
	case ProcessDefaultHardErrorMode, ProcessPriorityClass, ProcessAffinityMask, ProcessPriorityBoost,
		ProcessExecuteFlags, ProcessInstrumentationCallbck, ProcessTlsInformation, ProcessSessionInformation:
		return STATUS_SUCCESS
	}
	return STATUS_INVALID_INFO_CLASS
}

// NtGetCurrentProcessorNumber()
func ntGetCurrentProcessorNumber(p *Process, c *call) ntstatus { return 0 }

// NtTestAlert(): APCs are delivered on alertable waits only.
func ntTestAlert(p *Process, c *call) ntstatus { return STATUS_SUCCESS }

var _ = arch.RAX

// NtCreateUserProcess: the guest is one process; starting another (a
// child program, or winedbg for an unhandled exception) fails, as when
// the file cannot be run.
func ntCreateUserProcess(p *Process, c *call) ntstatus {
	p.log.Warn("the guest tried to start another process; rspstub runs one process per guest", "caller", p.symbolize(c.u64(c.regs.GPR[arch.RSP])))
	return STATUS_NOT_SUPPORTED
}
