package dwarf

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/rspstub/rspstub/internal/fuzzcorpus"
)

// entries returns the prefix of a CFI section made of whole entries, at
// most limit bytes (and at least the first entry).
func entries(data []byte, limit int) []byte {
	off := 0
	for off+4 <= len(data) {
		n := int(binary.LittleEndian.Uint32(data[off:]))
		if n == 0 || n >= 0xfffffff0 || off+4+n > len(data) {
			break
		}
		if off > 0 && off+4+n > limit {
			break
		}
		off += 4 + n
	}
	return data[:off]
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/ from real sections when
// RSPSTUB_WRITE_CORPUS=1 (make fuzz-corpus): .debug_frame of Wine's PE
// DLLs, .eh_frame and .eh_frame_hdr of the host's ELF binaries, the CFA
// programs and DWARF expressions found in them, and whole small PE files.
func TestWriteFuzzCorpus(t *testing.T) {
	if !fuzzcorpus.Enabled() {
		t.Skip("set RSPSTUB_WRITE_CORPUS=1 to regenerate the fuzz corpus")
	}
	set := fuzzcorpus.ResetSet(t, "FuzzEHFrame", "FuzzDebugFrame", "FuzzCFAProgram", "FuzzEHFrameHdr", "FuzzEval", "FuzzPESections")
	add := set.Add
	programs := map[string]bool{}
	exprs := map[string]bool{}
	harvest := func(tab *Table) {
		for i, f := range tab.FDEs {
			if i > 400 {
				break
			}
			for _, p := range [][]byte{f.Instructions, f.CIE.Instructions} {
				if len(p) > 0 && len(p) < 200 && len(programs) < 120 && !programs[string(p)] {
					programs[string(p)] = true
					add("FuzzCFAProgram", append([]byte(nil), p...))
				}
			}
			_ = f.EachRow(func(r *Row) bool {
				ex := [][]byte{r.CFA.Expr}
				for _, rule := range r.Regs {
					ex = append(ex, rule.Expr)
				}
				for _, e := range ex {
					if len(e) > 0 && len(exprs) < 60 && !exprs[string(e)] {
						exprs[string(e)] = true
						add("FuzzEval", append([]byte(nil), e...), uint64(0x7ffe0000))
					}
				}
				return true
			})
		}
	}
	// Wine PE DLLs: .debug_frame prefixes; the three smallest files whole.
	files, _ := filepath.Glob(filepath.Join(wineDir, "*.dll"))
	if len(files) == 0 {
		t.Fatalf("no Wine DLLs in %s", wineDir)
	}
	sort.Strings(files)
	type sized struct {
		path string
		n    int64
	}
	var small []sized
	for i, p := range files {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		small = append(small, sized{p, fi.Size()})
		if i%50 != 0 {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s, err := PESections(data)
		if err != nil || s.DebugFrame == nil {
			continue
		}
		df := entries(s.DebugFrame.Data, 1500)
		add("FuzzDebugFrame", df)
		if tab, err := ParseDebugFrame(s.DebugFrame.Data, 0); err == nil {
			harvest(tab)
		}
	}
	sort.Slice(small, func(i, j int) bool { return small[i].n < small[j].n })
	for _, s := range small[:3] {
		data, err := os.ReadFile(s.path)
		if err != nil {
			t.Fatal(err)
		}
		add("FuzzPESections", data)
	}
	// Host ELF files: .eh_frame prefixes and .eh_frame_hdr heads.
	elfs := []string{"/bin/ls", "/bin/sh", "/usr/bin/gdb", "/usr/bin/qemu-x86_64"}
	libs, _ := filepath.Glob("/lib/x86_64-linux-gnu/lib[cmz]*.so*")
	elfs = append(elfs, libs...)
	n := 0
	for _, p := range elfs {
		fh, err := os.Open(p)
		if err != nil {
			continue
		}
		s, err := ELFSections(fh)
		fh.Close()
		if err != nil || s.EHFrame == nil || n >= 12 {
			continue
		}
		n++
		add("FuzzEHFrame", entries(s.EHFrame.Data, 1500))
		if s.EHFrameHdr != nil && len(s.EHFrameHdr.Data) >= 12 {
			add("FuzzEHFrameHdr", s.EHFrameHdr.Data[:min(len(s.EHFrameHdr.Data), 12+8*16)])
		}
		if tab, err := ParseEHFrame(s.EHFrame.Data, s.EHFrame.Addr, s.Bases); err == nil {
			harvest(tab)
		}
	}
	set.Log()
}
