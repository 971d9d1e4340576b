// Package minidump writes Windows minidump files (MINIDUMP_HEADER and the
// streams of minidumpapiset.h) for an x64 process: system information,
// the threads with their CONTEXTs and stacks, the loaded modules, memory
// ranges and the exception that stopped the process. Debuggers and crash
// pipelines read them (WinDbg, LLDB's `target create --core`, Breakpad's
// and Crashpad's processors).
//
// The file layout, all little-endian, every location a 32-bit RVA from
// the start of the file:
//
//	0x00 MINIDUMP_HEADER (32 bytes): "MDMP", version, stream count,
//	     directory RVA, checksum 0, time stamp, flags
//	0x20 MINIDUMP_DIRECTORY[n] (12 bytes each): stream type, size, RVA
//	.... the streams, then the data they point at (CONTEXTs, module
//	     names as MINIDUMP_STRING, CodeView records, memory bytes),
//	     each aligned to 8 bytes.
//
// Memory goes in a MemoryListStream (each range with its own RVA) unless
// the dump is Full, which uses a Memory64ListStream (one base RVA, ranges
// back to back, no 4 GiB limit on the bytes after the streams).
package minidump

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"unicode/utf16"

	"github.com/rspstub/rspstub/internal/arch"
)

// Stream types (MINIDUMP_STREAM_TYPE).
const (
	ThreadListStream   = 3
	ModuleListStream   = 4
	MemoryListStream   = 5
	ExceptionStream    = 6
	SystemInfoStream   = 7
	Memory64ListStream = 9
	MiscInfoStream     = 15
)

// Signature and version of MINIDUMP_HEADER.
const (
	Signature = 0x504d444d // "MDMP"
	Version   = 0xa793
)

// Sizes of the fixed records.
const (
	headerSize      = 32
	directorySize   = 12
	threadSize      = 48
	moduleSize      = 108
	descriptorSize  = 16 // MINIDUMP_MEMORY_DESCRIPTOR
	descriptor64    = 16 // MINIDUMP_MEMORY_DESCRIPTOR64
	ContextSize     = 0x4d0
	exceptionSize   = 168 // MINIDUMP_EXCEPTION_STREAM
	systemInfoSize  = 56
	miscInfoSize    = 24 // MINIDUMP_MISC_INFO
	maxExceptParams = 15
)

// CONTEXT_AMD64 | CONTROL | INTEGER | SEGMENTS | FLOATING_POINT.
const contextFlags = 0x10000f

// Dump is what a minidump holds.
type Dump struct {
	PID       uint32
	TimeStamp uint32 // seconds since 1970 (0: none)
	System    SystemInfo
	Threads   []Thread
	Modules   []Module
	Memory    []Range
	// Exception is the event that stopped the process (nil: none).
	Exception *Exception
	// Full writes the memory as a Memory64ListStream.
	Full bool
}

// SystemInfo is MINIDUMP_SYSTEM_INFO's content for an x64 machine.
type SystemInfo struct {
	Processors          uint8
	Major, Minor, Build uint32
	PlatformID          uint32 // 2: VER_PLATFORM_WIN32_NT
	ProductType         uint8  // 1: VER_NT_WORKSTATION
}

// Thread is one thread: its id, TEB, registers and stack memory.
type Thread struct {
	ID      uint32
	TEB     uint64
	Context arch.Context
	// Stack is the thread's stack from about its RSP to its base.
	Stack Range
}

// Module is one loaded image.
type Module struct {
	Base      uint64
	Size      uint32
	CheckSum  uint32
	TimeStamp uint32
	Name      string // the full path the process sees
	CodeView  []byte // the debug directory's CodeView record ("RSDS..."), or nil
}

// Range is memory at Addr.
type Range struct {
	Addr uint64
	Data []byte
}

// Exception is MINIDUMP_EXCEPTION with the thread it happened on.
type Exception struct {
	ThreadID uint32
	Code     uint32
	Flags    uint32
	Address  uint64
	Params   []uint64
	Context  arch.Context
}

// layout assigns RVAs while the file is assembled in memory: the fixed
// part (header, directory, streams) first, then variable data.
type layout struct {
	buf []byte
	err error
}

func (l *layout) align() {
	for len(l.buf)%8 != 0 {
		l.buf = append(l.buf, 0)
	}
}

