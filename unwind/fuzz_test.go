package unwind

import (
	"encoding/binary"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/rspstub/rspstub/internal/arch"
)

// realXdata returns up to n UNWIND_INFO byte strings from Wine DLLs, to
// seed the fuzzers with real encodings.
func realXdata(n int) [][]byte {
	var out [][]byte
	for _, name := range []string{"ntdll.dll", "kernelbase.dll", "msvcrt.dll", "jscript.dll"} {
		mod, b, err := mapPE(filepath.Join(wineDir, name))
		if err != nil {
			continue
		}
		m := &fakeMem{}
		m.Map(mod.Base, b)
		img, err := ReadImage(m, mod)
		if err != nil {
			continue
		}
		step := max(1, len(img.Functions)/(n/4+1))
		for i := 0; i < len(img.Functions) && len(out) < n; i += step {
			rva := img.Functions[i].UnwindData
			if uint64(rva)+MaxUnwindInfoSize <= uint64(len(b)) {
				u, err := DecodeUnwindInfo(b[rva:rva+MaxUnwindInfoSize], rva)
				if err == nil {
					out = append(out, append([]byte(nil), b[rva:rva+uint32(u.Size())]...))
				}
			}
		}
	}
	return out
}

func FuzzDecodeUnwindInfo(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add(tc.xdata)
	}
	for _, x := range realXdata(64) {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := DecodeUnwindInfo(b, 0x3000)
		if err != nil {
			if u != nil {
				t.Fatal("info with error")
			}
			return
		}
		if u.Size() > len(b) {
			t.Fatalf("Size %d > %d", u.Size(), len(b))
		}
		slots := 0
		for _, c := range u.Codes {
			if int(c.Index) != slots || c.Slots == 0 {
				t.Fatalf("code %+v at slot %d", c, slots)
			}
			slots += int(c.Slots)
		}
		if slots != int(u.CountOfCodes) {
			t.Fatalf("codes cover %d slots of %d", slots, u.CountOfCodes)
		}
		// Reading it from memory gives the same structure.
		m := &fakeMem{}
		m.Map(0x10000, b)
		u2, err := ReadUnwindInfo(m, 0x10000-0x3000, 0x3000)
		if err != nil || !reflect.DeepEqual(u, u2) {
			t.Fatalf("ReadUnwindInfo: %v\n%+v\n%+v", err, u, u2)
		}
	})
}

// FuzzStepWalk runs the unwinder over a fuzzed function: unwind info, code
// and stack words. It must never panic and every walk must end.
func FuzzStepWalk(f *testing.F) {
	f.Add(xdataA, fnA, uint8(7), []byte{})
	f.Add(xdataTail, fnTail(0xe9, 0xf2, 0x0f, 0, 0), uint8(9), []byte{1, 2, 3})
	for _, x := range realXdata(16) {
		f.Add(x, fnA, uint8(3), []byte{0x10, 0x10, 0, 0x40, 1})
	}
	f.Fuzz(func(t *testing.T, xdata, code []byte, pc uint8, stk []byte) {
		if len(xdata) > 0x1000 || len(code) > 0x800 || len(stk) > 0x1000 {
			return
		}
		ib := newImageBuilder()
		ib.put(xdataRVA, xdata)
		ib.put(textRVA, code)
		// The fuzzed info also serves as a chained parent and an indirect target.
		ib.fn(textRVA, textRVA+0x100, xdataRVA)
		ib.fn(textRVA+0x100, textRVA+0x200, pdataRVA+1)
		// A small stack around R keeps each execution cheap.
		st := make([]byte, 0x5000)
		const stBase = R - 0x1000
		// Stack words: small values, or addresses in the image or the stack.
		for i := 0; i+2 <= len(stk); i += 2 {
			v := uint64(stk[i+1])
			switch stk[i] & 3 {
			case 1:
				v = imgBase + textRVA + v*4
			case 2:
				v = R + v*8
			}
			binary.LittleEndian.PutUint64(st[R-stBase+uint64(i)*4:], v)
		}
		m := &fakeMem{}
		m.Map(imgBase, ib.bytes())
		m.Map(stBase, st)
		u := New(m, []Module{{Name: "f", Base: imgBase, Size: imgSize}})
		ctx := ctxWith(imgBase+textRVA+uint64(pc), R, map[int]uint64{rbp: R + 0x40, r13: R + 0x80})
		c := ctx
		_, _ = u.Step(&c, 0)
		s := u.Walk(ctx, WalkOptions{MaxFrames: 64, Scan: true, FramePointer: true, ScanWords: 64})
		if len(s.Frames) > 64 {
			t.Fatalf("%d frames", len(s.Frames))
		}
		// The same code outside every module, walked with validation, a
		// shadow stack made of the stack words, and code regions.
		jit := make([]byte, jitSize)
		copy(jit, code)
		m.Map(jitBase, jit)
		var shadow []ShadowCall
		for i := 0; i+8 <= len(stk) && len(shadow) < 8; i += 8 {
			slot := R + uint64(stk[i]&0x3f)*8
			shadow = append(shadow, ShadowCall{Target: jitBase + uint64(stk[i+1]), ReturnAddress: binary.LittleEndian.Uint64(st[slot-stBase:]), Slot: slot})
		}
		for _, start := range []uint64{imgBase + textRVA + uint64(pc), jitBase + uint64(pc)} {
			ctx.Set(arch.RIP, start)
			s = u.Walk(ctx, WalkOptions{MaxFrames: 64, Validate: true, Code: jitRegions{}, Shadow: shadow, Scan: true, FramePointer: true, ScanWords: 64})
			if len(s.Frames) > 64 {
				t.Fatalf("%d frames", len(s.Frames))
			}
			for i := 1; i < len(s.Frames); i++ {
				if s.Frames[i].SP <= s.Frames[i-1].SP && s.Frames[i].Trust != TrustMachineFrame {
					t.Fatalf("frame %d: sp %#x after %#x", i, s.Frames[i].SP, s.Frames[i-1].SP)
				}
			}
		}
	})
}

// FuzzReadImage feeds damaged headers and function tables to the image
// reader and the lookup.
func FuzzReadImage(f *testing.F) {
	ib := newImageBuilder()
	program(ib)
	img := ib.bytes()
	f.Add(img[:0x400], img[pdataRVA:pdataRVA+0x40], uint32(0x1004))
	f.Fuzz(func(t *testing.T, hdr, pdata []byte, rva uint32) {
		b := make([]byte, imgSize)
		copy(b, img)
		copy(b, hdr)
		copy(b[pdataRVA:], pdata)
		m := &fakeMem{}
		m.Map(imgBase, b)
		u := New(m, []Module{{Name: "f", Base: imgBase, Size: imgSize}})
		_, _, _ = u.LookupFunctionEntry(imgBase + uint64(rva%imgSize))
		_ = u.Walk(ctxWith(imgBase+uint64(rva%imgSize), R, nil), WalkOptions{MaxFrames: 16})
	})
}
