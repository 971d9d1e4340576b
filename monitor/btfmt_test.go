package monitor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/unwind"
)

// formatTable is the backtrace table as format strings define it; the
// reference for AppendTable.
func formatTable(out io.Writer, bt *Backtrace, full bool) {
	fmt.Fprintf(out, " # %-17s  %-17s  %-50s %s\n", "Child-SP", "RetAddr", "Call Site", "Trust")
	for i := range bt.Frames {
		f := &bt.Frames[i]
		ret := "(unknown)        "
		if i+1 < len(bt.Frames) {
			ret = hex16(bt.Frames[i+1].PC)
		} else if bt.Reason == unwind.StopZeroReturn {
			ret = hex16(0)
		}
		site := f.Loc.String()
		if site == "" {
			site = fmt.Sprintf("%#x", f.PC)
		}
		note := f.Trust.String()
		if f.InProlog {
			note += " (in prolog)"
		}
		if f.InEpilog {
			note += " (in epilog)"
		}
		fmt.Fprintf(out, "%02x %s  %s  %-50s %s\n", f.Index, hex16(f.SP), ret, site, note)
		if full {
			for _, r := range nonvolatileOrder {
				v, ok := f.Regs.Get(r)
				if !ok {
					fmt.Fprintf(out, "%s%-5s <unknown>\n", "   ", r)
					continue
				}
				if at, saved := f.Regs.SavedAt(r); saved {
					fmt.Fprintf(out, "%s%-5s %016x  saved at %s\n", "   ", r, v, hex16(at))
				} else {
					fmt.Fprintf(out, "%s%-5s %016x  live\n", "   ", r, v)
				}
			}
			for i := 6; i < 16; i++ {
				c := &f.Regs
				if c.XMMAddr[i] != 0 && c.XMMKnown&(1<<i) != 0 {
					x := c.XMM[i]
					fmt.Fprintf(out, "%sxmm%-2d %016x%016x  saved at %s\n", "   ", i, x.Hi, x.Lo, hex16(c.XMMAddr[i]))
				}
			}
		}
	}
	fmt.Fprintf(out, "-- %s\n", bt.ended())
}

