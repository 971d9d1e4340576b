package ucwin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/rspstub/rspstub/guest/minidump"
	"github.com/rspstub/rspstub/guest/wine"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/peimage"
	"github.com/rspstub/rspstub/rsp"
)

// Bounds on what a dump copies from guest memory (a corrupt TEB must not
// make it read gigabytes).
const (
	maxDumpStack   = 16 << 20 // a thread's stack, RSP to StackBase
	dumpStackNoTEB = 64 << 10 // from RSP when the TEB's bounds do not hold it
	dumpCodeWindow = 256      // bytes each side of a thread's RIP
	dumpTEBSize    = 0x2000
	dumpPEBSize    = 0x1000
	maxDumpFull    = 4 << 30 // all of a full dump's memory
)

// Exception codes used for stops that are not faults.
const (
	statusBreakpoint = wine.EXCEPTION_BREAKPOINT
	dbgControlC      = 0x40010005
)

// Minidump collects the stopped process as a minidump: every thread with
// its registers and stack, the modules, the TEBs, the PEB, the code
// around each thread's RIP (full: every readable region), and the
// exception that stopped it (a breakpoint stop is EXCEPTION_BREAKPOINT, an
// interrupt DBG_CONTROL_C, as a Windows debugger records its last event).
func (t *Target) Minidump(full bool) (*minidump.Dump, error) {
	if t.exited {
		return nil, errors.New("the program has exited: nothing to dump")
	}
	d := &minidump.Dump{PID: uint32(t.ProcessInfo().PID), TimeStamp: uint32(time.Now().Unix()), Full: full}
	peb := uint64(0)
	if t.wine != nil {
		peb = t.wine.PEB()
	} else {
		peb = t.proc.PEB()
	}
	d.System = minidump.SystemInfo{Processors: 1, Major: 10, Build: 19045, PlatformID: 2, ProductType: 1}
	if v, ok := t.readU32(peb + 0x118); ok && v != 0 { // PEB.OSMajorVersion, Minor, BuildNumber, PlatformId
		d.System.Major = v
		d.System.Minor, _ = t.readU32(peb + 0x11c)
		b, _ := t.readU32(peb + 0x120)
		d.System.Build = b & 0xffff
		if p, ok := t.readU32(peb + 0x124); ok && p != 0 {
			d.System.PlatformID = p
		}
	}
	d.Memory = append(d.Memory, t.dumpRange(peb, dumpPEBSize))

	cur := 0
	for _, th := range t.Threads(nil) {
		ctx, err := t.threadContext(th.ID)
		if err != nil {
			return nil, fmt.Errorf("thread %d: %w", th.ID, err)
		}
		teb, err := t.TIBAddress(th.ID)
		if err != nil {
			return nil, fmt.Errorf("thread %d: %w", th.ID, err)
		}
		if t.wine != nil && uint32(th.ID) == t.wine.CurrentThread() {
			cur = len(d.Threads)
		}
		d.Threads = append(d.Threads, minidump.Thread{ID: uint32(th.ID), TEB: teb, Context: ctx, Stack: t.dumpStack(teb, ctx.GPR[arch.RSP])})
		d.Memory = append(d.Memory, t.dumpRange(teb, dumpTEBSize))
		if ctx.RIP > dumpCodeWindow {
			d.Memory = append(d.Memory, t.dumpRange(ctx.RIP-dumpCodeWindow, 2*dumpCodeWindow))
		}
	}
	if len(d.Threads) == 0 {
		return nil, errors.New("no thread to dump")
	}
	for _, m := range t.modules() {
		d.Modules = append(d.Modules, t.dumpModule(m))
	}
	if full {
		total := 0
		for _, r := range t.m.Regions() {
			if r.Perm&arch.PermRead == 0 || total+int(r.Size) > maxDumpFull {
				continue
			}
			rg := t.dumpRange(r.Start, int(r.Size))
			total += len(rg.Data)
			d.Memory = append(d.Memory, rg)
		}
	}
	x := t.dumpException(&d.Threads[cur])
	d.Exception = &x
	return d, nil
}

