// Package fuzzcorpus writes seed inputs in the file format of Go's
// native fuzzer (testdata/fuzz/FuzzName/<hash>), so that corpora drawn
// from real data (Wine DLLs, mingw images, RSP transcripts) can be
// committed beside the fuzz tests that read them.
//
// Each package keeps a TestWriteFuzzCorpus that regenerates its corpus
// when RSPSTUB_WRITE_CORPUS=1 (see the top-level Makefile, target
// fuzz-corpus); otherwise that test skips.
package fuzzcorpus

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Enabled reports whether the corpus generators should run.
func Enabled() bool { return os.Getenv("RSPSTUB_WRITE_CORPUS") == "1" }

// Marshal encodes one fuzz input (the arguments of the fuzz function, in
// order) as "go test fuzz v1". It supports the types our fuzzers take.
func Marshal(vals ...any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, v := range vals {
		switch t := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", t)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", t)
		case byte:
			fmt.Fprintf(&b, "byte(%q)\n", t)
		case bool, int, int64, uint16, uint32, uint64:
			fmt.Fprintf(&b, "%T(%v)\n", t, t)
		default:
			return nil, fmt.Errorf("fuzzcorpus: unsupported type %T", v)
		}
	}
	return b.Bytes(), nil
}

// Dir is a corpus folder being (re)written: testdata/fuzz/<name>.
type Dir struct {
	path string
	n    int
	size int
}

// Reset empties testdata/fuzz/<name> (relative to the package folder,
// the working directory of its tests) and returns it.
func Reset(name string) (*Dir, error) {
	p := filepath.Join("testdata", "fuzz", name)
	if err := os.RemoveAll(p); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return nil, err
	}
	return &Dir{path: p}, nil
}

// Add writes one input; identical inputs share a file.
func (d *Dir) Add(vals ...any) error {
	data, err := Marshal(vals...)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("%x", sha256.Sum256(data))[:16]
	if err := os.WriteFile(filepath.Join(d.path, name), data, 0o644); err != nil {
		return err
	}
	d.n++
	d.size += len(data)
	return nil
}

// String summarizes what was written.
func (d *Dir) String() string { return fmt.Sprintf("%s: %d inputs, %d bytes", d.path, d.n, d.size) }

// Set is the corpora of several fuzz tests of one package, written
// through one Add that ends the test on an error.
type Set struct {
	tb    testing.TB
	dirs  map[string]*Dir
	order []string
}

// ResetSet empties the corpora of names (see Reset); an error ends tb.
func ResetSet(tb testing.TB, names ...string) *Set {
	tb.Helper()
	s := &Set{tb: tb, dirs: map[string]*Dir{}, order: names}
	for _, n := range names {
		d, err := Reset(n)
		if err != nil {
			tb.Fatal(err)
		}
		s.dirs[n] = d
	}
	return s
}

// Add writes one input of the fuzz test name, one of the set's.
func (s *Set) Add(name string, vals ...any) {
	s.tb.Helper()
	d := s.dirs[name]
	if d == nil {
		s.tb.Fatalf("fuzzcorpus: %s is not in the set", name)
	}
	if err := d.Add(vals...); err != nil {
		s.tb.Fatal(err)
	}
}

// Log logs what was written, corpus by corpus.
func (s *Set) Log() {
	for _, n := range s.order {
		s.tb.Log(s.dirs[n])
	}
}
