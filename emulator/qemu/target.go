package qemu

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rspstub/rspstub/rsp"
)

// Mode says what kind of QEMU is on the other end.
type Mode int

const (
	// ModeAuto detects the mode: qemu-user offers qXfer:auxv:read,
	// qemu-system does not.
	ModeAuto Mode = iota
	// ModeSystem is qemu-system-x86_64: vCPUs, control registers.
	ModeSystem
	// ModeUser is qemu-x86_64 running one Linux program.
	ModeUser
)

func (m Mode) String() string {
	switch m {
	case ModeSystem:
		return "system"
	case ModeUser:
		return "user"
	}
	return "auto"
}

// Options configure a Target.
type Options struct {
	// Logger receives debug and warning messages (default slog.Default()).
	Logger *slog.Logger
	// Mode is ModeAuto unless the caller knows (it started QEMU itself).
	Mode Mode
	// Timeout bounds each request to QEMU (not a run). Default 10 s.
	Timeout time.Duration
	// LogPackets logs every packet exchanged with QEMU at debug level.
	LogPackets bool
	// Retry keeps dialling a refused connection for this long: a QEMU
	// just started creates its socket before it listens on it.
	Retry time.Duration
	// PID is the QEMU process. qemu-user can only be interrupted by a
	// signal to it; Connect finds it by itself over a unix socket.
	PID int
	// Modules are images the user placed (--module FILE@BASE); they
	// override what the guest-memory walk finds over their range.
	Modules []*ModuleFile
	// UserModules lists a qemu-user program's ELF objects. nil:
	// LinuxModules (package guest/linuxproc).
	UserModules UserModulesFunc
}

// ErrGone is returned once the connection to QEMU is lost.
var ErrGone = errors.New("qemu: QEMU closed the gdbstub connection (it exited or was killed)")

// Target is an rsp.Target backed by QEMU's gdbstub.
type Target struct {
	c    *rsp.Client
	log  *slog.Logger
	mode Mode
	addr string

	desc   *rsp.Description // ours, served to the debugger
	qdesc  *rsp.Description // QEMU's
	regmap []int            // our regnum → QEMU's description index, or -1
	// cache holds one thread's registers (our layout) from a `g`, valid
	// until the guest runs or a register is written: the expedited
	// registers of a stop reply and a debugger's p after p cost one
	// request.
	cache    []byte
	cacheTID int    // 0: cache empty
	fill     []byte // scratch for filling the cache
	// A debugger that read registers at one stop reads them at the
	// next: then a `g` goes to QEMU as soon as QEMU reports the stop,
	// while the stop reply goes to the debugger (prefetch.go).
	regsRead   bool // the debugger read registers since the last resume
	pendingTID int  // a prefetching `g` for this thread awaits its reply; 0: none
	// With it, an `m` for the block around the last stop's pc (aheadPC
	// of thread aheadTID, read when the guest was resumed).
	pendingMem bool
	aheadPC    uint64
	aheadTID   int
	mem        memCache // this stop's memory, around where the debugger read (memcache.go)

	gsel    int // thread QEMU's Hg currently selects; 0: unknown
	threads []int
	last    rsp.Stop

	bps     map[bpKey]int // Z0/Z1 breakpoints and the watchpoints QEMU holds (1 each: inserting again is a no-op, as in gdbserver)
	soft    []softWatch   // watchpoints emulated by single-stepping (qemu-user has none)
	noWatch bool          // QEMU answered Z2 empty: emulate watchpoints
	sc      syscallCatch  // catch syscall in qemu-user (syscalls.go)
	// Guest memory for the debugger (alloc.go): its allocations, and a
	// syscall instruction to run mmap with (for the module list libSig).
	allocs     map[uint64]uint64
	sysSite    uint64
	sysSiteSig string

	// Module discovery (windows.go): cached per stop (gen counts
	// resumes), per thread.
	gen         uint64
	disc        discovery
	hg          int    // the thread the debugger last read registers of
	libSig      string // the module list the debugger last saw
	auxv        []byte // qemu-user's auxiliary vector, read once
	userMods    []*ModuleFile
	userModules UserModulesFunc

	mu          sync.Mutex  // held by every exported method but Interrupt
	pid         int         // the QEMU process, when known
	running     atomic.Bool // a Resume to QEMU is in flight
	interrupted atomic.Bool
	signalled   atomic.Bool // SIGINT already sent during this resume
	gone        atomic.Bool
	closeOnce   sync.Once
}

