package unwind

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/rspstub/rspstub/internal/arch"
)

// A three-function program:
//
//	main  [0x1000,0x1020): push rbx; sub rsp,0x20; ...; call f at 0x1008 (returns to 0x100d)
//	f     [0x1100,0x1120): push rsi; push rdi; sub rsp,0x28; ...; call g at 0x1108 (returns to 0x110d)
//	g     [0x1200,0x1210): no .pdata entry (a leaf)
//
// main's return address is 0: the end of the thread.
func program(ib *imageBuilder) {
	ib.put(0x1000, []byte{
		0x53,                   // 00: push rbx
		0x48, 0x83, 0xec, 0x20, // 01: sub rsp, 0x20     (5)
		0x90, 0x90, 0x90, // 05: body
		0xe8, 0xf3, 0x00, 0x00, 0x00, // 08: call 0x1100
		0x90, // 0d: return address
	})
	ib.put(0x1100, []byte{
		0x56,                   // 00: push rsi
		0x57,                   // 01: push rdi
		0x48, 0x83, 0xec, 0x28, // 02: sub rsp, 0x28     (6)
		0x90, 0x90, // 06: body
		0xe8, 0xf3, 0x00, 0x00, 0x00, // 08: call 0x1200
		0x90, // 0d: return address
	})
	ib.put(0x1200, []byte{0x48, 0x89, 0xc8, 0xc3}) // g: mov rax, rcx; ret
	ib.put(xdataRVA, []byte{
		0x01, 0x05, 0x02, 0x00, // main: v1, prolog 5, 2 slots
		0x05, 0x32, // @5: UWOP_ALLOC_SMALL 0x20
		0x01, 0x30, // @1: UWOP_PUSH_NONVOL rbx
	})
	ib.put(xdataRVA+0x10, []byte{
		0x01, 0x06, 0x03, 0x00, // f: v1, prolog 6, 3 slots
		0x06, 0x42, // @6: UWOP_ALLOC_SMALL 0x28
		0x02, 0x70, // @2: UWOP_PUSH_NONVOL rdi
		0x01, 0x60, // @1: UWOP_PUSH_NONVOL rsi
		0x00, 0x00, // padding
	})
	ib.fn(0x1000, 0x1020, xdataRVA)
	ib.fn(0x1100, 0x1120, xdataRVA+0x10)
}

// programStack lays out the frames; S is g's RSP at entry.
//
//	S        return into f (0x110d)
//	S+8      f's 0x28 bytes
//	S+0x30   rdi (pushed by f)
//	S+0x38   rsi
//	S+0x40   return into main (0x100d)
//	S+0x48   main's 0x20 bytes
//	S+0x68   rbx (pushed by main)
//	S+0x70   0: end of stack
const S = 0x120000

func programStack() stack {
	st := newStack()
	st.put(S, imgBase+0x110d)
	st.put(S+0x30, 0xd1d1)
	st.put(S+0x38, 0x5151)
	st.put(S+0x40, imgBase+0x100d)
	st.put(S+0x68, 0xb1b1)
	st.put(S+0x70, 0)
	return st
}

