package unwind

import (
	"github.com/stretchr/testify/require"

	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/rspstub/rspstub/internal/fuzzcorpus"
)

// TestWriteFuzzCorpus regenerates testdata/fuzz/ from Wine's PE DLLs when
// RSPSTUB_WRITE_CORPUS=1 (make fuzz-corpus): distinct UNWIND_INFO shapes
// (chained and version 2 ones first) for FuzzDecodeUnwindInfo, real
// functions (unwind info, code, a stack) for FuzzStepWalk, and real
// headers and .pdata for FuzzReadImage.
func TestWriteFuzzCorpus(t *testing.T) {
	if !fuzzcorpus.Enabled() {
		t.Skip("set RSPSTUB_WRITE_CORPUS=1 to regenerate the fuzz corpus")
	}
	files, _ := filepath.Glob(filepath.Join(wineDir, "*.dll"))
	if len(files) == 0 {
		t.Fatalf("no Wine DLLs in %s", wineDir)
	}
	sort.Strings(files)
	dec, err := fuzzcorpus.Reset("FuzzDecodeUnwindInfo")
	require.NoError(t, err)
	walk, _ := fuzzcorpus.Reset("FuzzStepWalk")
	hdrs, _ := fuzzcorpus.Reset("FuzzReadImage")
	seen := map[string]bool{}
	var chained, v2, shapes, walks int
	stk := []byte{0x10, 0x10, 1, 0x40, 0, 7, 2, 3, 1, 0x41, 2, 9, 1, 0x80}
	for fi, path := range files {
		mod, b, err := mapPE(path)
		if err != nil {
			continue
		}
		m := &fakeMem{}
		m.Map(mod.Base, b)
		img, err := ReadImage(m, mod)
		if err != nil || len(img.Functions) == 0 {
			continue
		}
		if fi%40 == 0 && img.ExceptionSize >= 0x60 && len(b) >= 0x400 {
			p := b[img.ExceptionRVA : img.ExceptionRVA+0x60]
			require.NoError(t, hdrs.Add(append([]byte(nil), b[:0x400]...), append([]byte(nil), p...), img.Functions[1].BeginAddress+3))
		}
		for _, fn := range img.Functions {
			rva := fn.UnwindData
			if fn.Indirect() || uint64(rva)+MaxUnwindInfoSize > uint64(len(b)) {
				continue
			}
			u, err := DecodeUnwindInfo(b[rva:rva+MaxUnwindInfoSize], rva)
			if err != nil {
				continue
			}
			ops := map[uint8]bool{}
			for _, c := range u.Codes {
				ops[c.Op] = true
			}
			var opl []int
			for op := range ops {
				opl = append(opl, int(op))
			}
			sort.Ints(opl)
			key := fmt.Sprint(u.Version, u.Flags, u.FrameRegister != 0, u.FrameOffset > 0, opl, min(u.CountOfCodes, 8), len(u.EpilogOffset) > 0)
			want := !seen[key]
			switch {
			case u.Chain() && chained < 60:
				want = true
				chained++
			case u.Version == 2 && v2 < 40:
				want = true
				v2++
			}
			if !want || shapes >= 400 {
				continue
			}
			seen[key] = true
			shapes++
			x := append([]byte(nil), b[rva:rva+uint32(u.Size())]...)
			require.NoError(t, dec.Add(x))
			// Wine's compilers emit neither chained infos nor version 2
			// epilog codes: derive both from this real info.
			if !u.Chain() && u.CountOfCodes < 250 && shapes%2 == 0 {
				codes := x[4 : 4+2*int(u.CountOfCodes)]
				// Chained to the next function of the same image.
				ch := append([]byte{1 | UNW_FLAG_CHAININFO<<3, x[1], x[2], x[3]}, codes...)
				if len(codes)%4 != 0 {
					ch = append(ch, 0, 0)
				}
				parent := img.Functions[(shapes/2)%len(img.Functions)]
				ch = binary.LittleEndian.AppendUint32(ch, parent.BeginAddress)
				ch = binary.LittleEndian.AppendUint32(ch, parent.EndAddress)
				ch = binary.LittleEndian.AppendUint32(ch, parent.UnwindData)
				// Version 2: an epilog descriptor (size, at end) and one
				// epilog 0x40 bytes before the end, in front of the codes.
				v := append([]byte{2 | x[0]&0xf8, x[1], x[2] + 2, x[3]}, u.SizeOfProlog&7+1, UWOP_EPILOG|1<<4, 0x40, UWOP_EPILOG)
				v = append(v, codes...)
				if len(v)%4 != 0 {
					v = append(v, 0, 0)
				}
				v = append(v, x[min(len(x), 4+2*((int(u.CountOfCodes)+1)&^1)):]...)
				for _, d := range [][]byte{ch, v} {
					if _, err := DecodeUnwindInfo(d, rva); err == nil {
						chained += int(d[0]>>3&UNW_FLAG_CHAININFO) / UNW_FLAG_CHAININFO
						v2 += int(d[0]&7) / 2
						require.NoError(t, dec.Add(d))
					}
				}
			}
			// A real function for the walker: its info, up to 0x100 bytes
			// of its code, a PC inside the prolog and one past it.
			if walks < 120 && shapes%3 == 0 && fn.EndAddress > fn.BeginAddress && uint64(fn.EndAddress) <= uint64(len(b)) {
				code := b[fn.BeginAddress:min(fn.EndAddress, fn.BeginAddress+0x100)]
				pc := uint8(min(int(u.SizeOfProlog), len(code)-1))
				require.NoError(t, walk.Add(x, append([]byte(nil), code...), pc, stk[:2*(walks%7)]))
				walks++
			}
		}
	}
	for _, d := range []*fuzzcorpus.Dir{dec, walk, hdrs} {
		t.Log(d)
	}
	t.Logf("%d shapes, %d chained, %d version 2", shapes, chained, v2)
	if _, err := os.Stat("testdata/fuzz"); err != nil {
		t.Fatal(err)
	}
}
