package peimage

import (
	"github.com/rspstub/rspstub/internal/testkit"

	"bytes"
	"debug/pe"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const wineDLLs = "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows"

// TestWineDLLs: every PE file of Wine's x86-64 DLL folder parses, lays
// out, relocates to another base and lists its exports, and debug/pe's
// view of the headers agrees.
func TestWineDLLs(t *testing.T) {
	files := testkit.RequireGlob(t, filepath.Join(wineDLLs, "*.dll"), "Wine's PE DLLs (package libwine)")
	if len(files) > 60 {
		files = files[:60]
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		f, err := Parse(data)
		require.NoError(t, err, path)
		assert.Equal(t, uint16(IMAGE_FILE_MACHINE_AMD64), f.Machine, path)
		img, err := f.Layout()
		require.NoError(t, err, path)
		assert.Len(t, img, int(f.SizeOfImage))
		_, err = f.Exports(img)
		assert.NoError(t, err, path)
		if f.DataDirectory[IMAGE_DIRECTORY_ENTRY_BASERELOC].Size != 0 {
			assert.NoError(t, f.Relocate(img, f.ImageBase+0x10000000), path)
		}
	}
}

func TestKernel32Exports(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(wineDLLs, "kernel32.dll"))
	if err != nil {
		testkit.Missing(t, "Wine's kernel32.dll (package libwine): %v", err)
	}
	f, err := Parse(data)
	require.NoError(t, err)
	img, err := f.Layout()
	require.NoError(t, err)
	assert.Equal(t, "KERNEL32.dll", f.ExportName(img))
	exps, err := f.Exports(img)
	require.NoError(t, err)
	found := map[string]Export{}
	for _, e := range exps {
		found[e.Name] = e
	}
	assert.NotZero(t, found["BaseThreadInitThunk"].RVA)
	assert.Equal(t, "NTDLL.RtlAcquireSRWLockExclusive", found["AcquireSRWLockExclusive"].Forwarder)
}

func TestBadImages(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":  nil,
		"no MZ":  make([]byte, 0x100),
		"lfanew": append([]byte("MZ"), make([]byte, 0x3e)...),
	} {
		_, err := Parse(data)
		assert.ErrorIs(t, err, ErrNotPE, name)
	}
}

// TestHeadersMatchDebugPE holds the header walk against Go's debug/pe
// (an independent reader) on Wine's DLLs: file header, optional header,
// sections and imported symbols; and reading the same image mapped in
// memory gives the same headers.
func TestHeadersMatchDebugPE(t *testing.T) {
	files := testkit.RequireGlob(t, filepath.Join(wineDLLs, "*.dll"), "Wine's PE DLLs (package libwine)")
	if len(files) > 40 {
		files = files[:40]
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		want, err := pe.NewFile(bytes.NewReader(data))
		require.NoError(t, err, path)
		got, err := ReadFile(bytes.NewReader(data), int64(len(data)))
		require.NoError(t, err, path)
		assert.Equal(t, want.FileHeader.Machine, got.Machine, path)
		assert.Equal(t, want.FileHeader.NumberOfSections, got.NumberOfSections, path)
		assert.Equal(t, want.FileHeader.TimeDateStamp, got.TimeDateStamp, path)
		assert.Equal(t, want.FileHeader.Characteristics, got.Characteristics, path)
		oh, ok := want.OptionalHeader.(*pe.OptionalHeader64)
		require.True(t, ok, path)
		assert.Equal(t, oh.ImageBase, got.ImageBase, path)
		assert.Equal(t, oh.SizeOfImage, got.SizeOfImage, path)
		assert.Equal(t, oh.AddressOfEntryPoint, got.AddressOfEntryPoint, path)
		assert.Equal(t, oh.SizeOfStackReserve, got.SizeOfStackReserve, path)
		assert.Equal(t, oh.MajorSubsystemVersion, got.MajorSubsystemVersion, path)
		for i, d := range oh.DataDirectory {
			assert.Equal(t, DataDirectory{d.VirtualAddress, d.Size}, got.DataDirectory[i], "%s directory %d", path, i)
		}
		require.Len(t, got.Sections, len(want.Sections), path)
		for i, s := range want.Sections {
			g := got.Sections[i]
			assert.Equal(t, s.Name, g.Name, path)
			assert.Equal(t, [4]uint32{s.VirtualSize, s.VirtualAddress, s.Size, s.Offset},
				[4]uint32{g.VirtualSize, g.VirtualAddress, g.SizeOfRawData, g.PointerToRawData}, "%s %s", path, s.Name)
			assert.Equal(t, s.Characteristics, g.Characteristics, path)
		}

		f, err := Parse(data)
		require.NoError(t, err, path)
		img, err := f.Layout()
		require.NoError(t, err, path)
		mapped, err := ReadHeaders(Bytes(img), 0)
		require.NoError(t, err, path)
		assert.Equal(t, got.FileHeader, mapped.FileHeader, path)
		assert.Equal(t, got.OptionalHeader64, mapped.OptionalHeader64, path)

		syms, err := want.ImportedSymbols()
		require.NoError(t, err, path)
		imps, err := f.Imports(img)
		require.NoError(t, err, path)
		var mine []string
		for _, imp := range imps {
			for _, fn := range imp.Functions {
				if !fn.ByOrdinal {
					mine = append(mine, fn.Name+":"+imp.Name)
				}
			}
		}
		assert.ElementsMatch(t, syms, mine, path)
	}
}

