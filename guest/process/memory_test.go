package process

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pageMem is guest memory of one readable page at 0x1000 (reads past it
// are short, like the emulator's).
type pageMem struct{ b [PageSize]byte }

func (m *pageMem) ReadMemory(addr uint64, p []byte) (int, error) {
	if addr < 0x1000 || addr >= 0x2000 {
		return 0, nil
	}
	return copy(p, m.b[addr-0x1000:]), nil
}

var errRefused = errors.New("refused")

func (m *pageMem) WriteMemory(addr uint64, p []byte) (int, error) {
	if addr < 0x1000 || addr >= 0x2000 {
		return 0, errRefused
	}
	return copy(m.b[addr-0x1000:], p), nil
}

func TestMemory(t *testing.T) {
	pm := &pageMem{}
	mem := NewMemory(pm)
	require.NoError(t, mem.WriteU64(0x1000, 0x1122334455667788))
	v, err := mem.ReadU32(0x1004)
	require.NoError(t, err)
	assert.Equal(t, uint32(0x11223344), v)

	// A read that runs off the page is not whole: a MemoryError.
	_, err = mem.ReadU64(0x1FFC)
	var me *MemoryError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, MemoryError{Op: "read", Addr: 0x1FFC, N: 8}, *me)
	assert.EqualError(t, err, "read 8 bytes at 0x1ffc: memory not accessible")

	// A refused write carries the emulator's error.
	err = mem.WriteU32(0x3000, 1)
	require.ErrorAs(t, err, &me)
	assert.ErrorIs(t, err, errRefused)

	// Strings: a C string ending at the page's end is read up to it with
	// an error; a UTF-16 one round-trips.
	copy(pm.b[PageSize-3:], "abc")
	s, err := mem.ReadCString(0x2000-3, 0)
	assert.Equal(t, "abc", s)
	require.ErrorAs(t, err, &me)
	require.NoError(t, mem.Write(0x1100, UTF16Bytes("héllo", true)))
	w, err := mem.ReadWString(0x1100, 0)
	require.NoError(t, err)
	assert.Equal(t, "héllo", w)
	w, err = mem.ReadWStringN(0x1100, 2)
	require.NoError(t, err)
	assert.Equal(t, "hé", w)
	assert.Equal(t, "hé", DecodeUTF16(UTF16Bytes("hé", false)))
}