// add appends b (8-aligned) and returns its RVA.
func (l *layout) add(b []byte) uint32 {
	l.align()
	rva := len(l.buf)
	if uint64(rva)+uint64(len(b)) > math.MaxUint32 && l.err == nil {
		l.err = fmt.Errorf("minidump larger than 4 GiB before its bulk memory (%d bytes)", uint64(rva)+uint64(len(b)))
	}
	l.buf = append(l.buf, b...)
	return uint32(rva)
}

// reserve appends n zero bytes and returns their RVA.
func (l *layout) reserve(n int) uint32 { return l.add(make([]byte, n)) }

func (l *layout) put32(rva uint32, v uint32) { binary.LittleEndian.PutUint32(l.buf[rva:], v) }
func (l *layout) put64(rva uint32, v uint64) { binary.LittleEndian.PutUint64(l.buf[rva:], v) }
func (l *layout) put16(rva uint32, v uint16) { binary.LittleEndian.PutUint16(l.buf[rva:], v) }

// putLoc writes a MINIDUMP_LOCATION_DESCRIPTOR (size, RVA).
func (l *layout) putLoc(at uint32, size int, rva uint32) {
	l.put32(at, uint32(size))
	l.put32(at+4, rva)
}

// str appends a MINIDUMP_STRING: byte length, UTF-16LE, a terminating NUL
// not counted.
func (l *layout) str(s string) uint32 {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 4+2*len(u)+2)
	binary.LittleEndian.PutUint32(b, uint32(2*len(u)))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[4+2*i:], c)
	}
	return l.add(b)
}

// Context encodes c as an AMD64 CONTEXT (0x4d0 bytes):
//
//	0x30 ContextFlags  0x34 MxCsr  0x38 SegCs Ds Es Fs Gs Ss (u16 each)
//	0x44 EFlags        0x48 Dr0-Dr3, Dr6, Dr7
//	0x78 Rax Rcx Rdx Rbx Rsp Rbp Rsi Rdi R8-R15 (hardware order)  0xf8 Rip
//	0x100 FltSave (XMM_SAVE_AREA32: x87 state, MxCsr, ST0-7 at +0x20,
//	      XMM0-15 at +0xa0)
func Context(c *arch.Context) []byte {
	b := make([]byte, ContextSize)
	le := binary.LittleEndian
	le.PutUint32(b[0x30:], contextFlags)
	le.PutUint32(b[0x34:], c.MXCSR)
	for i, s := range []uint32{c.CS, c.DS, c.ES, c.FS, c.GS, c.SS} {
		le.PutUint16(b[0x38+2*i:], uint16(s))
	}
	le.PutUint32(b[0x44:], uint32(c.RFLAGS))
	for i, v := range c.GPR {
		le.PutUint64(b[0x78+8*i:], v)
	}
	le.PutUint64(b[0xf8:], c.RIP)
	f := b[0x100:]
	le.PutUint16(f[0:], uint16(c.FCTRL))
	le.PutUint16(f[2:], uint16(c.FSTAT))
	f[4] = abridgedTag(c.FTAG)
	le.PutUint16(f[6:], uint16(c.FOP))
	le.PutUint32(f[8:], c.FIOFF)
	le.PutUint16(f[12:], uint16(c.FISEG))
	le.PutUint32(f[16:], c.FOOFF)
	le.PutUint16(f[20:], uint16(c.FOSEG))
	le.PutUint32(f[24:], c.MXCSR)
	le.PutUint32(f[28:], 0xffff) // MxCsr_Mask
	for i := range c.ST {
		copy(f[0x20+16*i:], c.ST[i][:])
	}
	for i := range c.XMM {
		copy(f[0xa0+16*i:], c.XMM[i][:])
	}
	return b
}

// abridgedTag turns the full x87 tag word (2 bits a register, 3 = empty)
// into FXSAVE's abridged form (1 bit a register, 1 = valid).
func abridgedTag(tag uint32) byte {
	var t byte
	for i := 0; i < 8; i++ {
		if (tag>>(2*i))&3 != 3 {
			t |= 1 << i
		}
	}
	return t
}

// ErrTooLarge is returned for dumps whose counts do not fit the format.
var ErrTooLarge = errors.New("minidump: too many records")

