package elfmem

import (
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"

	"os"
	"testing"
)

// flat is memory holding b at base (the kit's fake memory).
func flat(base uint64, b []byte) *testkit.Memory {
	m := &testkit.Memory{}
	m.Map(base, b)
	return m
}

// The first pages of a real shared object (their ELF header, program
// headers and, for small ones, the dynamic section) load and decode.
func TestLoadReal(t *testing.T) {
	const path = "/lib/x86_64-linux-gnu/libc.so.6"
	b, err := os.ReadFile(path)
	if err != nil {
		testkit.Missing(t, "%v", err)
	}
	img, err := Load(flat(0x7f0000000000, b), 0x7f0000000000)
	require.NoError(t, err)
	if img.Bias != 0x7f0000000000 || img.Dynamic == 0 || img.EHFrameHdr == 0 || img.Size < 1<<20 {
		t.Errorf("image %+v", img)
	}
}

func TestReadString(t *testing.T) {
	m := flat(0x1000, []byte("hello\x00world"))
	if s, err := ReadString(m, 0x1000, 0); s != "hello" || err != nil {
		t.Errorf("%q %v", s, err)
	}
	if s, err := ReadString(m, 0x1006, 0); s != "world" || err == nil {
		t.Errorf("unterminated at the end of memory: %q %v", s, err)
	}
	if s, err := ReadString(m, 0x1000, 3); s != "hel" || err == nil {
		t.Errorf("bounded: %q %v", s, err)
	}
}

// FuzzImage: header, program headers, dynamic section and dynamic
// symbols of any bytes decode without a panic.
func FuzzImage(f *testing.F) {
	if b, err := os.ReadFile("/lib/x86_64-linux-gnu/libc.so.6"); err == nil {
		f.Add(b[:0x4000])
	}
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := flat(0x10000, b)
		img, err := Load(m, 0x10000)
		if err != nil {
			return
		}
		dyn, _ := ReadDynamic(m, img.Dynamic, img.DynamicSize)
		if len(dyn) > MaxDynamic {
			t.Fatalf("%d dynamic entries", len(dyn))
		}
		img.SoName(m, dyn)
		syms, _ := img.DynSymbols(m, dyn)
		if len(syms) > MaxSymbols {
			t.Fatalf("%d symbols", len(syms))
		}
	})
}