func TestWalkProgram(t *testing.T) {
	ib := newImageBuilder()
	program(ib)
	_, u := world(ib, programStack())
	ctx := ctxWith(imgBase+0x1200, S, map[int]uint64{rbx: 0xb0, rsi: 0x50, rdi: 0xd0})
	st := u.Walk(ctx, WalkOptions{})
	if st.Reason != StopZeroReturn || st.Err != nil {
		t.Fatalf("reason %v, err %v", st.Reason, st.Err)
	}
	want := []struct {
		pc, sp uint64
		trust  Trust
		cfa    uint64
		raAt   uint64
	}{
		{imgBase + 0x1200, S, TrustContext, S + 8, S},
		{imgBase + 0x110d, S + 8, TrustLeaf, S + 0x48, S + 0x40},
		{imgBase + 0x100d, S + 0x48, TrustPDATA, S + 0x78, S + 0x70},
	}
	if len(st.Frames) != len(want) {
		t.Fatalf("%d frames, want %d", len(st.Frames), len(want))
	}
	for i, w := range want {
		f := st.Frames[i]
		if f.PC != w.pc || f.SP != w.sp || f.Trust != w.trust || f.CFA != w.cfa || f.ReturnAddressAt != w.raAt {
			t.Errorf("frame %d: pc %#x sp %#x %v cfa %#x ra@%#x, want %#x %#x %v %#x %#x",
				i, f.PC, f.SP, f.Trust, f.CFA, f.ReturnAddressAt, w.pc, w.sp, w.trust, w.cfa, w.raAt)
		}
		if f.Module == nil || f.Module.Name != "test.exe" {
			t.Errorf("frame %d: module %v", i, f.Module)
		}
	}
	// Where each nonvolatile was saved, per frame.
	check := func(fr int, r arch.Reg, v, at uint64) {
		t.Helper()
		got, ok := st.Frames[fr].Regs.Get(r)
		gotAt, _ := st.Frames[fr].Regs.SavedAt(r)
		if !ok || got != v || gotAt != at {
			t.Errorf("frame %d %v = %#x at %#x (known %v), want %#x at %#x", fr, r, got, gotAt, ok, v, at)
		}
	}
	check(0, arch.RBX, 0xb0, 0)
	check(1, arch.RBX, 0xb0, 0) // g and f leave rbx alone: still live
	check(1, arch.RSI, 0x50, 0) // f's caller context is main's: f's own rsi is live
	check(2, arch.RSI, 0x5151, S+0x38)
	check(2, arch.RDI, 0xd1d1, S+0x30)
	check(2, arch.RBX, 0xb0, 0)
	if _, ok := st.Frames[1].Regs.Get(arch.RAX); ok {
		t.Errorf("volatile rax known in a caller frame")
	}
	if st.Frames[0].HasEntry || !st.Frames[1].HasEntry || st.Frames[1].Function.BeginAddress != 0x1100 ||
		!st.Frames[2].HasEntry || st.Frames[2].Function.BeginAddress != 0x1000 {
		t.Errorf("function entries: %+v %+v %+v", st.Frames[0].Function, st.Frames[1].Function, st.Frames[2].Function)
	}
}

// A call that is the last instruction of f: its return address is the
// first byte of the next function, whose first instruction is ret. The
// walk looks up pc-1 and does not treat the return address as an epilog.
func TestWalkCallAtFunctionEnd(t *testing.T) {
	ib := newImageBuilder()
	program(ib)
	// f2 [0x1300, 0x130d): push rsi; push rdi; sub rsp,0x28; nop; nop; call g (ends the function)
	ib.put(0x1300, []byte{0x56, 0x57, 0x48, 0x83, 0xec, 0x28, 0x90, 0x90, 0xe8, 0xf3, 0xfe, 0xff, 0xff})
	ib.put(0x130d, []byte{0xc3}) // next function: ret
	ib.fn(0x1300, 0x130d, xdataRVA+0x10)
	ib.fn(0x130d, 0x130e, xdataRVA+0x20)
	ib.put(xdataRVA+0x20, []byte{0x01, 0, 0, 0})
	st := programStack()
	st.put(S, imgBase+0x130d)
	_, u := world(ib, st)
	s := u.Walk(ctxWith(imgBase+0x1200, S, nil), WalkOptions{})
	if s.Reason != StopZeroReturn || len(s.Frames) != 3 || s.Frames[2].PC != imgBase+0x100d {
		t.Fatalf("reason %v, %d frames: %+v", s.Reason, len(s.Frames), s.Frames)
	}
}

