package ucwin

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/rspstub/rspstub/emulator/unicorn"
	"github.com/rspstub/rspstub/guest/wine"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/peimage"
	"github.com/rspstub/rspstub/rsp"
)

// API catch points and the API trace work the same way in both
// userlands, by breakpoints the target sets for itself (the client never
// sees them): one at each hooked function's entry, where the arguments
// are in RCX, RDX, R8, R9 and on the stack, and, while a traced call is
// in flight, one at its return address, where RAX is the result and RSP
// is the entry's RSP + 8. The functions hooked are those the program's
// own modules (the .exe and DLLs that are not system DLLs) import: the
// targets of their import address tables, named as imported
// (KERNEL32.dll!WriteFile), so the trace shows what the program called,
// not what the system DLLs call each other. That covers the synthesized
// userland's native functions (guest code without a trap) as well as its
// trap stubs and Wine's real DLL code. A catch point also hooks the
// address its name resolves to (a function reached through
// GetProcAddress).
//
// In the Wine userland the import tables are written by ntdll's loader
// while the program starts, so they are read again when the module list
// changes and at the program's entry point. System calls are reported
// by the kernel (wine.Process.SetSyscallHook, CatchSyscalls).

// Bounds: a corrupt import directory must not make a scan read forever.
const (
	maxImportsScanned = 65536 // in one module
	maxPendingCalls   = 1024  // calls in flight per thread (deeper ones never returned)
	maxArgString      = 256
)

// APIRecord is one line of the API trace (--trace-api): a call the
// program made and its result, or a system call (Kind "syscall", in the
// Wine userland).
type APIRecord struct {
	Seq    uint64 `json:"seq"`
	Kind   string `json:"kind"` // "api" or "syscall"
	Thread uint32 `json:"thread"`
	// Caller is the return address as module!symbol+offset.
	Caller string `json:"caller"`
	API    string `json:"api"`
	Args   []Arg  `json:"args"`
	// Ret is RAX at the return (hex); null when the call never returned
	// (ExitProcess, a longjmp or exception past it).
	Ret *string `json:"ret"`
	// Status and Info: a system call's NTSTATUS and the arguments the
	// kernel decoded.
	Status string   `json:"status,omitempty"`
	Info   []string `json:"info,omitempty"`
}

// Arg is one decoded argument: its name from the prototype table
// (a0, a1... for functions it lacks), its value, and the string it
// points at for string parameters.
type Arg struct {
	Name  string  `json:"name"`
	Value string  `json:"value"`
	Str   *string `json:"str,omitempty"`
}

// CatchPoint is a monitor catch point.
type CatchPoint struct {
	ID   int
	Kind string // "api" or "syscall"
	Name string
	Hits int
	Last string // the last hit, as its stop showed it
}

// hooks is the state of the catch points and the trace. catches and the
// trace outlive a restart; the rest belongs to one run (reset by
// installHooks).
type hooks struct {
	trace   *apiTrace
	catches []*CatchPoint
	nextID  int

	entries map[uint64]*entryHook
	rets    map[uint64]int  // return breakpoints: calls in flight returning there
	armed   map[uint64]bool // machine breakpoints this file set
	pending map[uint32][]pendingCall
	gen     uint64            // module list generation at the last scan (wine)
	nmods   int               // module count at the last scan (synth)
	user    []module          // the program's own modules: the callers traced
	names   map[uint64]string // callers already named
	// handled is the address whose hooks ran at the current stop (a
	// step that ends there must not run them again).
	handled      uint64
	handledValid bool
}

type entryHook struct {
	api     string
	trace   bool
	rescan  bool // the program's entry point: read the import tables again
	catches []*CatchPoint
}

type pendingCall struct {
	ret, rsp uint64
	rec      *APIRecord
}

// apiTrace writes the JSON lines.
type apiTrace struct {
	w   *bufio.Writer
	enc *json.Encoder
	seq uint64
	err error
}

func newAPITrace(w io.Writer) *apiTrace {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &apiTrace{w: bw, enc: enc}
}

func (a *apiTrace) emit(r *APIRecord) {
	if a.err == nil {
		a.err = a.enc.Encode(r)
	}
}

func (a *apiTrace) flush() {
	if a.err == nil {
		a.err = a.w.Flush()
	}
}

