package rsp

import (
	"strconv"
	"strings"
)

// features holds the optional interfaces a target implements, found once
// by type assertion. Both the qSupported reply and the dispatch table are
// computed from it, so they cannot disagree.
type features struct {
	bp        Breakpointer
	bpKinds   [5]bool
	rangeStep RangeStepper
	threads   ThreadLister
	mm        MemoryMapper
	fixedMap  bool // mm is a FixedMemoryMapper: qXfer:memory-map is served
	libs      LibraryLister
	svr4      SVR4LibraryLister
	exec      ExecFiler
	auxv      AuxvReader
	files     FileServer
	fileLoad  FileLoadAddresser
	tib       TIBer
	monitor   Monitor
	tmonitor  ThreadMonitor
	proc      ProcessInfoer
	kill      Killer
	detach    Detacher
	console   Consoler
	offsets   Offsetter
	reverse   Reverser
	alloc     MemoryAllocator
	restart   Restarter
	syscalls  SyscallCatcher
	regHolder RegisterHolder
	view      MemoryViewer
}

// maxUnwrap bounds the chain of wrappers discover follows.
const maxUnwrap = 8

// As returns the first target in t's Unwrap chain (t itself first) that
// implements the optional interface I, as the server finds it: a
// wrapper's own methods win over the target it wraps. FeatureGates are
// not asked.
func As[I any](t Target) (I, bool) {
	for range maxUnwrap {
		if t == nil {
			break
		}
		if i, ok := t.(I); ok {
			return i, true
		}
		u, ok := t.(Unwrapper)
		if !ok {
			break
		}
		t = u.Unwrap()
	}
	var zero I
	return zero, false
}

// offers asks every FeatureGate in t's Unwrap chain: a feature is offered
// only when none withholds it.
func offers(t Target, f Feature) bool {
	for range maxUnwrap {
		if t == nil {
			break
		}
		if g, ok := t.(FeatureGate); ok && !g.Offers(f) {
			return false
		}
		u, ok := t.(Unwrapper)
		if !ok {
			break
		}
		t = u.Unwrap()
	}
	return true
}

// discoverOne fills *p with the first implementation of I in t's Unwrap
// chain, unless a FeatureGate withholds gate ("" is never withheld).
func discoverOne[I any](p *I, t Target, gate Feature) {
	if gate != "" && !offers(t, gate) {
		return
	}
	*p, _ = As[I](t)
}

func discover(t Target) features {
	var f features
	discoverOne(&f.bp, t, "")
	if f.bp != nil {
		for k := range f.bpKinds {
			f.bpKinds[k] = f.bp.SupportsBreakpoint(BreakKind(k))
		}
	}
	discoverOne(&f.rangeStep, t, "")
	discoverOne(&f.threads, t, "")
	discoverOne(&f.mm, t, "")
	_, f.fixedMap = As[FixedMemoryMapper](t)
	discoverOne(&f.libs, t, FeatureLibraries)
	discoverOne(&f.exec, t, FeatureExecFile)
	discoverOne(&f.auxv, t, FeatureAuxv)
	discoverOne(&f.files, t, FeatureFiles)
	discoverOne(&f.fileLoad, t, "")
	discoverOne(&f.tib, t, FeatureTIB)
	discoverOne(&f.monitor, t, "")
	discoverOne(&f.tmonitor, t, "")
	discoverOne(&f.proc, t, "")
	discoverOne(&f.kill, t, "")
	discoverOne(&f.detach, t, "")
	discoverOne(&f.console, t, "")
	discoverOne(&f.offsets, t, "")
	discoverOne(&f.reverse, t, FeatureReverse)
	discoverOne(&f.alloc, t, FeatureMemoryAllocator)
	discoverOne(&f.restart, t, "")
	discoverOne(&f.svr4, t, FeatureLibrariesSVR4)
	discoverOne(&f.syscalls, t, FeatureCatchSyscalls)
	discoverOne(&f.regHolder, t, "")
	discoverOne(&f.view, t, "")
	return f
}

func (f *features) anyBreakpoint() bool {
	for _, k := range f.bpKinds {
		if k {
			return true
		}
	}
	return false
}

// supported is the fixed part of the qSupported reply.
func (f *features) supported(packetSize int) string {
	var b strings.Builder
	b.WriteString("PacketSize=")
	b.WriteString(strconv.FormatInt(int64(packetSize), 16))
	b.WriteString(";QStartNoAckMode+;qXfer:features:read+;qXfer:threads:read+;vContSupported+")
	b.WriteString(";QThreadSuffixSupported+;QListThreadsInStopReply+")
	if f.bpKinds[BreakSoftware] {
		// Conditions are evaluated by the server for any target.
		b.WriteString(";swbreak+;ConditionalBreakpoints+")
	}
	if f.bpKinds[BreakHardware] {
		b.WriteString(";hwbreak+")
	}
	if f.libs != nil {
		b.WriteString(";qXfer:libraries:read+")
	}
	if f.svr4 != nil {
		b.WriteString(";qXfer:libraries-svr4:read+")
	}
	if f.syscalls != nil {
		b.WriteString(";QCatchSyscalls+")
	}
	if f.fixedMap {
		b.WriteString(";qXfer:memory-map:read+")
	}
	if f.exec != nil {
		b.WriteString(";qXfer:exec-file:read+")
	}
	if f.auxv != nil {
		b.WriteString(";qXfer:auxv:read+")
	}
	if f.reverse != nil {
		b.WriteString(";ReverseStep+;ReverseContinue+")
	}
	return b.String()
}

// handler handles one packet; args is what follows the packet name (and
// its separator). It returns nil after replying, or an error for finish.
type handler func(s *session, args []byte) error

