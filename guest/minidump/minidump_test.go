package minidump

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unicode/utf16"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stream finds a stream's bytes through the header's directory.
func stream(t *testing.T, b []byte, kind uint32) []byte {
	t.Helper()
	le := binary.LittleEndian
	require.Equal(t, uint32(Signature), le.Uint32(b))
	n, dir := le.Uint32(b[8:]), le.Uint32(b[12:])
	for i := uint32(0); i < n; i++ {
		e := b[dir+12*i:]
		if le.Uint32(e) == kind {
			size, rva := le.Uint32(e[4:]), le.Uint32(e[8:])
			return b[rva : rva+size]
		}
	}
	t.Fatalf("no stream %d", kind)
	return nil
}

func readString(b []byte, rva uint32) string {
	n := binary.LittleEndian.Uint32(b[rva:])
	u := make([]uint16, n/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[rva+4+uint32(2*i):])
	}
	return string(utf16.Decode(u))
}

func sample() *Dump {
	var c arch.Context
	for i := range c.GPR {
		c.GPR[i] = uint64(0x1000 + i)
	}
	c.RIP, c.RFLAGS, c.CS, c.SS, c.MXCSR = 0x140001584, 0x246, 0x33, 0x2b, 0x1f80
	c.FTAG = 0xfff0 // ST0 and ST1 valid, the rest empty
	c.XMM[0][0], c.XMM[15][15] = 0xaa, 0xbb
	stack := make([]byte, 0x100)
	stack[0] = 0x5a
	return &Dump{
		PID: 7, TimeStamp: 1234,
		System: SystemInfo{Processors: 2, Major: 10, Build: 19045, PlatformID: 2, ProductType: 1},
		Threads: []Thread{{ID: 0x24, TEB: 0x7ffffffe0000, Context: c,
			Stack: Range{Addr: 0x2ffc00, Data: stack}}},
		Modules: []Module{{Base: 0x140000000, Size: 0x10000, TimeStamp: 99, Name: `C:\rspstub\demo.exe`,
			CodeView: []byte("RSDS0123456789abcdef\x01\x00\x00\x00demo.pdb\x00")}},
		Memory: []Range{
			{Addr: 0x2ffb80, Data: make([]byte, 0x100)}, // overlaps the stack's start: cut
			{Addr: 0x7ffffffe0000, Data: []byte{1, 2, 3}},
		},
		Exception: &Exception{ThreadID: 0x24, Code: 0xC0000005, Address: 0x140001584, Params: []uint64{1, 0}, Context: c},
	}
}

// TestContextLayout: the CONTEXT fields sit where winnt.h puts them.
func TestContextLayout(t *testing.T) {
	d := sample()
	b := Context(&d.Threads[0].Context)
	le := binary.LittleEndian
	require.Len(t, b, 0x4d0)
	for _, c := range []struct {
		off  int
		size int
		want uint64
		what string
	}{
		{0x30, 4, 0x10000f, "ContextFlags: AMD64|CONTROL|INTEGER|SEGMENTS|FLOATING_POINT"},
		{0x34, 4, 0x1f80, "MxCsr"},
		{0x38, 2, 0x33, "SegCs"},
		{0x42, 2, 0x2b, "SegSs"},
		{0x44, 4, 0x246, "EFlags"},
		{0x78, 8, 0x1000, "Rax (GPR 0)"},
		{0x80, 8, 0x1001, "Rcx (GPR 1: hardware order)"},
		{0x98, 8, 0x1004, "Rsp"},
		{0xf0, 8, 0x100f, "R15"},
		{0xf8, 8, 0x140001584, "Rip"},
		{0x104, 1, 0x03, "FltSave.TagWord (abridged: ST0, ST1 valid)"},
		{0x118, 4, 0x1f80, "FltSave.MxCsr"},
		{0x1a0, 1, 0xaa, "Xmm0 (FltSave+0xa0)"},
		{0x29f, 1, 0xbb, "Xmm15's last byte"},
	} {
		var got uint64
		switch c.size {
		case 1:
			got = uint64(b[c.off])
		case 2:
			got = uint64(le.Uint16(b[c.off:]))
		case 4:
			got = uint64(le.Uint32(b[c.off:]))
		default:
			got = le.Uint64(b[c.off:])
		}
		assert.Equal(t, c.want, got, "%s at %#x", c.what, c.off)
	}
}

