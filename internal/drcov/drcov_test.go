package drcov

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWrite: the header, the module table and the binary block records
// sorted by module and offset; blocks naming no module are left out.
func TestWrite(t *testing.T) {
	var b bytes.Buffer
	mods := []Module{
		{Base: 0x140000000, End: 0x14003e000, Entry: 0x140001500, TimeStamp: 0x6571c2a1, Path: "/tmp/p.exe"},
		{Base: 0x7ffb00000000, End: 0x7ffb00010000, Path: `C:\windows\system32\ntdll.dll`},
	}
	require.NoError(t, Write(&b, "rspstub", mods, []Block{
		{Module: 1, Offset: 0x10, Size: 5},
		{Module: 0, Offset: 0x1600, Size: 0x21},
		{Module: 2, Offset: 0, Size: 1},
	}))
	want := "DRCOV VERSION: 2\nDRCOV FLAVOR: rspstub\n" +
		"Module Table: version 2, count 2\n" +
		"Columns: id, base, end, entry, checksum, timestamp, path\n" +
		" 0, 0x0000000140000000, 0x000000014003e000, 0x0000000140001500, 0x00000000, 0x6571c2a1, /tmp/p.exe\n" +
		" 1, 0x00007ffb00000000, 0x00007ffb00010000, 0x0000000000000000, 0x00000000, 0x00000000, C:\\windows\\system32\\ntdll.dll\n" +
		"BB Table: 2 bbs\n" +
		"\x00\x16\x00\x00\x21\x00\x00\x00" +
		"\x10\x00\x00\x00\x05\x00\x01\x00"
	assert.Equal(t, want, b.String())
}