// dispatch maps packet names to handlers. One-letter packets are indexed
// by their letter; the others by their name up to the first ':', ',' or
// ';'.
type dispatch struct {
	letters [128]handler
	named   map[string]handler
}

func buildDispatch(f *features) dispatch {
	var d dispatch
	d.named = map[string]handler{}
	set := func(c byte, h handler) { d.letters[c] = h }
	set('?', (*session).handleQuestion)
	set('g', (*session).handleg)
	set('G', (*session).handleG)
	set('p', (*session).handlep)
	set('P', (*session).handleP)
	set('m', (*session).handlem)
	set('M', (*session).handleM)
	set('X', (*session).handleX)
	set('x', (*session).handlex)
	set('c', (*session).handlec)
	set('C', (*session).handleC)
	set('s', (*session).handles)
	set('S', (*session).handleS)
	set('H', (*session).handleH)
	set('T', (*session).handleT)
	set('D', (*session).handleD)
	if f.kill != nil {
		set('k', (*session).handlek)
		d.named["vKill"] = (*session).handlevKill
	}
	if f.reverse != nil {
		set('b', (*session).handleb)
	}
	if f.restart != nil {
		set('!', (*session).handleBang)
		set('R', (*session).handleR)
		d.named["vRun"] = (*session).handlevRun
	}
	if f.anyBreakpoint() {
		set('Z', (*session).handleZ)
		set('z', (*session).handleZ)
	}
	n := d.named
	n["qSupported"] = (*session).handleqSupported
	n["QStartNoAckMode"] = (*session).handleQStartNoAckMode
	n["vCont?"] = (*session).handlevContQuery
	n["vCont"] = (*session).handlevCont
	n["qC"] = (*session).handleqC
	n["qfThreadInfo"] = (*session).handleqfThreadInfo
	n["qsThreadInfo"] = (*session).handleqsThreadInfo
	n["qThreadExtraInfo"] = (*session).handleqThreadExtraInfo
	n["qAttached"] = (*session).handleqAttached
	n["qSymbol"] = (*session).handleqSymbol
	n["qXfer"] = (*session).handleqXfer
	n["qHostInfo"] = (*session).handleqHostInfo
	n["QThreadSuffixSupported"] = (*session).handleQThreadSuffixSupported
	n["QListThreadsInStopReply"] = (*session).handleQListThreadsInStopReply
	n["QEnableErrorStrings"] = (*session).handleQEnableErrorStrings
	n["jThreadsInfo"] = (*session).handlejThreadsInfo
	n["qRegisterInfo"] = (*session).handleqRegisterInfo
	if f.offsets != nil {
		n["qOffsets"] = (*session).handleqOffsets
	}
	if f.mm != nil {
		n["qMemoryRegionInfo"] = (*session).handleqMemoryRegionInfo
	}
	if f.files != nil {
		n["vFile"] = (*session).handlevFile
	}
	if f.fileLoad != nil {
		n["qFileLoadAddress"] = (*session).handleqFileLoadAddress
	}
	if f.tib != nil {
		n["qGetTIBAddr"] = (*session).handleqGetTIBAddr
	}
	// qRcmd always: the stub answers "monitor stub-stats" itself.
	n["qRcmd"] = (*session).handleqRcmd
	if f.proc != nil {
		n["qProcessInfo"] = (*session).handleqProcessInfo
	}
	if f.syscalls != nil {
		n["QCatchSyscalls"] = (*session).handleQCatchSyscalls
	}
	if f.alloc != nil {
		// LLDB asks without a qSupported feature; the number is glued to
		// the name (_M1000,rwx), see dispatch.
		n["_M"] = (*session).handle_M
		n["_m"] = (*session).handle_m
	}
	return d
}

// xferObjects says which qXfer objects are readable, from the same
// features.
func (f *features) xferReadable(object string) bool {
	switch object {
	case "features", "threads":
		return true
	case "libraries":
		return f.libs != nil
	case "libraries-svr4":
		return f.svr4 != nil
	case "memory-map":
		return f.fixedMap
	case "exec-file":
		return f.exec != nil
	case "auxv":
		return f.auxv != nil
	}
	return false
}

// dispatch finds and runs the handler of pkt.
func (s *session) dispatch(pkt []byte) error {
	if len(pkt) == 0 {
		return errUnsupported
	}
	t := &s.srv.table
	c := pkt[0]
	switch c {
	case 'q', 'Q', 'v', 'j', '_':
		end := len(pkt)
		for i, b := range pkt {
			if b == ':' || b == ',' || b == ';' {
				end = i
				break
			}
		}
		if h := t.named[string(pkt[:end])]; h != nil {
			args := pkt[end:]
			if len(args) > 0 {
				args = args[1:]
			}
			if string(pkt[:end]) == "vCont" {
				args = pkt[end:] // keep the leading ';' of the first action
			}
			return h(s, args)
		}
		// qRegisterInfo<hex> has its argument glued to the name.
		if hasPrefix(pkt, "qRegisterInfo") {
			if h := t.named["qRegisterInfo"]; h != nil {
				return h(s, pkt[len("qRegisterInfo"):])
			}
		}
		if c == '_' && len(pkt) >= 2 {
			if h := t.named[string(pkt[:2])]; h != nil {
				return h(s, pkt[2:])
			}
		}
		if c == 'v' && hasPrefix(pkt, "vKill") {
			if h := t.named["vKill"]; h != nil {
				return h(s, nil)
			}
		}
		return errUnsupported
	}
	if c < 128 {
		if h := t.letters[c]; h != nil {
			return h(s, pkt[1:])
		}
	}
	return errUnsupported
}