type bpKey struct {
	kind rsp.BreakKind
	addr uint64
	size int
}

// Connect dials QEMU's gdbstub at addr ("tcp:HOST:PORT", "HOST:PORT" or
// "unix:PATH") and wraps it.
func Connect(addr string, opt Options) (*Target, error) {
	dial := addr
	if a, ok := strings.CutPrefix(addr, "tcp:"); ok {
		dial = a
	}
	if !strings.HasPrefix(dial, "unix:") {
		if _, _, err := net.SplitHostPort(dial); err != nil {
			return nil, fmt.Errorf("qemu: address %q: want tcp:HOST:PORT or unix:PATH", addr)
		}
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	network, where := "tcp", dial
	if p, ok := strings.CutPrefix(dial, "unix:"); ok {
		network, where = "unix", p
	}
	conn, err := net.DialTimeout(network, where, opt.Timeout)
	for deadline := time.Now().Add(opt.Retry); err != nil && errors.Is(err, syscall.ECONNREFUSED) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		conn, err = net.DialTimeout(network, where, opt.Timeout)
	}
	if err == nil {
		err = quiesce(conn, opt.Timeout)
		if err != nil {
			conn.Close()
		}
	}
	var c *rsp.Client
	if err == nil && opt.PID == 0 && network == "unix" {
		opt.PID = peerPID(conn)
	}
	if err == nil {
		c, err = rsp.NewClient(conn, rsp.WithTimeout(opt.Timeout), rsp.WithClientLogger(log), rsp.WithClientPacketLog(opt.LogPackets))
		if err != nil {
			conn.Close()
		}
	}
	if err != nil {
		var hint string
		switch {
		case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT):
			hint = "; is QEMU running with -gdb " + strings.TrimPrefix(addr, "tcp:") + " (or qemu-user with -g)?"
		case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
			hint = "; QEMU's gdbstub takes one debugger at a time: is another attached?"
		}
		return nil, fmt.Errorf("qemu: connect to %s: %w%s", addr, err, hint)
	}
	t, err := New(c, opt)
	if err != nil {
		c.Close()
		return nil, err
	}
	t.addr = addr
	return t, nil
}

// quiesce stops a running guest before the protocol starts. A running
// qemu-system takes the first byte it receives as "stop" and drops it,
// then sends a stop reply nobody asked for, which would pair every later
// request with the previous reply. So: 0x03 (ignored by a stopped QEMU),
// then qAttached, and every packet up to its answer (not a stop reply)
// is read and acknowledged.
func quiesce(conn net.Conn, timeout time.Duration) error {
	conn.SetDeadline(time.Now().Add(timeout))
	defer conn.SetDeadline(time.Time{})
	if _, err := conn.Write([]byte("\x03$qAttached#8f")); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	var pkt []byte
	inPkt, sum := false, 0
	for total := 0; total < 1<<16; {
		n, err := conn.Read(buf)
		if err != nil {
			return err
		}
		total += n
		for _, b := range buf[:n] {
			switch {
			case sum > 0:
				sum--
				if sum > 0 {
					continue
				}
				if _, err := conn.Write([]byte{'+'}); err != nil {
					return err
				}
				if len(pkt) == 0 || (pkt[0] != 'T' && pkt[0] != 'S') {
					return nil // the answer to qAttached
				}
			case b == '$':
				inPkt, pkt = true, pkt[:0]
			case inPkt && b == '#':
				inPkt, sum = false, 2
			case inPkt:
				pkt = append(pkt, b)
			}
		}
	}
	return errors.New("qemu: no answer to qAttached")
}