// Encode lays out d as a minidump.
func Encode(d *Dump) ([]byte, error) {
	if len(d.Threads) > 1<<16 || len(d.Modules) > 1<<16 || len(d.Memory) > 1<<20 {
		return nil, ErrTooLarge
	}
	if d.Exception != nil && len(d.Exception.Params) > maxExceptParams {
		return nil, fmt.Errorf("minidump: %d exception parameters (at most %d)", len(d.Exception.Params), maxExceptParams)
	}
	type stream struct {
		kind uint32
		size int
	}
	streams := []stream{
		{SystemInfoStream, systemInfoSize},
		{MiscInfoStream, miscInfoSize},
		{ThreadListStream, 4 + threadSize*len(d.Threads)},
		{ModuleListStream, 4 + moduleSize*len(d.Modules)},
	}
	if d.Exception != nil {
		streams = append(streams, stream{ExceptionStream, exceptionSize})
	}
	// Memory: each thread's stack first (MINIDUMP_THREAD points into the
	// list), then the other ranges, sorted, overlaps with a stack cut.
	mem := memoryRanges(d)
	if d.Full {
		streams = append(streams, stream{Memory64ListStream, 16 + descriptor64*len(mem)})
	} else {
		streams = append(streams, stream{MemoryListStream, 4 + descriptorSize*len(mem)})
	}

	l := &layout{}
	l.reserve(headerSize)
	dir := l.reserve(directorySize * len(streams))
	at := map[uint32]uint32{}
	for i, s := range streams {
		rva := l.reserve(s.size)
		at[s.kind] = rva
		e := dir + uint32(directorySize*i)
		l.put32(e, s.kind)
		l.putLoc(e+4, s.size, rva)
	}
	l.put32(0, Signature)
	l.put32(4, Version)
	l.put32(8, uint32(len(streams)))
	l.put32(12, dir)
	l.put32(20, d.TimeStamp)

	// System information: MINIDUMP_SYSTEM_INFO.
	si := at[SystemInfoStream]
	l.put16(si, 9) // PROCESSOR_ARCHITECTURE_AMD64
	l.put16(si+2, 6)
	l.buf[si+6] = max(d.System.Processors, 1)
	l.buf[si+7] = d.System.ProductType
	l.put32(si+8, d.System.Major)
	l.put32(si+12, d.System.Minor)
	l.put32(si+16, d.System.Build)
	l.put32(si+20, d.System.PlatformID)
	l.put32(si+24, l.str("")) // CSDVersionRva

	// MINIDUMP_MISC_INFO with the process id (MINIDUMP_MISC1_PROCESS_ID).
	mi := at[MiscInfoStream]
	l.put32(mi, miscInfoSize)
	l.put32(mi+4, 1)
	l.put32(mi+8, d.PID)

	// Memory first, so that the threads can point at their stacks.
	type loc struct {
		addr      uint64
		size, rva uint32
	}
	stackLoc := make([]loc, len(d.Threads))
	memAt := at[MemoryListStream]
	if d.Full {
		memAt = at[Memory64ListStream]
		l.put64(memAt, uint64(len(mem)))
		l.align()
		base := uint64(len(l.buf))
		l.put64(memAt+8, base)
		for i, r := range mem {
			e := memAt + 16 + uint32(descriptor64*i)
			l.put64(e, r.Addr)
			l.put64(e+8, uint64(len(r.Data)))
			off := uint64(len(l.buf))
			l.buf = append(l.buf, r.Data...)
			if r.thread >= 0 && off <= math.MaxUint32 {
				stackLoc[r.thread] = loc{r.Addr, uint32(len(r.Data)), uint32(off)}
			}
		}
	} else {
		l.put32(memAt, uint32(len(mem)))
		for i, r := range mem {
			rva := l.add(r.Data)
			e := memAt + 4 + uint32(descriptorSize*i)
			l.put64(e, r.Addr)
			l.putLoc(e+8, len(r.Data), rva)
			if r.thread >= 0 {
				stackLoc[r.thread] = loc{r.Addr, uint32(len(r.Data)), rva}
			}
		}
	}

	// MINIDUMP_THREAD: id, suspend count, priority class, priority, TEB,
	// stack (MINIDUMP_MEMORY_DESCRIPTOR), context location.
	tl := at[ThreadListStream]
	l.put32(tl, uint32(len(d.Threads)))
	for i := range d.Threads {
		th := &d.Threads[i]
		e := tl + 4 + uint32(threadSize*i)
		ctx := l.add(Context(&th.Context))
		l.put32(e, th.ID)
		l.put32(e+8, 0x20) // NORMAL_PRIORITY_CLASS
		l.put64(e+16, th.TEB)
		l.put64(e+24, stackLoc[i].addr)
		l.put32(e+32, stackLoc[i].size)
		l.put32(e+36, stackLoc[i].rva)
		l.putLoc(e+40, ContextSize, ctx)
	}

	// MINIDUMP_MODULE: base, size, checksum, time stamp, name RVA,
	// VS_FIXEDFILEINFO (52 bytes, left zero: no version resource read),
	// CvRecord, MiscRecord, two reserved u64.
	ml := at[ModuleListStream]
	l.put32(ml, uint32(len(d.Modules)))
	for i, m := range d.Modules {
		e := ml + 4 + uint32(moduleSize*i)
		name := l.str(m.Name)
		l.put64(e, m.Base)
		l.put32(e+8, m.Size)
		l.put32(e+12, m.CheckSum)
		l.put32(e+16, m.TimeStamp)
		l.put32(e+20, name)
		if len(m.CodeView) > 0 {
			l.putLoc(e+76, len(m.CodeView), l.add(m.CodeView))
		}
	}

	// MINIDUMP_EXCEPTION_STREAM: thread id, alignment, MINIDUMP_EXCEPTION
	// (code, flags, nested record, address, parameter count, alignment,
	// 15 parameters), context location.
	if x := d.Exception; x != nil {
		e := at[ExceptionStream]
		ctx := l.add(Context(&x.Context))
		l.put32(e, x.ThreadID)
		l.put32(e+8, x.Code)
		l.put32(e+12, x.Flags)
		l.put64(e+24, x.Address)
		l.put32(e+32, uint32(len(x.Params)))
		for i, p := range x.Params {
			l.put64(e+40+uint32(8*i), p)
		}
		l.putLoc(e+160, ContextSize, ctx)
	}
	if l.err != nil {
		return nil, l.err
	}
	return l.buf, nil
}

