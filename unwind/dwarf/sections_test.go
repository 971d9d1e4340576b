package dwarf

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tinyPE builds a PE32+ file whose CFI sections have long names: one
// "/4" (decimal string table offset) and one "//AAAAAR" (base64, 17).
func tinyPE() []byte {
	f := make([]byte, 0xa40)
	le := binary.LittleEndian
	copy(f, "MZ")
	le.PutUint32(f[0x3c:], 0x40) // e_lfanew
	copy(f[0x40:], "PE\x00\x00")
	coff := f[0x44:]
	le.PutUint16(coff[0:], 0x8664) // Machine: AMD64
	le.PutUint16(coff[2:], 3)      // NumberOfSections
	le.PutUint32(coff[8:], 0xa00)  // PointerToSymbolTable
	le.PutUint32(coff[12:], 1)     // NumberOfSymbols (18 bytes each)
	le.PutUint16(coff[16:], 0xf0)  // SizeOfOptionalHeader
	opt := f[0x58:]
	le.PutUint16(opt[0:], 0x20b)        // PE32+
	le.PutUint64(opt[24:], 0x140000000) // ImageBase
	sec := func(i int, name string, vsize, va, rawSize, rawPtr uint32) {
		h := f[0x58+0xf0+40*i:]
		copy(h[:8], name)
		le.PutUint32(h[8:], vsize)
		le.PutUint32(h[12:], va)
		le.PutUint32(h[16:], rawSize)
		le.PutUint32(h[20:], rawPtr)
	}
	sec(0, ".text", 0x10, 0x1000, 0x200, 0x400)
	sec(1, "/4", 8, 0x2000, 0x200, 0x600)           // .debug_frame, VirtualSize 8
	sec(2, "//AAAAAR", 0x200, 0x3000, 0x200, 0x800) // .eh_frame
	copy(f[0x600:], "DFDFDFDFxxxx")                 // raw data past VirtualSize is padding
	copy(f[0x800:], "EHEH")
	st := f[0xa00+18:] // the string table follows the one symbol
	le.PutUint32(st, 4+13+10)
	copy(st[4:], ".debug_frame\x00.eh_frame\x00")
	return f
}

func TestPESectionsLongNames(t *testing.T) {
	s, err := PESections(tinyPE())
	if err != nil {
		t.Fatal(err)
	}
	if s.ImageBase != 0x140000000 || s.Bases.Text != 0x140001000 {
		t.Errorf("image base %#x text %#x", s.ImageBase, s.Bases.Text)
	}
	if s.DebugFrame == nil || string(s.DebugFrame.Data) != "DFDFDFDF" || s.DebugFrame.Addr != 0x140002000 {
		t.Errorf(".debug_frame %+v", s.DebugFrame)
	}
	if s.EHFrame == nil || s.EHFrame.Addr != 0x140003000 || len(s.EHFrame.Data) != 0x200 || string(s.EHFrame.Data[:4]) != "EHEH" {
		t.Errorf(".eh_frame %+v", s.EHFrame)
	}
}

func TestPESectionsErrors(t *testing.T) {
	good := tinyPE()
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name string
		file []byte
		want error
	}{
		{"empty", nil, ErrNotPE},
		{"ELF", []byte("\x7fELF\x02\x01\x01"), ErrNotPE},
		{"e_lfanew past the end", mod(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[0x3c:], 0xffff0); return b }), ErrNotPE},
		{"PE32 magic wrong", mod(func(b []byte) []byte { b[0x58] = 0; return b }), ErrNotPE},
		{"sections past the headers", mod(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[0x46:], 0xffff); return b }), ErrTruncated},
		{"name offset outside the string table", mod(func(b []byte) []byte { copy(b[0x58+0xf0+40:], "/999\x00"); return b }), ErrTruncated},
		{"headers cut short", good[:0x100], ErrTruncated},
	} {
		_, err := PESections(tc.file)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// A string table that is missing leaves long names unresolved: the
	// sections are simply not found.
	s, err := PESections(mod(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[0x44+8:], 0); return b }))
	if err == nil && (s.DebugFrame != nil || s.EHFrame != nil) {
		t.Errorf("found CFI sections without a string table: %+v", s)
	} else if err != nil && !errors.Is(err, ErrTruncated) {
		t.Errorf("no string table: %v", err)
	}
}

func TestELFSectionsErrors(t *testing.T) {
	f, err := os.Open("testdata/frames.c")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := ELFSections(f); !errors.Is(err, ErrNotELF) {
		t.Errorf("C source as ELF: %v", err)
	}
}

// zdebugPE is tinyPE with its .debug_frame renamed .zdebug_frame and
// holding raw (a GNU-style compressed section, as Go's linker writes).
func zdebugPE(t testing.TB, raw []byte) []byte {
	t.Helper()
	f := tinyPE()
	require.LessOrEqual(t, len(raw), 0x200)
	binary.LittleEndian.PutUint32(f[0x58+0xf0+40+8:], uint32(len(raw))) // VirtualSize
	copy(f[0x600:0x800], make([]byte, 0x200))
	copy(f[0x600:], raw)
	copy(f[0x58+0xf0+80:], "//AAAAAS") // .eh_frame now at string table offset 18
	st := f[0xa00+18:]
	binary.LittleEndian.PutUint32(st, 4+14+10)
	copy(st[4:], ".zdebug_frame\x00.eh_frame\x00")
	return f
}

// zlibSection compresses data as a .zdebug_ section: "ZLIB", the size
// (8 bytes, big-endian), a zlib stream.
func zlibSection(data []byte, size uint64) []byte {
	var b bytes.Buffer
	b.WriteString("ZLIB")
	binary.Write(&b, binary.BigEndian, size)
	w := zlib.NewWriter(&b)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

func TestPESectionsZDebug(t *testing.T) {
	frame := []byte("DFDFDFDF, uncompressed")
	s, err := PESections(zdebugPE(t, zlibSection(frame, uint64(len(frame)))))
	require.NoError(t, err)
	require.NotNil(t, s.DebugFrame)
	assert.Equal(t, frame, s.DebugFrame.Data)
	assert.Equal(t, uint64(0x140002000), s.DebugFrame.Addr)
	require.NotNil(t, s.EHFrame)

	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"no ZLIB header", []byte("ZLIX\x00\x00\x00\x00\x00\x00\x00\x10xxxx")},
		{"stated size larger than the stream", zlibSection(frame, uint64(len(frame))+1)},
		{"stated size beyond the limit", zlibSection(frame, MaxZDebug+1)},
		{"not a zlib stream", []byte("ZLIB\x00\x00\x00\x00\x00\x00\x00\x10not zlib")},
		{"header cut short", []byte("ZLIB\x00\x00")},
	} {
		_, err := PESections(zdebugPE(t, tc.raw))
		assert.ErrorIs(t, err, ErrCompressed, tc.name)
	}
}
