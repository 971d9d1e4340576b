package main

import (
	"bufio"
	"bytes"
	"debug/pe"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
)

// drcovFile is a parsed drcov file.
type drcovFile struct {
	flavor string
	mods   []drcovModule
	blocks []drcovBlock
}

type drcovModule struct {
	id        int
	base, end uint64
	path      string
}

type drcovBlock struct {
	start uint32
	size  uint16
	mod   uint16
}

// parseDrcov reads a drcov version 2 file with a version 2 module table
// (the test's own reading of the format, independent of the writer).
func parseDrcov(b []byte) (*drcovFile, error) {
	r := bufio.NewReader(bytes.NewReader(b))
	line := func() (string, error) {
		s, err := r.ReadString('\n')
		return strings.TrimSuffix(s, "\n"), err
	}
	f := &drcovFile{}
	if s, err := line(); err != nil || s != "DRCOV VERSION: 2" {
		return nil, fmt.Errorf("version line %q", s)
	}
	s, _ := line()
	var ok bool
	if f.flavor, ok = strings.CutPrefix(s, "DRCOV FLAVOR: "); !ok {
		return nil, fmt.Errorf("flavor line %q", s)
	}
	s, _ = line()
	var n int
	if _, err := fmt.Sscanf(s, "Module Table: version 2, count %d", &n); err != nil {
		return nil, fmt.Errorf("module table line %q: %v", s, err)
	}
	if s, _ = line(); s != "Columns: id, base, end, entry, checksum, timestamp, path" {
		return nil, fmt.Errorf("columns line %q", s)
	}
	for i := 0; i < n; i++ {
		s, _ = line()
		c := strings.SplitN(s, ", ", 7)
		if len(c) != 7 {
			return nil, fmt.Errorf("module line %q", s)
		}
		id, err1 := strconv.Atoi(strings.TrimSpace(c[0]))
		base, err2 := strconv.ParseUint(c[1], 0, 64)
		end, err3 := strconv.ParseUint(c[2], 0, 64)
		if err1 != nil || err2 != nil || err3 != nil || id != i || end <= base {
			return nil, fmt.Errorf("module line %q", s)
		}
		f.mods = append(f.mods, drcovModule{id, base, end, c[6]})
	}
	s, _ = line()
	if _, err := fmt.Sscanf(s, "BB Table: %d bbs", &n); err != nil {
		return nil, fmt.Errorf("bb table line %q: %v", s, err)
	}
	rest := make([]byte, 8*n+1)
	got, _ := r.Read(rest)
	for got < len(rest) {
		k, err := r.Read(rest[got:])
		if k == 0 || err != nil {
			break
		}
		got += k
	}
	if got != 8*n {
		return nil, fmt.Errorf("BB table: %d bytes for %d blocks", got, n)
	}
	for i := 0; i < n; i++ {
		e := rest[8*i:]
		blk := drcovBlock{binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint16(e[4:]), binary.LittleEndian.Uint16(e[6:])}
		if int(blk.mod) >= len(f.mods) || uint64(blk.start)+uint64(blk.size) > f.mods[blk.mod].end-f.mods[blk.mod].base {
			return nil, fmt.Errorf("block %d out of its module: %+v", i, blk)
		}
		f.blocks = append(f.blocks, blk)
	}
	return f, nil
}

// funcRange returns the RVA range of a function of a PE from its COFF
// symbols: from its address to the next symbol's in the same section.
func funcRange(t *testing.T, exe, name string) (uint32, uint32) {
	t.Helper()
	f, err := pe.Open(exe)
	require.NoError(t, err)
	defer f.Close()
	var addrs []uint32
	var at uint32
	for _, s := range f.Symbols {
		if s.SectionNumber <= 0 || int(s.SectionNumber) > len(f.Sections) {
			continue
		}
		sec := f.Sections[s.SectionNumber-1]
		if sec.Name != ".text" {
			continue
		}
		a := sec.VirtualAddress + s.Value
		addrs = append(addrs, a)
		if s.Name == name {
			at = a
		}
	}
	require.NotZero(t, at, "symbol %s", name)
	sort.Slice(addrs, func(i, j int) bool { return addrs[i] < addrs[j] })
	for _, a := range addrs {
		if a > at {
			return at, a
		}
	}
	require.FailNow(t, "no symbol after", name)
	return 0, 0
}