// memRange is a range of the memory list; thread is the index of the
// thread whose stack it is, or -1.
type memRange struct {
	Range
	thread int
}

// memoryRanges orders the memory: sorted by address, overlapping bytes
// kept once (a thread's stack wins over other ranges), empty ones left
// out.
func memoryRanges(d *Dump) []memRange {
	var all []memRange
	for i, th := range d.Threads {
		if len(th.Stack.Data) > 0 {
			all = append(all, memRange{th.Stack, i})
		}
	}
	for _, r := range d.Memory {
		if len(r.Data) > 0 {
			all = append(all, memRange{r, -1})
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].Addr != all[j].Addr {
			return all[i].Addr < all[j].Addr
		}
		return all[i].thread > all[j].thread // a stack first
	})
	var out []memRange
	for _, r := range all {
		if n := len(out); n > 0 {
			prev := &out[n-1]
			end := prev.Addr + uint64(len(prev.Data))
			if r.Addr < end {
				if r.thread >= 0 && prev.thread < 0 {
					// The stack wins: cut the other range short.
					prev.Data = prev.Data[:r.Addr-prev.Addr]
					if len(prev.Data) == 0 {
						out = out[:n-1]
					}
				} else {
					skip := end - r.Addr
					if skip >= uint64(len(r.Data)) {
						continue
					}
					r.Data, r.Addr = r.Data[skip:], end
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// Summary counts what a dump holds.
type Summary struct {
	Threads, Modules, Ranges int
	MemoryBytes              int
	FileBytes                int // set by the writer
}

// Summary counts d's threads, modules and memory as Encode writes them.
func (d *Dump) Summary() Summary {
	s := Summary{Threads: len(d.Threads), Modules: len(d.Modules)}
	for _, r := range memoryRanges(d) {
		s.Ranges++
		s.MemoryBytes += len(r.Data)
	}
	return s
}

// Write encodes d to w.
func Write(w io.Writer, d *Dump) error {
	b, err := Encode(d)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
