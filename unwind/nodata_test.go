package unwind

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/arch"
)

// Code outside every module: a routine copied into VirtualAlloc'd memory
// (monitor/testdata/shellcode.c has the same bytes), called by main of
// program() through "call rax" at 0x1015, calling g (a function without
// an entry, standing for an API) through its own "call rax".
const (
	jitBase = 0x40000000
	jitSize = 0x1000
)

var framelessRoutine = []byte{
	0x48, 0x83, 0xec, 0x38, // 00: sub  rsp, 0x38
	0x4c, 0x89, 0x44, 0x24, 0x20, // 04: mov  [rsp+0x20], r8   ; a decoy
	0x48, 0x89, 0xc8, // 09: mov  rax, rcx
	0x48, 0x89, 0xd1, // 0c: mov  rcx, rdx
	0xff, 0xd0, // 0f: call rax
	0x48, 0x83, 0xc4, 0x38, // 11: add  rsp, 0x38          ; return address
	0xc3, // 15: ret
}

var rbpRoutine = []byte{
	0x55,             // 00: push rbp
	0x48, 0x89, 0xe5, // 01: mov  rbp, rsp
	0x48, 0x83, 0xec, 0x30, // 04: sub  rsp, 0x30
	0x4c, 0x89, 0x45, 0xf0, // 08: mov  [rbp-0x10], r8    ; a decoy
	0x48, 0x89, 0xc8, // 0c: mov  rax, rcx
	0x48, 0x89, 0xd1, // 0f: mov  rcx, rdx
	0xff, 0xd0, // 12: call rax
	0xc9, // 14: leave                   ; return address
	0xc3, // 15: ret
}

// jitRegions is a CodeRegions with one executable mapping.
type jitRegions struct{}

func (jitRegions) CodeRegion(addr uint64) (uint64, uint64, bool) {
	if addr >= jitBase && addr < jitBase+jitSize {
		return jitBase, jitBase + jitSize, true
	}
	return 0, 0, false
}

// jitWorld is program() plus main's extra call sites and a routine in
// memory outside every module.
func jitWorld(routine []byte, st stack) *Unwinder {
	ib := newImageBuilder()
	program(ib)
	callSites(ib)
	mem, u := world(ib, st)
	code := make([]byte, jitSize)
	copy(code, routine)
	mem.Map(jitBase, code)
	return u
}

// The stacks below, at g's first instruction (g's RSP is S):
//
// frameless routine                     rbp routine
//
//	S       jit+0x11 (into the routine)   S       jit+0x14
//	S+0x28  decoy: main+0xd (after        S+0x28  decoy (at rbp-0x10)
//	        "call f", not the routine)    S+0x38  main's rbp (pushed)   <- rbp
//	S+0x40  main+0x17 (after call rax)    S+0x40  main+0x17
//
// then main's frame: 0x20 bytes, rbx at S+0x68, a zero return address.
func framelessStack() stack {
	st := newStack()
	st.put(S, jitBase+0x11)
	st.put(S+0x28, imgBase+0x100d)
	st.put(S+0x40, imgBase+0x1017)
	st.put(S+0x68, 0xb1b1) // rbx pushed by main
	st.put(S+0x70, 0)
	return st
}

func rbpStack() stack {
	st := framelessStack()
	st.put(S, jitBase+0x14)
	st.put(S+0x38, 0x5a5a) // main's rbp, pushed by the routine
	return st
}

type wantFrame struct {
	pc, sp uint64
	trust  Trust
}

func checkFrames(t *testing.T, s Stack, want []wantFrame) {
	t.Helper()
	var got []wantFrame
	for _, f := range s.Frames {
		got = append(got, wantFrame{f.PC, f.SP, f.Trust})
	}
	assert.Equal(t, want, got, "stopped: %v %v", s.Reason, s.Err)
}