// emitTrace writes one trace line, unless a replay of a recording
// (timetravel.go) meets a call the trace already has.
func (t *Target) emitTrace(rec *APIRecord) {
	t.rec.mutated()
	if t.rec.traceShow() {
		t.hk.trace.emit(rec)
	}
}

// traceOn reports that this run traces API calls.
func (t *Target) traceOn() bool { return t.hk != nil && t.hk.trace != nil }

// installHooks sets this run's hooks (New, Restart): the trace's, and the
// catch points'.
func (t *Target) installHooks() {
	if t.hk == nil {
		if t.cfg.TraceAPI == nil {
			return
		}
		t.hk = &hooks{trace: newAPITrace(t.cfg.TraceAPI)}
	}
	h := t.hk
	h.entries, h.rets, h.armed = map[uint64]*entryHook{}, map[uint64]int{}, map[uint64]bool{}
	h.pending = map[uint32][]pendingCall{}
	h.names = map[uint64]string{}
	h.gen, h.nmods = 0, 0
	if t.wine != nil {
		t.wine.SetSyscallHook(nil)
		if h.trace != nil {
			t.wine.SetSyscallHook(t.traceSyscall)
		}
		t.wine.CatchSyscalls(h.catchNames("syscall"))
		if !t.exited {
			t.addEntry(t.wine.EntryPoint()).rescan = true
		}
	}
	t.rescanHooks(true)
}

func (h *hooks) catchNames(kind string) []string {
	var out []string
	for _, c := range h.catches {
		if c.Kind == kind {
			out = append(out, c.Name)
		}
	}
	return out
}

// curThread is the thread running in the machine.
func (t *Target) curThread() uint32 {
	if t.wine != nil {
		return t.wine.CurrentThread()
	}
	return ThreadID
}

func (t *Target) addEntry(addr uint64) *entryHook {
	h := t.hk
	e := h.entries[addr]
	if e == nil {
		e = &entryHook{}
		h.entries[addr] = e
	}
	t.arm(addr)
	return e
}

// arm sets a machine breakpoint for the hooks at addr (once).
func (t *Target) arm(addr uint64) {
	h := t.hk
	if h.armed[addr] {
		return
	}
	if err := t.m.AddBreakpoint(addr, false); err == nil {
		h.armed[addr] = true
	}
}

// disarm removes the hooks' breakpoint at addr when no hook needs it and
// the client has none there.
func (t *Target) disarm(addr uint64) {
	h := t.hk
	if !h.armed[addr] || h.entries[addr] != nil || h.rets[addr] > 0 {
		return
	}
	delete(h.armed, addr)
	if _, client := t.breaks[breakKey{rsp.BreakSoftware, addr, 1}]; !client {
		t.m.RemoveBreakpoint(addr, false)
	}
}

// hookArmed reports that the hooks hold the machine breakpoint at addr
// (the client's removal of its own there must leave it).
func (t *Target) hookArmed(addr uint64) bool { return t.hk != nil && t.hk.armed[addr] }

// rescanHooks hooks the imports of the program's modules and resolves
// the catch points, when the module list changed since the last scan
// (always with force).
func (t *Target) rescanHooks(force bool) {
	h := t.hk
	if h == nil || t.exited {
		return
	}
	if t.wine != nil {
		g := t.wine.ModuleGeneration()
		if !force && g == h.gen {
			return
		}
		h.gen = g
	} else {
		n := len(t.proc.Modules())
		if !force && n == h.nmods {
			return
		}
		h.nmods = n
	}
	var apis []*CatchPoint
	for _, c := range h.catches {
		if c.Kind == "api" {
			apis = append(apis, c)
		}
	}
	h.user = h.user[:0]
	for _, m := range t.modules() {
		if m.Synthetic || isSystemPath(m.Path) {
			continue
		}
		h.user = append(h.user, m)
		t.scanImports(m, func(dll, fn string, target uint64) {
			api := dll + "!" + fn
			var cs []*CatchPoint
			for _, c := range apis {
				if apiMatches(c.Name, dll, fn) {
					cs = append(cs, c)
				}
			}
			if h.trace == nil && len(cs) == 0 {
				return
			}
			e := t.addEntry(target)
			if e.api == "" {
				e.api = api
			}
			e.trace = h.trace != nil
			e.catches = addCatches(e.catches, cs)
		})
	}
	for _, c := range apis {
		addr, err := t.resolveSymbol(c.Name)
		if err != nil || !t.executable(addr) {
			continue
		}
		e := t.addEntry(addr)
		if e.api == "" {
			e.api = c.Name
			if loc := t.symbolize(addr); loc != "" {
				e.api = loc
			}
		}
		e.catches = addCatches(e.catches, []*CatchPoint{c})
	}
}