// TestShortMemory: headers cut by unreadable memory are a *ReadError that
// names what was cut, never a panic.
func TestShortMemory(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(wineDLLs, "kernel32.dll"))
	if err != nil {
		testkit.Missing(t, "Wine's kernel32.dll (package libwine): %v", err)
	}
	f, err := Parse(data)
	require.NoError(t, err)
	for _, c := range []struct {
		cut   uint64
		what  string
		notPE bool
	}{
		{0x20, "DOS header", true},
		{uint64(f.NTHeaderOffset) + 10, "NT headers", true},
		{uint64(f.NTHeaderOffset) + 100, "optional header", false},
		{f.SectionTableOffset() + 10, "section headers", false},
	} {
		_, err := ReadHeaders(Bytes(data[:c.cut]), 0)
		var re *ReadError
		require.ErrorAs(t, err, &re, c.what)
		assert.Equal(t, c.what, re.What)
		assert.Equal(t, c.notPE, errors.Is(err, ErrNotPE), c.what)
	}
}

// FuzzPE: no input makes the reader panic or hang, through every entry
// point: the header walk over memory and over a file, Parse, Layout,
// Relocate, Exports and Imports. The seed corpus (testdata/fuzz/FuzzPE)
// holds the guest loader's and the CFI reader's PE inputs; Wine's small
// DLLs are added when installed.
func FuzzPE(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(wineDLLs, "*.dll"))
	n := 0
	for _, path := range files {
		if st, err := os.Stat(path); err != nil || st.Size() >= 32<<10 || n >= 8 {
			continue
		}
		if data, err := os.ReadFile(path); err == nil {
			f.Add(data)
			n++
		}
	}
	f.Add([]byte("MZ"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if h, err := ReadHeaders(Bytes(data), 0); err == nil {
			h.ReadExportTable(Bytes(data), 0)
		}
		ReadFile(bytes.NewReader(data), int64(len(data)))
		p, err := Parse(data)
		if err != nil {
			return
		}
		if p.SizeOfImage > 4<<20 {
			return // laying out huge images costs memory, not coverage
		}
		img, err := p.Layout()
		if err != nil {
			return
		}
		p.Exports(img)
		p.ExportName(img)
		p.Imports(img)
		p.Relocate(img, p.ImageBase+0x10000)
		p.PutImageBase(img, p.ImageBase+0x10000)
		for _, s := range p.Sections {
			p.RVAToOffset(s.VirtualAddress)
		}
	})
}
