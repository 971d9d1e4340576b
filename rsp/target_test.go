package rsp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
)

// testTarget is an in-memory Target with every optional interface. It
// "runs" trivially: a step advances rip by one; a continue jumps to the
// lowest software breakpoint above rip, or waits for Interrupt.
type testTarget struct {
	desc    *Description
	mu      sync.Mutex
	regs    []byte // one thread's registers; all threads share them
	regions []testRegion
	bps     [16]struct {
		used bool
		kind BreakKind
		addr uint64
	}
	stop      Stop
	intr      chan struct{}
	console   io.Writer
	detached  int
	killed    bool
	resumes   int
	lastActs  []ResumeAction
	threadIDs []int
	restarts  int
	args      []string
}

type testRegion struct {
	MemoryRegion
	data []byte
}

const (
	testCodeBase  = 0x140001000
	testStackBase = 0x7ff000
	testTEB       = 0x7ffde000
)

func newTestTarget() *testTarget { return newTestTargetWith(AMD64Options{}) }

func newTestTargetWith(opt AMD64Options) *testTarget {
	t := &testTarget{desc: AMD64(opt), intr: make(chan struct{}, 1), threadIDs: []int{1}}
	t.regs = make([]byte, t.desc.Size())
	t.regions = []testRegion{
		{MemoryRegion{Start: testStackBase, Size: 0x1000, Read: true, Write: true, Name: "stack"}, make([]byte, 0x1000)},
		{MemoryRegion{Start: testTEB, Size: 0x1000, Read: true, Write: true, Name: "TEB"}, make([]byte, 0x1000)},
		{MemoryRegion{Start: testCodeBase, Size: 0x2000, Read: true, Exec: true, Name: "demo.exe .text"}, make([]byte, 0x2000)},
	}
	code := t.regions[2].data
	for i := range code {
		code[i] = byte(i)
	}
	t.setReg(AMD64RIP, testCodeBase+0x10)
	t.setReg(AMD64RSP, testStackBase+0x800)
	t.setReg(AMD64RBP, testStackBase+0x900)
	t.setReg(AMD64RAX, 0x1122334455667788)
	t.setReg(AMD64EFLAGS, 0x246)
	t.setReg(AMD64CS, 0x33)
	t.setReg(AMD64FSBase, 0)
	t.setReg(AMD64GSBase, testTEB)
	t.setReg(AMD64MXCSR, 0x1f80)
	t.setReg(AMD64FCTRL, 0x37f)
	xmm0 := t.desc.Registers[AMD64XMM0]
	for i := 0; i < 16; i++ {
		t.regs[xmm0.Offset+i] = byte(0xa0 + i)
	}
	t.stop = Stop{Kind: StopSignal, Signal: SIGTRAP, Thread: 1}
	return t
}

func (t *testTarget) setReg(n int, v uint64) {
	r := t.desc.Registers[n]
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	copy(t.regs[r.Offset:r.Offset+r.Size()], b[:])
}

func (t *testTarget) reg(n int) uint64 {
	r := t.desc.Registers[n]
	var b [8]byte
	copy(b[:], t.regs[r.Offset:r.Offset+r.Size()])
	return binary.LittleEndian.Uint64(b[:])
}

var (
	errNoThreadT = errors.New("no such thread")
	errUnmapped  = errors.New("unmapped memory")
)

func (t *testTarget) checkTID(tid int) error {
	for _, id := range t.threadIDs {
		if id == tid {
			return nil
		}
	}
	return errNoThreadT
}

func (t *testTarget) Description() *Description { return t.desc }

func (t *testTarget) ReadRegisters(tid int, dst []byte) error {
	if err := t.checkTID(tid); err != nil {
		return err
	}
	copy(dst, t.regs)
	return nil
}

func (t *testTarget) WriteRegisters(tid int, src []byte) error {
	if err := t.checkTID(tid); err != nil {
		return err
	}
	copy(t.regs, src)
	return nil
}

func (t *testTarget) ReadRegister(tid, n int, dst []byte) error {
	if err := t.checkTID(tid); err != nil {
		return err
	}
	r := t.desc.Registers[n]
	copy(dst, t.regs[r.Offset:r.Offset+r.Size()])
	return nil
}

