package unwind

import (
	"encoding/binary"
	"testing"
)

// recursion builds a 10,000-frame recursion of
//
//	rec [0x1000,0x1020): push rbx; sub rsp,0x20; nop*3; call rec (returns to 0x100d)
//
// stopped in the innermost body, with a zero return address above the
// outermost frame.
func recursion(depth int) (*fakeMem, []Module, Context) {
	ib := newImageBuilder()
	program(ib) // main's code and unwind info are the same shape
	img := ib.bytes()
	const top = 0x10000000
	sp := uint64(top - 0x30*(depth+1))
	stk := make([]byte, 0x30*(depth+1))
	for i := range depth {
		frame := 0x30 * i
		binary.LittleEndian.PutUint64(stk[frame+0x20:], uint64(i)) // saved rbx
		ra := uint64(imgBase + 0x100d)
		if i == depth-1 {
			ra = 0
		}
		binary.LittleEndian.PutUint64(stk[frame+0x28:], ra)
	}
	m := &fakeMem{}
	m.Map(imgBase, img)
	m.Map(sp, stk)
	return m, []Module{{Name: "rec.exe", Base: imgBase, Size: imgSize}}, ctxWith(imgBase+0x1005, sp, nil)
}

func TestRecursionWalk(t *testing.T) {
	m, mods, ctx := recursion(10000)
	st := New(m, mods).Walk(ctx, WalkOptions{MaxFrames: 20000})
	if st.Reason != StopZeroReturn || len(st.Frames) != 10000 {
		t.Fatalf("%d frames, %v (%v)", len(st.Frames), st.Reason, st.Err)
	}
}

func benchWalk(b *testing.B, cold bool) {
	m, mods, ctx := recursion(10000)
	u := New(m, mods)
	u.Walk(ctx, WalkOptions{MaxFrames: 20000})
	var st Stack
	b.ResetTimer()
	frames := 0
	for range b.N {
		if cold {
			u = New(m, mods)
			st = u.Walk(ctx, WalkOptions{MaxFrames: 20000})
		} else {
			u.WalkInto(&st, ctx, WalkOptions{MaxFrames: 20000})
		}
		frames += len(st.Frames)
	}
	b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkWalkWarm: modules and unwind info already cached, frames
// written into a reused Stack.
func BenchmarkWalkWarm(b *testing.B) { benchWalk(b, false) }

// BenchmarkWalkCold: a new Unwinder and a new Stack per walk, so every walk
// parses the image headers and .pdata and decodes the UNWIND_INFO first.
func BenchmarkWalkCold(b *testing.B) { benchWalk(b, true) }