func TestWalkBounds(t *testing.T) {
	ib := newImageBuilder()
	program(ib)
	// h [0x1400,0x1410): a frame-pointer function whose rbp points below RSP:
	// unwinding it would move the stack pointer down.
	ib.put(0x1400, []byte{0x55, 0x48, 0x89, 0xe5, 0x90, 0x90})
	ib.put(xdataRVA+0x30, []byte{
		0x01, 0x04, 0x02, 0x05, // v1, prolog 4, 2 slots, FrameRegister rbp, FrameOffset 0
		0x04, 0x03, // @4: UWOP_SET_FPREG
		0x01, 0x50, // @1: UWOP_PUSH_NONVOL rbp
	})
	// m [0x1500,0x1510): a machine frame whose stored RIP/RSP point back at itself.
	ib.put(0x1500, []byte{0x90, 0x90})
	ib.put(xdataRVA+0x40, []byte{0x01, 0x00, 0x01, 0x00, 0x00, 0x0a, 0, 0}) // UWOP_PUSH_MACHFRAME
	ib.fn(0x1400, 0x1410, xdataRVA+0x30)
	ib.fn(0x1500, 0x1510, xdataRVA+0x40)
	st := programStack()
	st.put(S-0x100, 0x1)
	st.put(S-0xf8, imgBase+0x110d)
	st.put(S+0x200, imgBase+0x1501) // machine frame: RIP
	st.put(S+0x218, S+0x200)        // machine frame: RSP (itself)
	_, u := world(ib, st)

	cases := []struct {
		name   string
		ctx    Context
		opt    WalkOptions
		reason StopReason
		frames int
	}{
		{"frame limit", ctxWith(imgBase+0x1200, S, nil), WalkOptions{MaxFrames: 2}, StopMaxFrames, 2},
		{"stack pointer goes down", ctxWith(imgBase+0x1404, S, map[int]uint64{rbp: S - 0x100}), WalkOptions{}, StopNoProgress, 1},
		{"machine frame cycle", ctxWith(imgBase+0x1501, S+0x200, nil), WalkOptions{}, StopCycle, 2},
		{"unreadable stack", ctxWith(imgBase+0x1200, 0x900000, nil), WalkOptions{}, StopUnreadable, 1},
		{"pc outside modules", ctxWith(0x7000, S, nil), WalkOptions{}, StopOutsideModules, 1},
		{"unknown rip", Context{}, WalkOptions{}, StopBadUnwindInfo, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := u.Walk(tc.ctx, tc.opt)
			if s.Reason != tc.reason || len(s.Frames) != tc.frames {
				t.Fatalf("reason %v (%v), %d frames; want %v, %d", s.Reason, s.Err, len(s.Frames), tc.reason, tc.frames)
			}
		})
	}
}

// callSites adds two more calls to main of program(): "call g" at 0x1010
// (returns to 0x1015) and "call rax" at 0x1015 (returns to 0x1017).
func callSites(ib *imageBuilder) {
	ib.put(0x1010, []byte{
		0xe8, 0xeb, 0x01, 0x00, 0x00, // 10: call 0x1200 (g)
		0xff, 0xd0, // 15: call rax
		0x90, // 17
	})
}