// New wraps a client already connected to QEMU's gdbstub.
func New(c *rsp.Client, opt Options) (*Target, error) {
	t := &Target{c: c, log: opt.Logger, mode: opt.Mode, pid: opt.PID, bps: map[bpKey]int{},
		userMods: opt.Modules, userModules: opt.UserModules, gen: 1}
	if t.log == nil {
		t.log = slog.Default()
	}
	if t.mode == ModeAuto {
		t.mode = ModeSystem
		if c.Features()["qXfer:auxv:read"] == "+" {
			t.mode = ModeUser
		}
	}
	if t.mode == ModeUser && t.userModules == nil {
		t.userModules = LinuxModules
	}
	if t.mode == ModeSystem {
		// qemu-system's gdbstub takes requests while its replies are
		// unacknowledged (qemu-user's waits for each `+`): reads are
		// pipelined and acks ride on the next request.
		c.SetLazyAcks(true)
	}
	t.qdesc = c.Description()
	if err := checkAMD64(t.qdesc); err != nil {
		return nil, err
	}
	sys := t.mode == ModeSystem && t.qdesc.Lookup("cr0") >= 0
	t.desc = rsp.AMD64(rsp.AMD64Options{System: sys, Linux: t.mode == ModeUser})
	t.regmap = make([]int, len(t.desc.Registers))
	for i, r := range t.desc.Registers {
		t.regmap[i] = t.qdesc.Lookup(r.Name)
	}
	st, err := c.StopReason()
	if err != nil {
		return nil, fmt.Errorf("qemu: ask why the guest is stopped: %w", err)
	}
	t.last = st
	if err := t.refreshThreads(); err != nil {
		return nil, err
	}
	if t.last.Thread <= 0 && len(t.threads) > 0 {
		t.last.Thread = t.threads[0]
	}
	if t.mode == ModeUser && t.pid <= 0 {
		t.log.Warn("the qemu-user process is unknown (give its PID): interrupting the running guest will not work")
	}
	t.log.Debug("attached to QEMU", "mode", t.mode.String(), "registers", len(t.qdesc.Registers), "threads", len(t.threads))
	return t, nil
}

// checkAMD64 refuses a description that is not x86-64.
func checkAMD64(d *rsp.Description) error {
	if d == nil {
		return errors.New("qemu: QEMU sent no target description")
	}
	rip := d.Lookup("rip")
	if rip < 0 || d.Registers[rip].Bits != 64 || d.Lookup("rsp") < 0 || d.Lookup("rax") < 0 {
		return fmt.Errorf("qemu: the target is not x86-64 (architecture %q, %d registers, no 64-bit rip): run qemu-system-x86_64 or qemu-x86_64", d.Arch, len(d.Registers))
	}
	return nil
}

// Mode is the detected (or given) mode.
func (t *Target) Mode() Mode { return t.mode }

// Client is the connection to QEMU.
func (t *Target) Client() *rsp.Client { return t.c }

// Description implements rsp.Target.
func (t *Target) Description() *rsp.Description { return t.desc }

// lastStop implements rsp.Target.
func (t *Target) lastStop() rsp.Stop { return t.last }

// Gone reports whether the connection to QEMU was lost.
func (t *Target) Gone() bool { return t.gone.Load() }

// Close detaches from QEMU (it keeps running without a debugger) and
// closes the connection. Breakpoints are removed first. A guest that
// is running is interrupted first; if it does not stop within two
// seconds the connection is just closed.
func (t *Target) Close() error {
	var err error
	t.closeOnce.Do(func() {
		locked := t.mu.TryLock()
		for i := 0; i < 200 && !locked; i++ {
			t.Interrupt() // a running guest holds the lock
			time.Sleep(10 * time.Millisecond)
			locked = t.mu.TryLock()
		}
		if !locked {
			t.gone.Store(true)
			t.c.Close()
			return
		}
		defer t.mu.Unlock()
		if t.gone.Load() {
			t.c.Close()
			return
		}
		t.settle()
		t.dropBreakpoints()
		err = t.c.Detach()
		t.gone.Store(true)
		if isConnErr(err) {
			err = nil
		}
	})
	return err
}