// WriteMinidump writes the process's minidump to path (see
// minidump.WriteFile for what paths are refused).
func (t *Target) WriteMinidump(path string, full bool) (minidump.Summary, error) {
	d, err := t.Minidump(full)
	if err != nil {
		return minidump.Summary{}, err
	}
	n, err := minidump.WriteFile(path, d)
	if err != nil {
		return minidump.Summary{}, err
	}
	s := d.Summary()
	s.FileBytes = n
	return s, nil
}

// FaultDump returns the dump taken when the last fault was delivered to
// the guest's handlers (Config.DumpFaults), and that fault's code: a
// process that then exits with that code ended because of it (Windows
// makes an unhandled exception's code the exit code).
func (t *Target) FaultDump() (*minidump.Dump, uint32) {
	if t.faultDump == nil || t.faultDump.Exception == nil {
		return nil, 0
	}
	return t.faultDump, t.faultDump.Exception.Code
}

// threadContext returns a thread's registers.
func (t *Target) threadContext(tid int) (arch.Context, error) {
	if t.wine != nil {
		c, err := t.wine.ThreadContext(uint32(tid))
		if err != nil {
			return arch.Context{}, err
		}
		return *c, nil
	}
	var c arch.Context
	err := t.m.ReadContext(&c)
	return c, err
}

func (t *Target) readU32(addr uint64) (uint32, bool) {
	var b [4]byte
	n, _ := t.m.ReadMemory(addr, b[:])
	return binary.LittleEndian.Uint32(b[:]), n == 4
}

// dumpRange reads up to size bytes at addr (the readable prefix).
func (t *Target) dumpRange(addr uint64, size int) minidump.Range {
	b := make([]byte, size)
	n, _ := t.m.ReadMemory(addr, b)
	return minidump.Range{Addr: addr, Data: b[:n]}
}

// dumpStack is a thread's stack from its RSP (page-aligned down) to the
// TEB's StackBase, or a bounded window when the TEB does not hold RSP.
func (t *Target) dumpStack(teb, rsp uint64) minidump.Range {
	lo := rsp &^ 0xfff
	var b [16]byte
	n, _ := t.m.ReadMemory(teb+8, b[:]) // NT_TIB.StackBase, StackLimit
	base, limit := binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])
	if n == 16 && rsp >= limit && rsp < base && base-lo <= maxDumpStack {
		return t.dumpRange(lo, int(base-lo))
	}
	return t.dumpRange(lo, dumpStackNoTEB)
}

// dumpModule reads what MINIDUMP_MODULE carries from the image's headers
// in memory: time stamp, checksum and the CodeView record.
func (t *Target) dumpModule(m module) minidump.Module {
	out := minidump.Module{Base: m.Base, Size: uint32(min(m.Size, 1<<32-1)), Name: m.Path}
	f, err := peimage.ReadNTHeaders(t.m, m.Base)
	if err != nil {
		return out
	}
	out.TimeStamp, out.CheckSum = f.TimeDateStamp, f.CheckSum
	out.CodeView = f.ReadCodeView(t.m, m.Base, m.Size)
	return out
}

// dumpException is the event the process is stopped at, on thread th.
func (t *Target) dumpException(th *minidump.Thread) minidump.Exception {
	x := minidump.Exception{ThreadID: th.ID, Context: th.Context, Code: statusBreakpoint, Address: th.Context.RIP}
	var e *wine.Exception
	switch {
	case t.pending != nil:
		e = t.pending
	case t.wine != nil && t.final != nil:
		if u, ok := t.wine.Unhandled(); ok {
			e = &u
		}
	case t.fault != nil:
		e = t.fault
	case t.last.Kind == rsp.StopSignal && t.last.Signal == rsp.SIGINT:
		x.Code = dbgControlC
	}
	if e != nil {
		x.Code, x.Address = e.Code, e.Address
		x.Params = e.Params
		if len(x.Params) > 15 {
			x.Params = x.Params[:15]
		}
	}
	return x
}

// ModuleImage returns a loaded module's image as a file on disk would
// hold it (synthesized DLLs included), by base name or guest path.
func (t *Target) ModuleImage(name string) ([]byte, error) { return t.moduleImage(name) }
