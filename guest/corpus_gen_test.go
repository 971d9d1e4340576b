package guest

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/rspstub/rspstub/internal/fuzzcorpus"
)

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzLoad when
// RSPSTUB_WRITE_CORPUS=1 (make fuzz-corpus): small stripped programs built
// by mingw-w64 (hello.c, with and without optimization) and three small
// Wine DLLs, once as they are and once
// flagged as an executable so the loader goes past its first check.
func TestWriteFuzzCorpus(t *testing.T) {
	if !fuzzcorpus.Enabled() {
		t.Skip("set RSPSTUB_WRITE_CORPUS=1 to regenerate the fuzz corpus")
	}
	d, err := fuzzcorpus.Reset("FuzzLoad")
	if err != nil {
		t.Fatal(err)
	}
	add := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Add(b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	add(buildC(t, "hello-O2-s", "hello.c", []string{"x86_64-w64-mingw32-gcc", "-O2", "-s"}))
	add(buildC(t, "hello-O0-s", "hello.c", []string{"x86_64-w64-mingw32-gcc", "-O0", "-s"}))
	for _, name := range []string{"sfc.dll", "normaliz.dll", "security.dll"} {
		b := add(filepath.Join("/usr/lib/x86_64-linux-gnu/wine/x86_64-windows", name))
		if len(b) < 0x200 {
			continue
		}
		exe := append([]byte(nil), b...)
		pe := int(binary.LittleEndian.Uint32(exe[0x3c:]))
		if pe+0x60 > len(exe) {
			continue
		}
		binary.LittleEndian.PutUint16(exe[pe+22:], 0x22) // EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE
		if err := d.Add(exe); err != nil {
			t.Fatal(err)
		}
	}
	t.Log(d)
}