// randomBacktrace makes frames with every field the formats show: with
// and without module, symbol, demangled name, file; prolog and epilog;
// registers known, saved or not; names that JSON must escape; frame
// indexes past 0xff.
func randomBacktrace(r *rand.Rand, n int) *Backtrace {
	names := []string{"f", "std::vector<int>::push_back", `odd"name\`, "é€", "a&b", "x\x01y"}
	bt := &Backtrace{Reason: unwind.StopReason(r.Intn(9))}
	if r.Intn(2) == 0 {
		bt.Err = fmt.Errorf("some error")
	}
	for i := 0; i < n; i++ {
		f := Frame{Index: i + r.Intn(2)*300}
		f.PC, f.SP = r.Uint64()>>uint(r.Intn(64)), r.Uint64()>>uint(r.Intn(64))
		f.Trust = unwind.Trust(r.Intn(12))
		f.InProlog, f.InEpilog = r.Intn(5) == 0, r.Intn(5) == 0
		if r.Intn(4) > 0 {
			f.Loc = Location{Module: []string{"app.exe", "ntdll.dll", "x.SYS", "lib"}[r.Intn(4)], RVA: uint64(r.Intn(1 << 20))}
			if r.Intn(3) > 0 {
				f.Loc.Symbol = names[r.Intn(len(names))]
				f.Loc.SymOffset = uint64(r.Intn(3)) * uint64(r.Intn(1000))
				if r.Intn(2) == 0 {
					f.Loc.Display = names[r.Intn(len(names))]
				}
			}
			if r.Intn(2) == 0 {
				f.Loc.File, f.Loc.Line = names[r.Intn(len(names))]+".c", r.Intn(3)*r.Intn(5000)
			}
		}
		for reg := arch.RAX; reg <= arch.RIP; reg++ {
			if r.Intn(2) == 0 {
				f.Regs.Set(reg, r.Uint64()>>uint(r.Intn(64)))
				if r.Intn(2) == 0 && reg != arch.RIP {
					f.Regs.GPRAddr[reg] = r.Uint64() | 1
				}
			}
		}
		if r.Intn(2) == 0 {
			f.Regs.RIPAddr = r.Uint64() | 1
		}
		for k := 0; k < 16; k++ {
			if r.Intn(3) == 0 {
				f.Regs.SetXMM(k, unwind.Uint128{Lo: r.Uint64(), Hi: uint64(r.Intn(2)) * r.Uint64()})
				if r.Intn(2) == 0 {
					f.Regs.XMMAddr[k] = r.Uint64() | 1
				}
			}
		}
		bt.Frames = append(bt.Frames, f)
	}
	return bt
}

// TestAppendMatchesFormat: AppendTable writes what the format strings
// write, and AppendJSON what json.Marshal writes, byte for byte.
func TestAppendMatchesFormat(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	bts := []*Backtrace{}
	if bt, err := New(newFake()).Backtrace(BacktraceOptions{}); err == nil {
		bts = append(bts, bt)
	}
	for i := 0; i < 200; i++ {
		bts = append(bts, randomBacktrace(r, r.Intn(6)))
	}
	for i, bt := range bts {
		for _, full := range []bool{false, true} {
			var want bytes.Buffer
			formatTable(&want, bt, full)
			require.Equal(t, want.String(), string(bt.AppendTable(nil, full)), "backtrace %d, full %v", i, full)
		}
		want, err := json.Marshal(BacktraceJSON{Frames: bt.JSON(), End: bt.Reason.String()})
		require.NoError(t, err)
		require.Equal(t, string(want)+"\n", string(bt.AppendJSON(nil)), "backtrace %d", i)
	}
}

// TestAppendJSONHex: the quoted hex of the JSON form at the digit-count
// edges, general and XMM.
func TestAppendJSONHex(t *testing.T) {
	for _, v := range []uint64{0, 1, 0xf, 0x10, 0xff, 0x100, 0x263a08, 1 << 63, ^uint64(0)} {
		assert.Equal(t, `"`+hexs(v)+`"`, string(appendJSONHex([]byte("x"), v)[1:]), "%#x", v)
		for _, hi := range []uint64{0, 1, ^uint64(0)} {
			x := unwind.Uint128{Lo: v, Hi: hi}
			assert.Equal(t, `"`+xmmHex(x)+`"`, string(appendXMMJSON(nil, x)), "%#x %#x", hi, v)
		}
	}
}

// TestWriteBacktrace: the pieces `monitor bt` writes add up to
// AppendTable's and AppendJSON's text, for stacks shorter and much longer
// than one piece.
func TestWriteBacktrace(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for _, n := range []int{0, 1, 5, 3000} {
		bt := randomBacktrace(r, n)
		for _, mode := range []struct{ js, full bool }{{false, false}, {false, true}, {true, false}} {
			var out bytes.Buffer
			writes := 0
			buf, err := bt.writeBacktrace(writerFunc(func(p []byte) (int, error) {
				writes++
				assert.LessOrEqual(t, len(p), streamChunk+64<<10, "one piece")
				return out.Write(p)
			}), nil, mode.js, mode.full)
			require.NoError(t, err)
			want := bt.AppendTable(nil, mode.full)
			if mode.js {
				want = bt.AppendJSON(nil)
			}
			require.Equal(t, string(want), out.String(), "%d frames, %+v", n, mode)
			assert.Equal(t, len(want)/streamChunk+1, writes, "%d frames, %+v: pieces", n, mode)
			assert.Less(t, cap(buf), 2*streamChunk, "the buffer kept")
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// recursionBacktrace is what `monitor bt` finds in tests/perf's
// recurse.exe stopped in leaf(): n frames of recurse() with file and line,
// the nonvolatile registers known, the return address's slot saved.
func recursionBacktrace(n int) *Backtrace {
	bt := &Backtrace{Reason: unwind.StopZeroReturn}
	for i := 0; i < n; i++ {
		f := Frame{Index: i}
		f.PC, f.SP, f.Trust = 0x1400015b8, 0x263a50+uint64(i)*0x40, unwind.TrustPDATA
		f.Loc = Location{Module: "recurse.exe", RVA: 0x15b8, Symbol: "recurse", SymOffset: 0x28,
			File: "/work/tests/testdata/recurse.c", Line: 24}
		for _, r := range []arch.Reg{arch.RBX, arch.RBP, arch.RSI, arch.RDI, arch.R12, arch.R13, arch.R14, arch.R15, arch.RSP, arch.RIP} {
			f.Regs.Set(r, 0x2000002030*uint64(r&1))
		}
		f.Regs.RIPAddr = f.SP - 8
		for k := 6; k < 16; k++ {
			f.Regs.SetXMM(k, unwind.Uint128{})
		}
		bt.Frames = append(bt.Frames, f)
	}
	return bt
}

// BenchmarkFormatBacktrace formats a 10,000-frame backtrace as the table
// and as JSON, against the format strings and json.Marshal; "deep" is
// recursionBacktrace's, the harness's `bt -json` row.
func BenchmarkFormatBacktrace(b *testing.B) {
	deep := recursionBacktrace(10000)
	var buf []byte
	b.Run("json-deep", func(b *testing.B) {
		buf = deep.AppendJSON(buf[:0])
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			buf = deep.AppendJSON(buf[:0])
		}
	})
	b.Run("table-deep", func(b *testing.B) {
		buf = deep.AppendTable(buf[:0], false)
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			buf = deep.AppendTable(buf[:0], false)
		}
	})
	bt := randomBacktrace(rand.New(rand.NewSource(2)), 10000)
	b.Run("table", func(b *testing.B) {
		for b.Loop() {
			buf = bt.AppendTable(buf[:0], false)
		}
	})
	b.Run("table-fmt", func(b *testing.B) {
		for b.Loop() {
			formatTable(io.Discard, bt, false)
		}
	})
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			buf = bt.AppendJSON(buf[:0])
		}
	})
	b.Run("json-marshal", func(b *testing.B) {
		for b.Loop() {
			json.Marshal(BacktraceJSON{Frames: bt.JSON(), End: bt.Reason.String()})
		}
	})
}