func TestWalkNoUnwindData(t *testing.T) {
	g := ctxWith(imgBase+0x1200, S, map[int]uint64{rbx: 0xb0, rbp: 0xbbbb})
	opt := WalkOptions{Validate: true, Code: jitRegions{}}

	t.Run("frameless", func(t *testing.T) {
		u := jitWorld(framelessRoutine, framelessStack())
		s := u.Walk(g, opt)
		// The scan passes the decoy: main calls f there, not the routine.
		checkFrames(t, s, []wantFrame{
			{imgBase + 0x1200, S, TrustContext},
			{jitBase + 0x11, S + 8, TrustLeaf},
			{imgBase + 0x1017, S + 0x48, TrustScan},
		})
		assert.Equal(t, StopZeroReturn, s.Reason)
		require.Len(t, s.Frames, 3)
		// main's rbp is the routine's: it never touched it.
		v, ok := s.Frames[2].Regs.Get(arch.RBP)
		assert.True(t, ok)
		assert.Equal(t, uint64(0xbbbb), v)
	})

	t.Run("rbp frame", func(t *testing.T) {
		u := jitWorld(rbpRoutine, rbpStack())
		ctx := g
		ctx.Set(arch.RBP, S+0x38)
		s := u.Walk(ctx, opt)
		checkFrames(t, s, []wantFrame{
			{imgBase + 0x1200, S, TrustContext},
			{jitBase + 0x14, S + 8, TrustLeaf},
			{imgBase + 0x1017, S + 0x48, TrustFramePointer},
		})
		require.Len(t, s.Frames, 3)
		v, _ := s.Frames[2].Regs.Get(arch.RBP)
		at, _ := s.Frames[2].Regs.SavedAt(arch.RBP)
		assert.Equal(t, uint64(0x5a5a), v)
		assert.Equal(t, uint64(S+0x38), at)
	})

	t.Run("without Validate", func(t *testing.T) {
		// The Windows rules: the routine's frame is reported, then the
		// walk ends (or a plain scan takes the first call-preceded word).
		u := jitWorld(framelessRoutine, framelessStack())
		s := u.Walk(g, WalkOptions{})
		assert.Equal(t, StopOutsideModules, s.Reason)
		assert.Len(t, s.Frames, 2)
	})

	t.Run("without code regions", func(t *testing.T) {
		// The leaf candidate is readable memory after a call: taken. A
		// scan outside modules takes nothing it cannot prove is code.
		u := jitWorld(framelessRoutine, framelessStack())
		s := u.Walk(g, WalkOptions{Validate: true})
		checkFrames(t, s, []wantFrame{
			{imgBase + 0x1200, S, TrustContext},
			{jitBase + 0x11, S + 8, TrustLeaf},
			{imgBase + 0x1017, S + 0x48, TrustScan},
		})
	})

	t.Run("decoy only", func(t *testing.T) {
		// With main's real return address gone, the decoy is all there
		// is: the walk stops rather than invent main's caller.
		st := framelessStack()
		st.put(S+0x40, 0x1234)
		u := jitWorld(framelessRoutine, st)
		s := u.Walk(g, opt)
		assert.Equal(t, StopUnproven, s.Reason)
		assert.True(t, errors.Is(s.Err, ErrUnproven), "%v", s.Err)
		assert.Len(t, s.Frames, 2)
	})

	t.Run("shadow", func(t *testing.T) {
		u := jitWorld(framelessRoutine, framelessStack())
		o := opt
		o.Shadow = []ShadowCall{
			{CallSite: imgBase + 0x1015, Target: jitBase, ReturnAddress: imgBase + 0x1017, Slot: S + 0x40},
			{CallSite: jitBase + 0xf, Target: imgBase + 0x1200, ReturnAddress: jitBase + 0x11, Slot: S},
		}
		s := u.Walk(g, o)
		checkFrames(t, s, []wantFrame{
			{imgBase + 0x1200, S, TrustContext},
			{jitBase + 0x11, S + 8, TrustShadow},
			{imgBase + 0x1017, S + 0x48, TrustShadow},
		})
		// A call whose target is not the routine (a callback that
		// emulated code made without a call instruction sits in
		// between): the shadow stack is not used for that frame.
		o.Shadow[0].Target = imgBase + 0x1100
		s = u.Walk(g, o)
		require.Len(t, s.Frames, 3)
		assert.Equal(t, TrustScan, s.Frames[2].Trust)
		// A slot that no longer holds the return address is stale.
		o.Shadow[0].Target = jitBase
		o.Shadow[0].ReturnAddress = imgBase + 0x100d
		s = u.Walk(g, o)
		require.Len(t, s.Frames, 3)
		assert.Equal(t, TrustScan, s.Frames[2].Trust)
	})

	t.Run("rbp into the frame", func(t *testing.T) {
		// The routine uses rbp as a pointer into its own frame, not as a
		// frame pointer: the caller's rbp is unknown, not that pointer.
		u := jitWorld(framelessRoutine, framelessStack())
		ctx := g
		ctx.Set(arch.RBP, S+0x18)
		s := u.Walk(ctx, opt)
		require.Len(t, s.Frames, 3)
		_, ok := s.Frames[2].Regs.Get(arch.RBP)
		assert.False(t, ok)
	})
}