// TestEncode: header, system info, thread (with its stack in the memory
// list), module (name, CodeView), exception and memory list read back.
func TestEncode(t *testing.T) {
	d := sample()
	b, err := Encode(d)
	require.NoError(t, err)
	le := binary.LittleEndian
	assert.Equal(t, uint32(Version), le.Uint32(b[4:]))
	assert.Equal(t, uint32(1234), le.Uint32(b[20:]))

	si := stream(t, b, SystemInfoStream)
	assert.Equal(t, uint16(9), le.Uint16(si), "PROCESSOR_ARCHITECTURE_AMD64")
	assert.Equal(t, byte(2), si[6])
	assert.Equal(t, uint32(19045), le.Uint32(si[16:]))
	assert.Equal(t, uint32(2), le.Uint32(si[20:]), "VER_PLATFORM_WIN32_NT")
	assert.Equal(t, uint32(7), le.Uint32(stream(t, b, MiscInfoStream)[8:]))

	tl := stream(t, b, ThreadListStream)
	require.Equal(t, uint32(1), le.Uint32(tl))
	th := tl[4:]
	assert.Equal(t, uint32(0x24), le.Uint32(th))
	assert.Equal(t, uint64(0x7ffffffe0000), le.Uint64(th[16:]))
	assert.Equal(t, uint64(0x2ffc00), le.Uint64(th[24:]), "stack start")
	size, rva := le.Uint32(th[32:]), le.Uint32(th[36:])
	assert.Equal(t, uint32(0x100), size)
	assert.Equal(t, byte(0x5a), b[rva])
	ctx := le.Uint32(th[44:])
	assert.Equal(t, uint64(0x140001584), le.Uint64(b[ctx+0xf8:]))

	ml := stream(t, b, ModuleListStream)
	require.Equal(t, uint32(1), le.Uint32(ml))
	m := ml[4:]
	assert.Equal(t, uint64(0x140000000), le.Uint64(m))
	assert.Equal(t, uint32(0x10000), le.Uint32(m[8:]))
	assert.Equal(t, uint32(99), le.Uint32(m[16:]))
	assert.Equal(t, `C:\rspstub\demo.exe`, readString(b, le.Uint32(m[20:])))
	cvSize, cvRVA := le.Uint32(m[76:]), le.Uint32(m[80:])
	assert.Equal(t, "RSDS", string(b[cvRVA:cvRVA+4]))
	assert.Equal(t, uint32(len(d.Modules[0].CodeView)), cvSize)

	ex := stream(t, b, ExceptionStream)
	assert.Equal(t, uint32(0x24), le.Uint32(ex))
	assert.Equal(t, uint32(0xC0000005), le.Uint32(ex[8:]))
	assert.Equal(t, uint64(0x140001584), le.Uint64(ex[24:]))
	assert.Equal(t, uint32(2), le.Uint32(ex[32:]))
	assert.Equal(t, uint64(1), le.Uint64(ex[40:]))

	// Memory: the range before the stack is cut where the stack starts.
	mem := stream(t, b, MemoryListStream)
	require.Equal(t, uint32(3), le.Uint32(mem))
	var starts, sizes []uint64
	for i := 0; i < 3; i++ {
		e := mem[4+16*i:]
		starts = append(starts, le.Uint64(e))
		sizes = append(sizes, uint64(le.Uint32(e[8:])))
	}
	assert.Equal(t, []uint64{0x2ffb80, 0x2ffc00, 0x7ffffffe0000}, starts)
	assert.Equal(t, []uint64{0x80, 0x100, 3}, sizes)
	assert.Equal(t, Summary{Threads: 1, Modules: 1, Ranges: 3, MemoryBytes: 0x183}, d.Summary())
}

// TestEncodeFull: a full dump's memory is one Memory64ListStream with the
// bytes back to back from its base RVA.
func TestEncodeFull(t *testing.T) {
	d := sample()
	d.Full = true
	b, err := Encode(d)
	require.NoError(t, err)
	le := binary.LittleEndian
	mem := stream(t, b, Memory64ListStream)
	require.Equal(t, uint64(3), le.Uint64(mem))
	base := le.Uint64(mem[8:])
	assert.Equal(t, uint64(0x2ffc00), le.Uint64(mem[16+16:]))
	assert.Equal(t, byte(0x5a), b[base+0x80], "the stack's first byte after the 0x80 cut bytes")
}

// TestEncodeLimits: counts that do not fit are errors, not panics.
func TestEncodeLimits(t *testing.T) {
	d := sample()
	d.Exception.Params = make([]uint64, 16)
	_, err := Encode(d)
	assert.Error(t, err)
	_, err = Encode(&Dump{})
	assert.NoError(t, err, "an empty dump is still a valid file")
}

// TestWriteFile: a dump replaces a regular file; devices, folders, pipes
// and kernel file systems are refused and left alone; a folder that does
// not exist is an error and leaves nothing behind.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.dmp")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o600))
	n, err := WriteFile(p, sample())
	require.NoError(t, err)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Len(t, b, n)
	assert.Equal(t, "MDMP", string(b[:4]))

	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	link := filepath.Join(dir, "null-link")
	require.NoError(t, os.Symlink(os.DevNull, link))
	for _, bad := range []string{os.DevNull, "/dev/zero", dir, fifo, link, "/proc/self/x.dmp", "/sys/x.dmp", ""} {
		_, err := WriteFile(bad, sample())
		assert.Error(t, err, bad)
	}
	st, err := os.Stat(os.DevNull)
	require.NoError(t, err)
	assert.NotZero(t, st.Mode()&os.ModeDevice)
	_, err = WriteFile(filepath.Join(dir, "no", "x.dmp"), sample())
	assert.Error(t, err)
	left, _ := filepath.Glob(filepath.Join(dir, ".x.dmp.*"))
	assert.Empty(t, left, "no temporary file left")
}