func addCatches(have, add []*CatchPoint) []*CatchPoint {
outer:
	for _, c := range add {
		for _, d := range have {
			if d == c {
				continue outer
			}
		}
		have = append(have, c)
	}
	return have
}

// isSystemPath reports a module of Windows' own folder.
func isSystemPath(p string) bool {
	return strings.HasPrefix(strings.ToLower(strings.ReplaceAll(p, "/", `\`)), `c:\windows\`)
}

// apiMatches reports whether a catch name (FUNC or DLL!FUNC, the DLL
// with or without .dll) names the import dll!fn.
func apiMatches(name, dll, fn string) bool {
	d, f, ok := strings.Cut(name, "!")
	if !ok {
		return f == "" && strings.EqualFold(d, fn) || strings.EqualFold(name, fn)
	}
	if !strings.EqualFold(f, fn) {
		return false
	}
	trim := func(s string) string { return strings.TrimSuffix(strings.ToLower(s), ".dll") }
	return trim(d) == trim(dll)
}

// executable reports that addr is in executable guest memory.
func (t *Target) executable(addr uint64) bool {
	for _, r := range t.m.Regions() {
		if addr >= r.Start && addr-r.Start < r.Size {
			return r.Perm&arch.PermExec != 0
		}
	}
	return false
}

// scanImports calls fn for every bound import of the module in memory:
// the DLL's name, the function's (or #ordinal) and the address its
// import address table holds. Entries not bound yet (not inside a
// loaded module) are left out.
func (t *Target) scanImports(m module, fn func(dll, name string, target uint64)) {
	f, err := peimage.ReadNTHeaders(t.m, m.Base)
	if err != nil {
		return
	}
	imps, _ := f.ReadImports(t.m, m.Base, m.Size) // what was read before an error
	mods := t.modules()
	loaded := func(a uint64) bool {
		for _, x := range mods {
			if a >= x.Base && a-x.Base < x.Size && x.Base != m.Base {
				return true
			}
		}
		return false
	}
	scanned := 0
	for _, imp := range imps {
		for _, fi := range imp.Functions {
			if scanned++; scanned > maxImportsScanned {
				return
			}
			target, ok := t.readU64(m.Base + uint64(fi.Slot))
			if !ok || !loaded(target) {
				continue
			}
			fname := fi.Name
			if fi.ByOrdinal {
				fname = fmt.Sprintf("#%d", fi.Ordinal)
			}
			if fname == "" {
				continue
			}
			fn(imp.Name, fname, target)
		}
	}
}

func (t *Target) readU64(addr uint64) (uint64, bool) {
	var b [8]byte
	n, _ := t.m.ReadMemory(addr, b[:])
	return binary.LittleEndian.Uint64(b[:]), n == 8
}

// guestString reads a NUL-terminated string (UTF-16 when wide) of at
// most max units; complete is false when it was cut.
func (t *Target) guestString(addr uint64, max int, wide bool) (s string, complete bool) {
	unit := 1
	if wide {
		unit = 2
	}
	r := t.dumpRange(addr, max*unit)
	b := r.Data
	if !wide {
		if i := strings.IndexByte(string(b), 0); i >= 0 {
			return string(b[:i]), true
		}
		return string(b), false
	}
	var u []uint16
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			return string(utf16Decode(u)), true
		}
		u = append(u, c)
	}
	return string(utf16Decode(u)), false
}

// hookStop handles a machine breakpoint at pc. handled is false when the
// hooks did not set it; otherwise st is the stop to report (a catch
// point, or the client's own breakpoint at the same address) or nil to
// run on.
func (t *Target) hookStop(us unicorn.Stop) (st *rsp.Stop, handled bool) {
	pc := us.PC
	if us.Reason != unicorn.StopBreakpoint || !t.hookArmed(pc) {
		return nil, false
	}
	h := t.hk
	h.handled, h.handledValid = pc, true
	tid := t.curThread()
	sp, _ := t.m.Reg(arch.RSP)
	if h.rets[pc] > 0 {
		rax, _ := t.m.Reg(arch.RAX)
		t.hookReturn(tid, pc, sp, rax)
	}
	if e := h.entries[pc]; e != nil {
		if e.rescan {
			t.rescanHooks(true)
		}
		traced := e.trace && h.trace != nil && t.fromProgram(sp)
		if e.api != "" && (traced || len(e.catches) > 0) {
			rec := t.apiEntry(e.api, tid, sp)
			if traced {
				t.pushCall(tid, rec, sp)
			}
			for _, c := range e.catches {
				c.Hits++
				c.Last = describeCall(rec)
				if st == nil {
					s := t.stop(rsp.StopSignal, rsp.SIGTRAP)
					s.Description = fmt.Sprintf("catch %d: api %s", c.ID, c.Last)
					st = &s
				}
			}
		}
	}
	if st == nil {
		if kind, ok := t.breakAt(pc); ok {
			s := t.stop(kind, rsp.SIGTRAP)
			st = &s
		}
	}
	return st, true
}

// hooksBeforeRun forgets the last stop's hooks (a run is starting).
func (t *Target) hooksBeforeRun() {
	if t.hk != nil {
		t.hk.handledValid = false
	}
}

// stepLanded runs the hooks of the address a step ended on: the machine
// reports no breakpoint for it, and the next run starts there past it.
// A catch point's text is added to the step's stop.
func (t *Target) stepLanded(st *rsp.Stop) {
	h := t.hk
	if h == nil || st.Kind == rsp.StopExited || st.Kind == rsp.StopTerminated {
		return
	}
	pc, err := t.m.Reg(arch.RIP)
	if err != nil || !h.armed[pc] || (h.handledValid && h.handled == pc) {
		return
	}
	if s, _ := t.hookStop(unicorn.Stop{Reason: unicorn.StopBreakpoint, PC: pc}); s != nil && s.Description != "" && st.Description == "" {
		st.Description = s.Description
	}
}

// fromProgram reports that the call whose entry RSP is sp returns into
// one of the program's own modules (the trace leaves out what system
// DLLs call).
func (t *Target) fromProgram(sp uint64) bool {
	ret, ok := t.readU64(sp)
	if !ok {
		return false
	}
	for _, m := range t.hk.user {
		if ret >= m.Base && ret-m.Base < m.Size {
			return true
		}
	}
	return false
}

// apiEntry decodes a call at its entry (RSP at the return address).
func (t *Target) apiEntry(api string, tid uint32, sp uint64) *APIRecord {
	ret, _ := t.readU64(sp)
	rec := &APIRecord{Kind: "api", Thread: tid, API: api, Caller: t.callerName(ret)}
	_, fn, ok := strings.Cut(api, "!")
	if !ok {
		fn = api
	}
	params := paramsOf(fn)
	var regs [4]uint64
	for i, r := range []arch.Reg{arch.RCX, arch.RDX, arch.R8, arch.R9} {
		regs[i], _ = t.m.Reg(r)
	}
	arg := func(i int) uint64 {
		if i < 4 {
			return regs[i]
		}
		v, _ := t.readU64(sp + 8 + 8*uint64(i))
		return v
	}
	rec.Args = make([]Arg, 0, len(params))
	for i, p := range params {
		a := t.decodeArg(p, arg(i))
		if p.kind == 'b' && i+1 < len(params) {
			// A buffer whose length is the next argument.
			if v, n := arg(i), uint32(arg(i+1)); v >= 0x10000 && n > 0 {
				r := t.dumpRange(v, int(min(n, maxArgString)))
				s := string(r.Data)
				if int(n) > len(r.Data) {
					s += "..."
				}
				a.Str = &s
			}
		}
		rec.Args = append(rec.Args, a)
	}
	return rec
}

// callerName is symbolizeOr, remembered per address for the run (a
// trace names the same few call sites again and again).
func (t *Target) callerName(pc uint64) string {
	h := t.hk
	if s, ok := h.names[pc]; ok {
		return s
	}
	s := t.symbolizeOr(pc)
	if len(h.names) < 1<<16 {
		h.names[pc] = s
	}
	return s
}

func (t *Target) symbolizeOr(pc uint64) string {
	if s := t.symbolize(pc); s != "" {
		return s
	}
	for _, m := range t.modules() {
		if pc >= m.Base && pc-m.Base < m.Size {
			return fmt.Sprintf("%s+%#x", m.Name, pc-m.Base)
		}
	}
	return fmt.Sprintf("%#x", pc)
}

// decodeArg renders one argument by its parameter kind.
func (t *Target) decodeArg(p param, v uint64) Arg {
	a := Arg{Name: p.name}
	switch p.kind {
	case 'd':
		a.Value = fmt.Sprint(uint32(v))
	case 'i':
		a.Value = fmt.Sprint(int32(v))
	case 'u':
		a.Value = fmt.Sprint(v)
	case 's', 'w':
		a.Value = fmt.Sprintf("%#x", v)
		if v >= 0x10000 { // below: NULL, an ordinal or an atom
			if s, complete := t.guestString(v, maxArgString, p.kind == 'w'); complete || s != "" {
				if !complete {
					s += "..."
				}
				a.Str = &s
			}
		}
	default:
		a.Value = fmt.Sprintf("%#x", v)
	}
	return a
}

// describeCall renders a call for a stop: API(name=value "str", ...)
// from caller.
func describeCall(r *APIRecord) string {
	var b strings.Builder
	b.WriteString(r.API + "(")
	for i, a := range r.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.Name + "=" + a.Value)
		if a.Str != nil {
			s := *a.Str
			if len(s) > 80 {
				s = s[:80] + "..."
			}
			fmt.Fprintf(&b, " %q", s)
		}
	}
	b.WriteString(") from " + r.Caller)
	if r.Ret != nil {
		b.WriteString(" = " + *r.Ret)
	}
	return b.String()
}

// pushCall records a traced call in flight and arms its return.
func (t *Target) pushCall(tid uint32, rec *APIRecord, sp uint64) {
	h := t.hk
	t.rec.mutated()
	h.trace.seq++
	rec.Seq = h.trace.seq
	ret, ok := t.readU64(sp)
	if !ok {
		t.emitTrace(rec)
		return
	}
	stack := h.pending[tid]
	if len(stack) >= maxPendingCalls {
		t.endCall(stack[0], nil)
		stack = stack[1:]
	}
	h.pending[tid] = append(stack, pendingCall{ret: ret, rsp: sp, rec: rec})
	h.rets[ret]++
	t.arm(ret)
}

// hookReturn ends the call of thread tid that returns to pc with RSP sp
// (its entry RSP + 8), and the deeper ones that never returned.
func (t *Target) hookReturn(tid uint32, pc, sp, rax uint64) {
	h := t.hk
	stack := h.pending[tid]
	for i := len(stack) - 1; i >= 0; i-- {
		if stack[i].ret != pc || stack[i].rsp+8 != sp {
			continue
		}
		for j := len(stack) - 1; j > i; j-- {
			t.endCall(stack[j], nil)
		}
		v := fmt.Sprintf("%#x", rax)
		t.endCall(stack[i], &v)
		h.pending[tid] = stack[:i]
		return
	}
}

// endCall writes a call's line and drops its return breakpoint.
func (t *Target) endCall(p pendingCall, ret *string) {
	h := t.hk
	p.rec.Ret = ret
	t.emitTrace(p.rec)
	if h.rets[p.ret]--; h.rets[p.ret] <= 0 {
		delete(h.rets, p.ret)
		t.disarm(p.ret)
	}
}

// hooksEnded writes the calls still in flight when the process ends
// (ExitProcess never returns) and flushes the trace.
func (t *Target) hooksEnded() {
	h := t.hk
	if h == nil || h.trace == nil {
		return
	}
	tids := make([]uint32, 0, len(h.pending))
	for tid := range h.pending {
		tids = append(tids, tid)
	}
	sort.Slice(tids, func(i, j int) bool { return tids[i] < tids[j] })
	for _, tid := range tids {
		stack := h.pending[tid]
		for j := len(stack) - 1; j >= 0; j-- {
			p := stack[j]
			p.rec.Ret = nil
			t.emitTrace(p.rec)
		}
		delete(h.pending, tid)
	}
	h.trace.flush()
}

// traceSyscall is the Wine kernel's hook: one line per system call.
func (t *Target) traceSyscall(r *wine.SyscallRecord) {
	h := t.hk
	if h == nil || h.trace == nil {
		return
	}
	h.trace.seq++
	rec := &APIRecord{Seq: h.trace.seq, Kind: "syscall", Thread: r.Thread, API: r.Name,
		Caller: t.callerName(r.Caller), Status: r.StatusName, Info: r.Info}
	ret := fmt.Sprintf("%#x", r.Status)
	rec.Ret = &ret
	for i, a := range r.Args {
		rec.Args = append(rec.Args, Arg{Name: fmt.Sprintf("a%d", i), Value: fmt.Sprintf("%#x", a)})
	}
	t.emitTrace(rec)
}

// caughtSyscall turns a caught system call into the stop to report.
func (t *Target) caughtSyscall() (rsp.Stop, bool) {
	if t.wine == nil || t.hk == nil {
		return rsp.Stop{}, false
	}
	r, ok := t.wine.TakeCaught()
	if !ok {
		return rsp.Stop{}, false
	}
	id := 0
	last := fmt.Sprintf("%s from %s", wine.FormatSyscall(r), t.symbolizeOr(r.Caller))
	for _, c := range t.hk.catches {
		if c.Kind == "syscall" && c.Name == r.Name {
			c.Hits++
			c.Last = last
			if id == 0 {
				id = c.ID
			}
		}
	}
	st := t.stop(rsp.StopSignal, rsp.SIGTRAP)
	st.Thread = int(r.Thread)
	st.Description = fmt.Sprintf("catch %d: syscall %s (thread %d)", id, last, r.Thread)
	return st, true
}

// Catch adds a catch point: kind "api" (a function, FUNC or DLL!FUNC,
// stopped at on entry with its arguments decoded) or "syscall" (a Wine
// system call, stopped at when it returns, with its arguments and
// status).
func (t *Target) Catch(kind, name string) (*CatchPoint, error) {
	if name == "" {
		return nil, errors.New("catch: no name given")
	}
	switch kind {
	case "api":
	case "syscall":
		if t.wine == nil {
			return nil, errors.New("catch syscall: the synth userland makes no system calls (its Win32 layer is Go code): use catch api")
		}
		if !t.wine.SyscallKnown(name) {
			return nil, fmt.Errorf("catch syscall: %s is not a system call of this Wine (names are Nt...: NtWriteFile)", name)
		}
	default:
		return nil, fmt.Errorf("catch: unknown kind %q (api or syscall)", kind)
	}
	if t.hk == nil {
		t.hk = &hooks{}
		t.installHooks()
	}
	h := t.hk
	h.nextID++
	c := &CatchPoint{ID: h.nextID, Kind: kind, Name: name}
	h.catches = append(h.catches, c)
	if kind == "syscall" {
		t.wine.CatchSyscalls(h.catchNames("syscall"))
	} else {
		t.rescanHooks(true)
	}
	return c, nil
}

// Catches lists the catch points.
func (t *Target) Catches() []CatchPoint {
	if t.hk == nil {
		return nil
	}
	out := make([]CatchPoint, len(t.hk.catches))
	for i, c := range t.hk.catches {
		out[i] = *c
	}
	return out
}

// CatchAddresses lists where an api catch point is set.
func (t *Target) CatchAddresses(id int) []uint64 {
	if t.hk == nil {
		return nil
	}
	var out []uint64
	for addr, e := range t.hk.entries {
		for _, c := range e.catches {
			if c.ID == id {
				out = append(out, addr)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// DeleteCatch removes catch point id (0: all of them).
func (t *Target) DeleteCatch(id int) error {
	h := t.hk
	if h == nil || len(h.catches) == 0 {
		return errors.New("catch delete: no catch points")
	}
	keep := h.catches[:0]
	found := false
	for _, c := range h.catches {
		if id == 0 || c.ID == id {
			found = true
			continue
		}
		keep = append(keep, c)
	}
	if !found {
		return fmt.Errorf("catch delete: no catch point %d", id)
	}
	h.catches = keep
	for addr, e := range h.entries {
		k := e.catches[:0]
		for _, c := range e.catches {
			if id != 0 && c.ID != id {
				k = append(k, c)
			}
		}
		e.catches = k
		if len(k) == 0 && !e.trace && !e.rescan {
			delete(h.entries, addr)
			t.disarm(addr)
		}
	}
	if t.wine != nil {
		t.wine.CatchSyscalls(h.catchNames("syscall"))
	}
	return nil
}
