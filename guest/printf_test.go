package guest

import (
	"math"
	"testing"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/arch"
)

type sliceArgs struct {
	v []uint64
	i int
}

func (a *sliceArgs) next() uint64 {
	if a.i >= len(a.v) {
		return 0
	}
	a.i++
	return a.v[a.i-1]
}

func f64(v float64) uint64 { return math.Float64bits(v) }

// TestFormatMsvcrt compares our printf with msvcrt's output. The expected
// strings are what Wine's msvcrt.dll printed for the same calls (a mingw
// program built with -D__USE_MINGW_ANSI_STDIO=0, run under wine 8).
func TestFormatMsvcrt(t *testing.T) {
	fm := newFakeMachine()
	if err := fm.Map(0x10000, process.PageSize, arch.PermRW); err != nil {
		t.Fatal(err)
	}
	p := &Process{m: fm, mem: process.NewMemory(fm)}
	str := map[string]uint64{}
	off := uint64(0x10000)
	for _, s := range []string{"xyz", "right", "left"} {
		fm.WriteMemory(off, append([]byte(s), 0))
		str[s] = off
		off += 16
	}
	ms := printfStyle{expDigits: 3, roundHalfUp: true}
	cases := []struct {
		f    string
		args []uint64
		want string
	}{
		{"[%5d|%-5d|%05d|%+d|% d|%x|%X|%#x|%#o|%o|%lld|%llu|%zu|%c|%%]",
			[]uint64{42, 42, 42, 42, 42, 255, 255, 255, 8, 8, neg(-1234567890123), ^uint64(0), 8, 'Z'},
			"[   42|42   |00042|+42| 42|ff|FF|0xff|010|10|-1234567890123|18446744073709551615|8|Z|%]"},
		{"[%.3f|%8.2f|%e|%E|%g|%g|%G|%.1s|%10s|%-10s|]",
			[]uint64{f64(3.14159), f64(-2.5), f64(12345.678), f64(0.00012), f64(0.0001), f64(100000000.0), f64(1e-10), str["xyz"], str["right"], str["left"]},
			"[3.142|   -2.50|1.234568e+004|1.200000E-004|0.0001|1e+008|1E-010|x|     right|left      |]"},
		{"[%f|%.0f|%#.0f|%5.1e|%g|%g|%.3g|%#g]",
			[]uint64{f64(0), f64(2.5), f64(2.0), f64(123.456), f64(123456.0), f64(1234567.0), f64(3.14159), f64(1.0)},
			"[0.000000|3|2.|1.2e+002|123456|1.23457e+006|3.14|1.00000]"},
		{"[%p|%s|%.*d|%*d|%-*d|]", []uint64{0xabcdef, 0, 5, 42, 6, 7, 4, 3},
			"[0000000000ABCDEF|(null)|00042|     7|3   |]"},
		{"[%hd|%hhd|%ld|%I64d|%lu|%i]", []uint64{70000, 300, uint64(0xFFFFFFFB), ^uint64(8), 4000000000, uint64(0xFFFFFFFD)},
			"[4464|300|-5|-9|4000000000|-3]"},
		{"[%.0e|%#x|%x|%.5d|%3c|]", []uint64{f64(15000.0), 0, 0, uint64(0xFFFFFFD6), 'q'},
			"[2e+004|0|0|-00042|  q|]"},
		{"%.2f %.2f %.1f", []uint64{f64(0.125), f64(-0.375), f64(0.25)}, "0.13 -0.38 0.3"},
	}
	for _, c := range cases {
		got, err := p.format(c.f, &sliceArgs{v: c.args}, ms)
		if err != nil {
			t.Errorf("%q: %v", c.f, err)
		}
		if got != c.want {
			t.Errorf("format %q\n got %q\nwant %q", c.f, got, c.want)
		}
	}
	// The ucrt rounds to nearest even and prints two exponent digits.
	got, _ := p.format("%.0f %.2f %e", &sliceArgs{v: []uint64{f64(2.5), f64(0.125), f64(12345.678)}}, printfStyle{expDigits: 2})
	if want := "2 0.12 1.234568e+04"; got != want {
		t.Errorf("ucrt style: got %q want %q", got, want)
	}
}

func neg(v int64) uint64 { return uint64(v) }