// A caller frame outside every module is reported, then the walk stops; a
// stack scan can resume from it. A leaf-rule "return address" that is not
// even readable is garbage (a function without unwind data that pushed,
// like ___chkstk_ms): then the scan replaces it. The scan takes only
// words that follow a call that could have entered the callee.
func TestWalkOutsideModulesAndScan(t *testing.T) {
	ib := newImageBuilder()
	program(ib)
	callSites(ib)
	st := programStack()
	st.put(S, 0x7000) // g returns to code outside every module
	// Junk, then a return address into main (after its call at 0x1010).
	st.put(S+0x08, imgBase+0x1005) // inside main but not after a call
	st.put(S+0x10, imgBase+0x5000) // inside the image, not executable
	st.put(S+0x18, imgBase+0x1015) // after "call g": accepted for g only
	st.put(S+0x20, 0)
	st.put(S+0x28, imgBase+0x1017) // after "call rax": accepted for any callee
	mem, u := world(ib, st)
	s := u.Walk(ctxWith(imgBase+0x1200, S, nil), WalkOptions{})
	if s.Reason != StopOutsideModules || len(s.Frames) != 2 || s.Frames[1].PC != 0x7000 || s.Frames[1].Module != nil {
		t.Fatalf("reason %v, %d frames", s.Reason, len(s.Frames))
	}
	// Unreadable 0x7000 is garbage: with a scan, frame 1 is main.
	s = u.Walk(ctxWith(imgBase+0x1200, S, nil), WalkOptions{Scan: true})
	if len(s.Frames) < 2 || s.Frames[1].Trust != TrustScan || s.Frames[1].PC != imgBase+0x1015 || s.Frames[1].SP != S+0x20 {
		t.Fatalf("scan over garbage: reason %v, frames %+v", s.Reason, s.Frames)
	}
	if v, ok := s.Frames[1].Regs.Get(arch.RBX); !ok || v != 0xdead0000+3 {
		t.Errorf("a function without unwind data keeps rbx: %#x %v", v, ok)
	}
	// Mapped code outside every module (JIT code, shellcode) is a real
	// caller: reported, and the scan resumes from it, past main's call
	// of g (a direct call to another function).
	mem.Map(0x7000, make([]byte, 0x100))
	s = u.Walk(ctxWith(imgBase+0x1200, S, nil), WalkOptions{Scan: true})
	if len(s.Frames) < 3 || s.Frames[1].PC != 0x7000 || s.Frames[2].Trust != TrustScan || s.Frames[2].PC != imgBase+0x1017 || s.Frames[2].SP != S+0x30 {
		t.Fatalf("scan: reason %v, frames %+v", s.Reason, s.Frames)
	}
}

func TestWalkFramePointerFallback(t *testing.T) {
	ib := newImageBuilder()
	program(ib)
	callSites(ib)
	st := programStack()
	st.put(S, 0x7000)
	st.put(S+0x100, 0)              // saved rbp
	st.put(S+0x108, imgBase+0x1017) // return address (after call rax)
	mem, u := world(ib, st)
	mem.Map(0x7000, make([]byte, 0x100)) // code outside every module
	s := u.Walk(ctxWith(imgBase+0x1200, S, map[int]uint64{rbp: S + 0x100}), WalkOptions{FramePointer: true})
	if len(s.Frames) < 3 || s.Frames[2].Trust != TrustFramePointer || s.Frames[2].SP != S+0x110 {
		t.Fatalf("frames %+v reason %v", s.Frames, s.Reason)
	}
	// After a direct call of another function, [rbp+8] is not taken.
	st.put(S+0x108, imgBase+0x100d) // after "call f"
	mem, u = world(ib, st)
	mem.Map(0x7000, make([]byte, 0x100))
	s = u.Walk(ctxWith(imgBase+0x1200, S, map[int]uint64{rbp: S + 0x100}), WalkOptions{FramePointer: true})
	if len(s.Frames) != 2 {
		t.Fatalf("an unvalidated frame pointer was followed: frames %+v reason %v", s.Frames, s.Reason)
	}
}