// check fails fast once QEMU is gone, and notes a lost connection.
func (t *Target) check(err error) error {
	if err == nil {
		return nil
	}
	if isConnErr(err) {
		if !t.gone.Swap(true) {
			t.log.Warn("lost the connection to QEMU", "err", err)
			t.last = rsp.Stop{Kind: rsp.StopTerminated, Signal: rsp.SIGKILL, Description: "QEMU closed the connection"}
		}
		return fmt.Errorf("%w: %v", ErrGone, err)
	}
	return err
}

func isConnErr(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

// ---- threads

// refreshThreads lists QEMU's threads (vCPUs, or the guest's LWPs).
func (t *Target) refreshThreads() error {
	t.threads = t.threads[:0]
	rep, err := t.c.Request("qfThreadInfo")
	for i := 0; i < 4096 && err == nil && len(rep) > 0 && rep[0] == 'm'; i++ {
		for _, f := range strings.Split(rep[1:], ",") {
			if id, ok := parseTID(f); ok {
				t.threads = append(t.threads, id)
			}
		}
		rep, err = t.c.Request("qsThreadInfo")
	}
	if err != nil && !errors.Is(err, rsp.ErrUnsupported) {
		return t.check(fmt.Errorf("qemu: list threads: %w", err))
	}
	if len(t.threads) == 0 {
		t.threads = append(t.threads, 1)
	}
	return nil
}

// parseTID reads a thread id, plain ("1f") or multiprocess ("p1.1f").
func parseTID(s string) (int, bool) {
	if p, ok := strings.CutPrefix(s, "p"); ok {
		_, tid, found := strings.Cut(p, ".")
		if !found {
			return 0, false
		}
		s = tid
	}
	v, err := strconv.ParseUint(s, 16, 31)
	if err != nil || v == 0 {
		return 0, false
	}
	return int(v), true
}

// threadInfos implements rsp.ThreadLister: vCPUs in system mode (ids
// 1..N), the program's threads (Linux TIDs) in user mode.
func (t *Target) threadInfos(dst []rsp.ThreadInfo) []rsp.ThreadInfo {
	for i, id := range t.threads {
		extra := fmt.Sprintf("vCPU %d", i)
		if t.mode == ModeUser {
			extra = fmt.Sprintf("LWP %d", id)
		}
		dst = append(dst, rsp.ThreadInfo{ID: id, Extra: extra})
	}
	return dst
}

// selectThread makes QEMU's register (and, in system mode, memory)
// accesses use thread tid.
func (t *Target) selectThread(tid int) error {
	if t.gone.Load() {
		return ErrGone
	}
	if tid <= 0 {
		tid = t.last.Thread
	}
	if tid <= 0 || tid == t.gsel {
		return nil
	}
	if _, err := t.c.Request("Hg" + strconv.FormatUint(uint64(tid), 16)); err != nil {
		return t.check(fmt.Errorf("qemu: select thread %d: %w", tid, err))
	}
	t.gsel = tid
	t.mem.drop() // in system mode, memory is now that vCPU's view
	return nil
}

// ---- registers

// readRegisters implements rsp.Target with one `g` to QEMU, mapped by
// register name into our layout, or from the cache when this stop's
// registers of tid are already here (the stop reply's expedited
// registers filled it, so GDB's `g` after a step costs QEMU nothing).
func (t *Target) readRegisters(tid int, dst []byte) error {
	if tid <= 0 {
		tid = t.last.Thread
	}
	if t.cacheValid(tid) && len(dst) == len(t.cache) {
		copy(dst, t.cache)
		return nil
	}
	if err := t.selectThread(tid); err != nil {
		return err
	}
	g, err := t.c.ReadRegisters()
	if err != nil {
		return t.check(fmt.Errorf("qemu: read registers: %w", err))
	}
	t.mapRegisters(dst, g)
	t.cache = append(t.cache[:0], dst...)
	t.cacheTID = t.gsel
	return nil
}

// mapRegisters rearranges QEMU's `g` block g into our layout in dst.
func (t *Target) mapRegisters(dst, g []byte) {
	clear(dst)
	for i, j := range t.regmap {
		if j < 0 {
			continue
		}
		r, q := &t.desc.Registers[i], &t.qdesc.Registers[j]
		if q.Offset+q.Size() > len(g) || r.Offset+r.Size() > len(dst) {
			continue
		}
		copy(dst[r.Offset:r.Offset+r.Size()], g[q.Offset:q.Offset+q.Size()])
	}
}

// writeRegisters implements rsp.Target: QEMU's block is read, patched
// and written back with one `G`.
func (t *Target) writeRegisters(tid int, src []byte) error {
	if err := t.selectThread(tid); err != nil {
		return err
	}
	g, err := t.c.ReadRegisters()
	if err != nil {
		return t.check(fmt.Errorf("qemu: read registers: %w", err))
	}
	for i, j := range t.regmap {
		if j < 0 {
			continue
		}
		r, q := &t.desc.Registers[i], &t.qdesc.Registers[j]
		if q.Offset+q.Size() > len(g) || r.Offset+r.Size() > len(src) {
			continue
		}
		n := copy(g[q.Offset:q.Offset+q.Size()], src[r.Offset:r.Offset+r.Size()])
		clear(g[q.Offset+n : q.Offset+q.Size()])
	}
	t.invalidate()
	t.gen++ // a new gs_base or rip may name other modules
	if _, err := t.c.Request("G" + hex.EncodeToString(g)); err != nil {
		return t.check(fmt.Errorf("qemu: write registers: %w", err))
	}
	return nil
}

// readRegister implements rsp.Target, from the register cache (filled
// by one `g`). A register QEMU does not have reads as zero.
func (t *Target) readRegister(tid int, regnum int, dst []byte) error {
	if regnum < 0 || regnum >= len(t.regmap) {
		return fmt.Errorf("qemu: no register %d", regnum)
	}
	r := &t.desc.Registers[regnum]
	if len(dst) != r.Size() {
		return fmt.Errorf("qemu: register %s has %d bytes, not %d", r.Name, r.Size(), len(dst))
	}
	if tid <= 0 {
		tid = t.last.Thread
	}
	if !t.cacheValid(tid) {
		if cap(t.fill) < t.desc.Size() {
			t.fill = make([]byte, t.desc.Size())
		}
		if err := t.readRegisters(tid, t.fill[:t.desc.Size()]); err != nil {
			return err
		}
	}
	copy(dst, t.cache[r.Offset:r.Offset+r.Size()])
	return nil
}

// cacheValid reports whether the cache holds this stop's registers of
// tid (tid <= 0 only when no thread is known yet).
func (t *Target) cacheValid(tid int) bool {
	return t.cacheTID != 0 && (tid <= 0 || tid == t.cacheTID) && len(t.cache) == t.desc.Size()
}

// invalidate drops the register cache, and the memory cache with it:
// the guest ran, or a register that translates addresses may have
// changed.
func (t *Target) invalidate() {
	t.cacheTID = 0
	t.mem.drop()
}

// writeRegister implements rsp.Target.
func (t *Target) writeRegister(tid int, regnum int, src []byte) error {
	if regnum < 0 || regnum >= len(t.regmap) {
		return fmt.Errorf("qemu: no register %d", regnum)
	}
	j := t.regmap[regnum]
	if j < 0 {
		if t.desc.Registers[regnum].Name == "orig_rax" {
			// GDB's Linux ABI writes -1 there with every PC change (no
			// syscall restart); QEMU keeps no such register.
			return nil
		}
		return fmt.Errorf("qemu: QEMU has no register %s", t.desc.Registers[regnum].Name)
	}
	if err := t.selectThread(tid); err != nil {
		return err
	}
	t.invalidate()
	t.gen++
	q := &t.qdesc.Registers[j]
	if q.Size() == len(src) {
		return t.check(t.c.WriteRegister(j, src))
	}
	var tmp [64]byte
	if q.Size() > len(tmp) {
		return fmt.Errorf("qemu: register %s has %d bytes", q.Name, q.Size())
	}
	copy(tmp[:q.Size()], src)
	return t.check(t.c.WriteRegister(j, tmp[:q.Size()]))
}

// reg64 reads a register of up to 64 bits of thread tid by our regnum.
func (t *Target) reg64(tid, regnum int) (uint64, error) {
	var b [8]byte
	n := t.desc.Registers[regnum].Size()
	if n > 8 {
		return 0, fmt.Errorf("qemu: register %s is not an integer", t.desc.Registers[regnum].Name)
	}
	if err := t.readRegister(tid, regnum, b[:n]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// ---- memory

// readMemory implements rsp.Target. QEMU fails a read that crosses into
// unmapped memory as a whole; the client narrows it down to the
// readable prefix. In system mode addresses are virtual, translated by
// the selected vCPU's page tables.
func (t *Target) readMemory(addr uint64, p []byte) (int, error) {
	if t.gone.Load() {
		return 0, ErrGone
	}
	if t.readCached(addr, p) {
		return len(p), nil
	}
	n, err := t.c.ReadMemory(addr, p)
	if err != nil {
		err = t.check(err)
		if n > 0 && !t.gone.Load() {
			return n, nil
		}
		return n, err
	}
	return n, nil
}

// writeMemory implements rsp.Target (QEMU has no `X`: the client uses
// `M`).
func (t *Target) writeMemory(addr uint64, p []byte) (int, error) {
	if t.gone.Load() {
		return 0, ErrGone
	}
	t.mem.drop()
	if err := t.c.WriteMemory(addr, p); err != nil {
		if !t.unprotect(addr, uint64(len(p))) {
			return 0, t.check(fmt.Errorf("qemu: write %d bytes at %#x: %w", len(p), addr, err))
		}
		if err := t.c.WriteMemory(addr, p); err != nil {
			return 0, t.check(fmt.Errorf("qemu: write %d bytes at %#x: %w", len(p), addr, err))
		}
	}
	t.gen++ // the loader's structures may have changed
	for i := range t.soft {
		t.soft[i].refresh(t) // a debugger's own write is not a guest write
	}
	return len(p), nil
}

// ---- process

// processInfo implements rsp.ProcessInfoer.
func (t *Target) processInfo() rsp.ProcessInfo {
	if t.mode == ModeUser {
		pid := 1
		if len(t.threads) > 0 {
			pid = t.threads[0]
		}
		return rsp.ProcessInfo{PID: pid, Triple: "x86_64-unknown-linux-gnu", OSType: "linux", Vendor: "unknown"}
	}
	return rsp.ProcessInfo{PID: 1, Triple: "x86_64-unknown-none", OSType: "none", Vendor: "unknown"}
}

// kill implements rsp.Killer: QEMU exits on `k`.
func (t *Target) kill() error {
	if t.gone.Load() {
		return nil
	}
	err := t.c.Kill()
	t.gone.Store(true)
	t.last = rsp.Stop{Kind: rsp.StopTerminated, Signal: rsp.SIGKILL}
	if isConnErr(err) {
		err = nil
	}
	return err
}

// detach implements rsp.Detacher: a debugger left, so the breakpoints
// and watchpoints it set are removed from QEMU. The guest stays stopped
// for the next debugger.
func (t *Target) detach() error {
	if t.gone.Load() {
		return nil
	}
	return t.dropBreakpoints()
}

func (t *Target) dropBreakpoints() error {
	var first error
	for k := range t.bps {
		for n := t.bps[k]; n > 0; n-- {
			if err := t.c.RemoveBreakpoint(k.kind, k.addr, k.size); err != nil && first == nil {
				first = t.check(err)
			}
		}
		delete(t.bps, k)
	}
	t.soft = t.soft[:0]
	return first
}
