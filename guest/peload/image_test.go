package peload

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/peimage"
)

const userLimit = 0x7FFF_FFFF_0000

func TestParseErrors(t *testing.T) {
	// A PE32 (i386) header: DOS header, "PE\0\0", machine 0x14c, an
	// optional header of 0xe0 bytes with magic 0x10b.
	i386 := make([]byte, 0x400)
	copy(i386, "MZ")
	binary.LittleEndian.PutUint32(i386[0x3c:], 0x80)
	copy(i386[0x80:], "PE\x00\x00")
	binary.LittleEndian.PutUint16(i386[0x84:], 0x14c)
	binary.LittleEndian.PutUint16(i386[0x84+16:], 0xe0)
	binary.LittleEndian.PutUint16(i386[0x98:], 0x10b)
	for _, c := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrNotPE},
		{"text", []byte("#!/bin/sh\necho hi\n"), ErrNotPE},
		{"mz only", append([]byte("MZ"), make([]byte, 100)...), ErrNotPE},
		{"i386", i386, ErrNotX64},
	} {
		_, err := Parse(c.name, c.data, userLimit)
		assert.ErrorIs(t, err, c.want, c.name)
	}
}

// TestPagePerms: each page gets the union of the sections over it;
// headers and gaps stay read-only; runs split where the permission does.
func TestPagePerms(t *testing.T) {
	const (
		text = peimage.IMAGE_SCN_CNT_CODE | peimage.IMAGE_SCN_MEM_EXECUTE | peimage.IMAGE_SCN_MEM_READ
		data = peimage.IMAGE_SCN_MEM_READ | peimage.IMAGE_SCN_MEM_WRITE
	)
	perms := PagePerms(0x5000, []Section{
		{Name: ".text", RVA: 0x1000, Size: 0x1800, Characteristics: text}, // pages 1-2
		{Name: ".data", RVA: 0x2800, Size: 0x100, Characteristics: data},  // page 2 shared with .text
		{Name: ".bss", RVA: 0x4000, Size: 0, Characteristics: data},       // empty: no pages
	})
	rx := arch.PermRead | arch.PermExec
	assert.Equal(t, []arch.Perm{arch.PermRead, rx, rx | arch.PermWrite, arch.PermRead, arch.PermRead}, perms)
	assert.Equal(t, [][2]uint64{{0, 1}, {1, 2}, {2, 3}, {3, 5}}, PermRuns(perms))
}