// A direct call to a function that tail-jumps to the callee is
// consistent with it: main calls t (no entry), and t jumps to g (the
// CRT's _unlock_file ends in a jmp to msvcrt's _unlock this way).
func TestValidReturnTailJump(t *testing.T) {
	ib := newImageBuilder()
	program(ib)
	ib.put(0x1010, []byte{0xe8, 0xeb, 0x02, 0x00, 0x00})       // 10: call 0x1300 (t)
	ib.put(0x1300, []byte{0x90, 0xe9, 0xfa, 0xfe, 0xff, 0xff}) // t: nop; jmp 0x1200 (g)
	ib.put(0x1400, []byte{0x90, 0xc3})                         // another function
	// An entry between t and the other function: they are in different
	// gaps between entries, so t cannot hold the other function's code.
	ib.fn(0x1380, 0x1390, xdataRVA)
	_, u := world(ib, newStack())
	assert.True(t, u.validReturn(imgBase+0x1015, imgBase+0x1200, nil), "through t's tail jump")
	assert.False(t, u.validReturn(imgBase+0x1015, imgBase+0x1401, nil), "a function t does not reach")

	// t ends in an indirect jump: with REX.W (the ABI's indirect tail
	// call, as libgcc's _Unwind_DeleteException jumps to the exception's
	// cleanup) it may reach anything; without (a switch) it reaches
	// nothing outside t.
	ib.put(0x1300, []byte{0x90, 0x48, 0xff, 0xe0}) // t: nop; rex.W jmp rax
	_, u = world(ib, newStack())
	assert.True(t, u.validReturn(imgBase+0x1015, imgBase+0x1401, nil), "REX.W jmp rax")
	ib.put(0x1300, []byte{0x90, 0x90, 0xff, 0xe0}) // t: nop; nop; jmp rax
	_, u = world(ib, newStack())
	assert.False(t, u.validReturn(imgBase+0x1015, imgBase+0x1401, nil), "jmp rax")
}

// A return address into code the emulator generated (an API stub's
// continuation, where emulated code calls guest code back without a call
// instruction) is accepted as it is.
func TestValidReturnSynthetic(t *testing.T) {
	ib := newImageBuilder()
	program(ib)
	mem, _ := world(ib, newStack())
	// The same image bytes again, as the emulator's module.
	const stubBase = 0x7ffb00000000
	mem.Map(stubBase, ib.bytes())
	for _, synthetic := range []bool{false, true} {
		u := New(mem, []Module{{Name: "test.exe", Base: imgBase, Size: imgSize},
			{Name: "KERNEL32.dll", Base: stubBase, Size: imgSize, Synthetic: synthetic}})
		// 0x1005 in main: after "sub rsp, 0x20", not after a call.
		assert.Equal(t, synthetic, u.validReturn(stubBase+0x1005, imgBase+0x1200, nil), "synthetic=%v", synthetic)
	}
}