// Missing .pdata: a zeroed or unreadable page of the function table is
// reported as missing data, while entries on readable pages still work and
// a gap between two readable entries is still a leaf.
func TestMissingPdata(t *testing.T) {
	ib := newImageBuilder()
	ib.put(xdataRVA, []byte{0x01, 0, 0, 0})
	// 512 functions of 8 bytes at 0x1000+16*i (the gaps between are leaves).
	for i := range 512 {
		ib.fn(uint32(0x1000+16*i), uint32(0x1008+16*i), xdataRVA)
	}
	b := ib.bytes()
	// .pdata spans 0x5000-0x6800: zero its second page (entries 342-682),
	// which covers functions 342..511.
	for i := 0x6000; i < 0x6800; i++ {
		b[i] = 0
	}
	m := &fakeMem{}
	m.Map(imgBase, b)
	u := New(m, []Module{{Name: "t", Base: imgBase, Size: imgSize}})

	check := func(rva uint32, found bool, err error) {
		t.Helper()
		_, f, e := u.LookupFunctionEntry(imgBase + uint64(rva))
		if f != found || !errors.Is(e, err) {
			t.Errorf("rva %#x: found %v err %v; want %v %v", rva, f, e, found, err)
		}
	}
	img, _ := u.Image(imgBase)
	if img.Missing != 512-341 {
		t.Errorf("Missing = %d", img.Missing)
	}
	check(0x1004, true, nil)                             // function 0
	check(0x100c, false, nil)                            // gap after function 0: leaf
	check(0x1000+16*340+4, true, nil)                    // function 340, last fully on page 1
	check(0x1000+16*340+12, false, ErrMissingUnwindData) // gap next to missing entries
	check(0x1000+16*400, false, ErrMissingUnwindData)    // function 400: its entry is missing
	check(0x2f00, false, ErrMissingUnwindData)           // past the last valid entry, missing ones follow

	// The same with the page unmapped instead of zeroed.
	m2 := &fakeMem{}
	m2.Map(imgBase, ib.bytes())
	m2.Unmap(imgBase+0x6000, 0x1000)
	u = New(m2, []Module{{Name: "t", Base: imgBase, Size: imgSize}})
	check(0x1004, true, nil)
	check(0x1000+16*400, false, ErrMissingUnwindData)

	// The walk reports it as missing data.
	st := newStack()
	m2.Map(stackBase, st)
	s := u.Walk(ctxWith(imgBase+0x1000+16*400, R, nil), WalkOptions{})
	if s.Reason != StopMissingData {
		t.Errorf("walk reason %v (%v)", s.Reason, s.Err)
	}
}

// fakeCFI unwinds any frame as a leaf would, to check the fallback hook.
type fakeCFI struct{ calls int }

func (f *fakeCFI) UnwindFrame(mem Memory, mod *Module, ctx *Context, exact bool) (bool, error) {
	f.calls++
	var b [8]byte
	if n, _ := mem.ReadMemory(ctx.RSP(), b[:]); n != 8 {
		return false, nil
	}
	ctx.restoreRIP(binary.LittleEndian.Uint64(b[:]), ctx.RSP())
	ctx.setRSP(ctx.RSP() + 8)
	return true, nil
}

func TestWalkCFIFallback(t *testing.T) {
	ib := newImageBuilder()
	program(ib)
	_, u := world(ib, programStack())
	// Frame 0 outside every module: only the CFI hook can unwind it.
	cfi := &fakeCFI{}
	ctx := ctxWith(0x7000, S, nil) // frame 0 outside every module
	s := u.Walk(ctx, WalkOptions{CFI: cfi})
	if cfi.calls == 0 || len(s.Frames) < 2 || s.Frames[1].Trust != TrustCFI || s.Frames[1].PC != imgBase+0x110d {
		t.Fatalf("calls %d, frames %+v, reason %v", cfi.calls, s.Frames, s.Reason)
	}
}

// Overlapping entries (clang's .seh_startchained gives the parent the whole
// procedure) are searched probe for probe as RtlLookupFunctionEntry does.
func TestLookupOverlappingEntries(t *testing.T) {
	// Entries: A [0x1000,0x1100) overlapping B [0x1010,0x1020), then C, D, E.
	fs := []RuntimeFunction{{0x1000, 0x1100, 1}, {0x1010, 0x1020, 2}, {0x1200, 0x1210, 3}, {0x1300, 0x1310, 4}, {0x1400, 0x1410, 5}}
	img := &Image{Functions: fs}
	// Windows: low 0, high 4, mid 2 (C): 0x1018 < 0x1200 -> high 1; mid 0 (A) contains it.
	if i, found, _ := img.lookupIndex(0x1018); !found || fs[i].UnwindData != 1 {
		t.Errorf("0x1018 -> entry %d (%v), want A as Windows finds it", i, found)
	}
	// With three entries the first probe is B.
	img = &Image{Functions: fs[:3]}
	if i, found, _ := img.lookupIndex(0x1018); !found || fs[i].UnwindData != 2 {
		t.Errorf("0x1018 -> entry %d (%v), want B", i, found)
	}
	if _, found, _ := img.lookupIndex(0x1150); found {
		t.Errorf("0x1150 found, want a leaf")
	}
}