// coveredIn counts the bytes of [lo, hi) the blocks of module mod cover
// and reports whether a block starts at lo.
func coveredIn(f *drcovFile, mod uint16, lo, hi uint32) (bytes int, entry bool) {
	seen := map[uint32]bool{}
	for _, b := range f.blocks {
		if b.mod != mod {
			continue
		}
		if b.start == lo {
			entry = true
		}
		for a := b.start; a < b.start+uint32(b.size); a++ {
			if a >= lo && a < hi && !seen[a] {
				seen[a] = true
				bytes++
			}
		}
	}
	return bytes, entry
}

// TestRunTraceAndCoverage: rspstub run --trace-api --coverage on
// apitrace.exe, both userlands: the trace holds WriteFile with its
// decoded buffer and result and GetLastError's value; the drcov file
// parses, lists the program first, covers main from its first byte and
// most of it, and has no block in never_called.
func TestRunTraceAndCoverage(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/apitrace.c", testkit.MinGW, "-O0")
	mainLo, mainHi := funcRange(t, exe, "main")
	neverLo, neverHi := funcRange(t, exe, "never_called")
	for _, land := range []string{"synth", "wine"} {
		t.Run(land, func(t *testing.T) {
			if land == "wine" {
				testkit.NeedWine(t)
			}
			dir := t.TempDir()
			trace, cov := filepath.Join(dir, "trace.jsonl"), filepath.Join(dir, "cov.drcov")
			var o, e bytes.Buffer
			code := run([]string{"run", "--userland", land, "--trace-api", trace, "--coverage", cov, exe}, &o, &e)
			require.Equal(t, 7, code, "stderr: %s", e.String())

			b, err := os.ReadFile(trace)
			require.NoError(t, err)
			var calls []map[string]any
			sc := bufio.NewScanner(bytes.NewReader(b))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var m map[string]any
				require.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
				calls = append(calls, m)
			}
			var write, lastErr map[string]any
			for _, c := range calls {
				switch api, _ := c["api"].(string); {
				case strings.HasSuffix(strings.ToLower(api), "!writefile") && c["kind"] == "api":
					write = c
				case strings.HasSuffix(strings.ToLower(api), "!getlasterror"):
					lastErr = c
				}
			}
			require.NotNil(t, write, "%s", b)
			assert.Equal(t, "0x1", write["ret"])
			assert.Contains(t, write["caller"], "!main+0x")
			assert.Contains(t, string(b), `"name":"lpBuffer","value":"0x`)
			assert.Contains(t, string(b), `"str":"traced line\n"`)
			require.NotNil(t, lastErr)
			assert.Equal(t, "0x4d2", lastErr["ret"])

			cb, err := os.ReadFile(cov)
			require.NoError(t, err)
			f, err := parseDrcov(cb)
			require.NoError(t, err)
			assert.Equal(t, "rspstub", f.flavor)
			require.NotEmpty(t, f.mods)
			assert.Equal(t, filepath.Base(exe), filepath.Base(f.mods[0].path))
			n, entry := coveredIn(f, 0, mainLo, mainHi)
			t.Logf("%d modules, %d blocks; main [%#x,%#x): %d bytes covered", len(f.mods), len(f.blocks), mainLo, mainHi, n)
			assert.True(t, entry, "a block starts at main")
			assert.Greater(t, n, int(mainHi-mainLo)/2, "most of main is covered")
			n, _ = coveredIn(f, 0, neverLo, neverHi)
			assert.Zero(t, n, "never_called has no coverage")
		})
	}
}