func (t *testTarget) WriteRegister(tid, n int, src []byte) error {
	if err := t.checkTID(tid); err != nil {
		return err
	}
	r := t.desc.Registers[n]
	copy(t.regs[r.Offset:r.Offset+r.Size()], src)
	return nil
}

func (t *testTarget) find(addr uint64) *testRegion {
	for i := range t.regions {
		r := &t.regions[i]
		if addr >= r.Start && addr-r.Start < r.Size {
			return r
		}
	}
	return nil
}

// ReadMemory reads across adjacent regions and stops at the first hole.
func (t *testTarget) ReadMemory(addr uint64, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		r := t.find(addr + uint64(n))
		if r == nil {
			break
		}
		n += copy(p[n:], r.data[addr+uint64(n)-r.Start:])
	}
	if n == 0 && len(p) > 0 {
		return 0, errUnmapped
	}
	return n, nil
}

func (t *testTarget) WriteMemory(addr uint64, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		r := t.find(addr + uint64(n))
		if r == nil || !r.Write && r.Name != "demo.exe .text" {
			break
		}
		n += copy(r.data[addr+uint64(n)-r.Start:], p[n:])
	}
	if n < len(p) {
		return n, fmt.Errorf("write %#x: unmapped", addr+uint64(n))
	}
	return n, nil
}

func (t *testTarget) Resume(actions []ResumeAction) (Stop, error) {
	t.mu.Lock()
	t.resumes++
	t.lastActs = append(t.lastActs[:0], actions...)
	console := t.console
	t.mu.Unlock()
	step := false
	for _, a := range actions {
		step = step || a.Step
	}
	rip := t.reg(AMD64RIP)
	if step {
		t.setReg(AMD64RIP, rip+1)
		t.stop = Stop{Kind: StopSignal, Signal: SIGTRAP, Thread: 1}
		return t.stop, nil
	}
	if console != nil {
		io.WriteString(console, "guest says hi\n")
	}
	best := uint64(0)
	for _, b := range t.bps {
		if b.used && b.kind == BreakSoftware && b.addr > rip && (best == 0 || b.addr < best) {
			best = b.addr
		}
	}
	if best != 0 {
		t.setReg(AMD64RIP, best)
		t.stop = Stop{Kind: StopSWBreak, Signal: SIGTRAP, Thread: 1}
		return t.stop, nil
	}
	<-t.intr
	t.stop = Stop{Kind: StopSignal, Signal: SIGINT, Thread: 1, Description: "interrupted"}
	return t.stop, nil
}

func (t *testTarget) Interrupt() {
	select {
	case t.intr <- struct{}{}:
	default:
	}
}

func (t *testTarget) LastStop() Stop { return t.stop }

func (t *testTarget) SupportsBreakpoint(k BreakKind) bool { return k <= WatchAccess }

func (t *testTarget) InsertBreakpoint(k BreakKind, addr uint64, size int) error {
	free := -1
	for i := range t.bps {
		b := &t.bps[i]
		if b.used && b.kind == k && b.addr == addr {
			return nil
		}
		if !b.used && free < 0 {
			free = i
		}
	}
	if free < 0 {
		return errors.New("too many breakpoints")
	}
	t.bps[free].used, t.bps[free].kind, t.bps[free].addr = true, k, addr
	return nil
}

func (t *testTarget) RemoveBreakpoint(k BreakKind, addr uint64, size int) error {
	for i := range t.bps {
		b := &t.bps[i]
		if b.used && b.kind == k && b.addr == addr {
			b.used = false
		}
	}
	return nil
}

func (t *testTarget) Threads(dst []ThreadInfo) []ThreadInfo {
	for _, id := range t.threadIDs {
		name := "main"
		if id != 1 {
			name = fmt.Sprintf("worker%d", id)
		}
		dst = append(dst, ThreadInfo{ID: id, Name: name, Extra: "vCPU 0"})
	}
	return dst
}

// MemoryMapIsFixed makes the test target a FixedMemoryMapper.
func (t *testTarget) MemoryMapIsFixed() {}

func (t *testTarget) MemoryRegions(dst []MemoryRegion) []MemoryRegion {
	for _, r := range t.regions {
		dst = append(dst, r.MemoryRegion)
	}
	return dst
}