// A return address is accepted only after a call instruction, in any of
// its encodings, in executable code, and a direct call must target the
// function that holds the callee's PC (through jmp thunks and import
// address table slots).
func TestValidReturn(t *testing.T) {
	const (
		ra     = 0x1808 // the candidate return address (rva)
		callee = 0x1a00 // the callee's code: a function without an entry
		thunk  = 0x1900 // jmp [rip+...] to the callee, as an import thunk
		other  = 0x1c00 // a function with an entry, not the callee
		slot   = 0x2800 // a pointer to the callee (an import address table slot)
	)
	rel := func(from, to uint32) []byte { return binary.LittleEndian.AppendUint32(nil, to-from) }
	for _, tc := range []struct {
		name string
		code []byte // placed so that it ends at the candidate return address
		want bool
	}{
		{"call rel32 to the callee", append([]byte{0xe8}, rel(ra, callee)...), true},
		{"call rel32 to code after the callee's pc", append([]byte{0xe8}, rel(ra, callee+0x20)...), false},
		{"call rel32 to another function", append([]byte{0xe8}, rel(ra, other)...), false},
		{"call rel32 to a thunk to the callee", append([]byte{0xe8}, rel(ra, thunk)...), true},
		{"call [rip+disp32] through a slot holding the callee", append([]byte{0xff, 0x15}, rel(ra, slot)...), true},
		{"call [rip+disp32] through a slot holding another function", append([]byte{0xff, 0x15}, rel(ra, slot+8)...), false},
		{"call rax", []byte{0xff, 0xd0}, true},
		{"call r11", []byte{0x41, 0xff, 0xd3}, true},
		{"call [rax+8]", []byte{0xff, 0x50, 0x08}, true},
		{"call [rsp+0x20] (SIB)", []byte{0xff, 0x54, 0x24, 0x20}, true},
		{"call [rbx+disp32]", []byte{0xff, 0x93, 0x00, 0x01, 0x00, 0x00}, true},
		{"jmp rel32 is not a call", append([]byte{0xe9}, rel(ra, callee)...), false},
		{"nops", []byte{0x90, 0x90, 0x90, 0x90, 0x90}, false},
		{"mov", []byte{0x48, 0x89, 0xc8}, false},
	} {
		ib := newImageBuilder()
		for i := range 8 {
			ib.b[0x1800+i] = 0x90
		}
		ib.put(ra-uint32(len(tc.code)), tc.code)
		ib.put(thunk, append([]byte{0xff, 0x25}, rel(thunk+6, slot)...))
		ib.put(callee, []byte{0x90, 0x90, 0xc3})
		ib.put(other, []byte{0xc3})
		ib.fn(other, other+1, xdataRVA)
		ib.put(xdataRVA, []byte{0x01, 0x00, 0x00, 0x00})
		binary.LittleEndian.PutUint64(ib.b[slot:], imgBase+callee)
		binary.LittleEndian.PutUint64(ib.b[slot+8:], imgBase+other)
		_, u := world(ib, newStack())
		if got := u.validReturn(imgBase+ra, imgBase+callee+1, nil); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	ib := newImageBuilder()
	ib.put(xdataRVA+0x100, []byte{0xff, 0xd0})
	_, u := world(ib, newStack())
	if u.validReturn(imgBase+xdataRVA+0x102, imgBase+0x1000, nil) {
		t.Errorf("a call in a non-executable section accepted")
	}
	if u.validReturn(0x7000, imgBase+0x1000, nil) {
		t.Errorf("an address outside every module accepted")
	}
}

// frameCFI is CFI for g and f of program(): CFA = RSP + size, the return
// address at CFA-8 (f's pushes are not restored: the walk does not need
// them). It says which trust it gives, as the cfi package does.
type frameCFI struct{ calls int }

func (f *frameCFI) UnwindFrameTrust(mem Memory, mod *Module, ctx *Context, exact bool) (Trust, bool, error) {
	f.calls++
	pc := ctx.RIP
	if !exact {
		pc--
	}
	var size uint64
	switch {
	case pc >= imgBase+0x1200 && pc < imgBase+0x1204:
		size = 8
	case pc >= imgBase+0x1106 && pc < imgBase+0x1120:
		size = 0x40
	default:
		return 0, false, nil
	}
	var b [8]byte
	cfa := ctx.RSP() + size
	if n, _ := mem.ReadMemory(cfa-8, b[:]); n != 8 {
		return 0, false, nil
	}
	ctx.restoreRIP(binary.LittleEndian.Uint64(b[:]), cfa-8)
	ctx.setRSP(cfa)
	return TrustCFIBuiltin, true, nil
}

func (f *frameCFI) UnwindFrame(mem Memory, mod *Module, ctx *Context, exact bool) (bool, error) {
	_, ok, err := f.UnwindFrameTrust(mem, mod, ctx, exact)
	return ok, err
}

// TestWalkPreference: the three settings give the same frames; the trust
// says which unwind data found each.
func TestWalkPreference(t *testing.T) {
	ib := newImageBuilder()
	program(ib)
	_, u := world(ib, programStack())
	ctx := ctxWith(imgBase+0x1200, S, map[int]uint64{rbx: 0xb0, rsi: 0x50, rdi: 0xd0})
	cfi := TrustCFIBuiltin // what frameCFI reports
	for _, c := range []struct {
		prefer CFIPreference
		trust  []Trust
	}{
		{PreferAuto, []Trust{TrustContext, cfi, TrustPDATA}},
		{PreferPDATA, []Trust{TrustContext, cfi, TrustPDATA}},
		{PreferCFI, []Trust{TrustContext, cfi, cfi}},
	} {
		st := u.Walk(ctx, WalkOptions{CFI: &frameCFI{}, Prefer: c.prefer})
		if st.Reason != StopZeroReturn || len(st.Frames) != 3 {
			t.Fatalf("%v: %d frames, %v %v", c.prefer, len(st.Frames), st.Reason, st.Err)
		}
		want := []struct{ pc, sp uint64 }{{imgBase + 0x1200, S}, {imgBase + 0x110d, S + 8}, {imgBase + 0x100d, S + 0x48}}
		for i, f := range st.Frames {
			if f.PC != want[i].pc || f.SP != want[i].sp || f.Trust != c.trust[i] {
				t.Errorf("%v: frame %d pc %#x sp %#x trust %v, want %#x %#x %v",
					c.prefer, i, f.PC, f.SP, f.Trust, want[i].pc, want[i].sp, c.trust[i])
			}
		}
		if p, err := ParseCFIPreference(c.prefer.String()); err != nil || p != c.prefer {
			t.Errorf("ParseCFIPreference(%q) = %v, %v", c.prefer, p, err)
		}
	}
	if _, err := ParseCFIPreference("dwarf"); err == nil {
		t.Error("ParseCFIPreference accepted dwarf")
	}

	// f's UNWIND_INFO broken (version 3): auto falls back to CFI, pdata
	// does not (f has an entry) and the walk stops there.
	ib.put(xdataRVA+0x10, []byte{0x03})
	_, u = world(ib, programStack())
	st := u.Walk(ctx, WalkOptions{CFI: &frameCFI{}})
	if len(st.Frames) != 3 || st.Frames[2].Trust != cfi {
		t.Errorf("auto over a broken UNWIND_INFO: %d frames %+v, %v %v", len(st.Frames), st.Frames, st.Reason, st.Err)
	}
	st = u.Walk(ctx, WalkOptions{CFI: &frameCFI{}, Prefer: PreferPDATA})
	if len(st.Frames) != 2 || !errors.Is(st.Err, ErrVersion) {
		t.Errorf("pdata over a broken UNWIND_INFO: %d frames, %v %v", len(st.Frames), st.Reason, st.Err)
	}
}