func (t *testTarget) Libraries(dst []Library) []Library {
	return append(dst,
		Library{Name: `C:\demo\demo.exe`, Base: 0x140000000, SegmentAddr: 0x140001000},
		Library{Name: `C:\Windows\System32\KERNEL32.dll`, Base: 0x7ff800000000, SegmentAddr: 0x7ff800001000})
}

func (t *testTarget) ExecFile(pid int) (string, error) { return `C:\demo\demo.exe`, nil }

type memFile struct{ *bytes.Reader }

func (memFile) Close() error { return nil }

func (t *testTarget) OpenFile(name string) (File, error) {
	if name != `C:\demo\demo.exe` && name != `C:\Windows\System32\KERNEL32.dll` {
		return nil, fmt.Errorf("open %q: %w", name, fs.ErrNotExist)
	}
	return memFile{bytes.NewReader(bytes.Repeat([]byte("MZ}$#*"), 1000))}, nil
}

func (t *testTarget) FileLoadAddress(name string) (uint64, error) {
	if name == `C:\demo\demo.exe` {
		return 0x140000000, nil
	}
	return 0, fs.ErrNotExist
}

func (t *testTarget) TIBAddress(tid int) (uint64, error) {
	if t.checkTID(tid) != nil {
		return 0, errNoThreadT
	}
	return testTEB, nil
}

func (t *testTarget) Monitor(cmd string, out io.Writer) error {
	switch cmd {
	case "help":
		io.WriteString(out, "commands: help, big, fail\n")
		return nil
	case "big":
		out.Write(bytes.Repeat([]byte("0123456789abcdef"), 4096))
		return nil
	case "huge":
		// 5 MiB of JSON-like text in 256 KiB writes, as a 10,000-frame
		// `monitor bt -json` streams it.
		piece := bytes.Repeat([]byte(`"rbp":"0x2000002030",`), 256<<10/21)
		for range 20 {
			out.Write(piece)
		}
		return nil
	}
	return fmt.Errorf("unknown monitor command %q", cmd)
}

func (t *testTarget) ProcessInfo() ProcessInfo {
	return ProcessInfo{PID: 42, Triple: "x86_64-pc-windows-msvc", OSType: "windows", Vendor: "pc"}
}

func (t *testTarget) Kill() error {
	t.killed = true
	t.stop = Stop{Kind: StopTerminated, Signal: SIGKILL}
	return nil
}

func (t *testTarget) Detach() error {
	t.mu.Lock()
	t.detached++
	t.mu.Unlock()
	for i := range t.bps {
		t.bps[i].used = false
	}
	return nil
}

func (t *testTarget) detachCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.detached
}

func (t *testTarget) SetConsole(w io.Writer) {
	t.mu.Lock()
	t.console = w
	t.mu.Unlock()
}

// AllocateMemory maps a new zeroed region after the last one.
func (t *testTarget) AllocateMemory(size uint64, perm Perm) (uint64, error) {
	if size > 1<<20 {
		return 0, errors.New("too big")
	}
	last := t.regions[len(t.regions)-1]
	base := (last.Start + last.Size + 0xffff) &^ 0xffff
	t.regions = append(t.regions, testRegion{MemoryRegion{Start: base, Size: size,
		Read: perm&PermRead != 0, Write: perm&PermWrite != 0, Exec: perm&PermExec != 0, Name: "allocated"}, make([]byte, size)})
	return base, nil
}

func (t *testTarget) FreeMemory(addr uint64) error {
	for i, r := range t.regions {
		if r.Start == addr && r.Name == "allocated" {
			t.regions = append(t.regions[:i], t.regions[i+1:]...)
			return nil
		}
	}
	return errors.New("not allocated")
}

// Restart puts rip back at its first value and remembers the arguments.
func (t *testTarget) Restart(args []string) (Stop, error) {
	t.mu.Lock()
	t.restarts++
	if args != nil {
		t.args = args
	}
	t.mu.Unlock()
	t.killed = false
	t.setReg(AMD64RIP, testCodeBase+0x10)
	t.stop = Stop{Kind: StopSignal, Signal: SIGTRAP, Thread: 1, Library: true}
	return t.stop, nil
}
