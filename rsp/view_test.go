package rsp

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// viewTarget shows the test target's memory in place (MemoryViewer).
type viewTarget struct {
	*testTarget
	views, used int
}

func (v *viewTarget) ViewMemory(addr uint64, n int) []byte {
	v.views++
	for _, r := range v.regions {
		if addr >= r.Start && addr-r.Start+uint64(n) <= r.Size {
			v.used++
			return r.data[addr-r.Start : addr-r.Start+uint64(n)]
		}
	}
	return nil
}

// TestMemoryViewer: `x` replies escape a MemoryViewer's memory in place
// and give the bytes ReadMemory gives (the code region holds every byte
// value, the four the protocol escapes among them); a read the view cannot
// cover whole (past a region's end) goes through ReadMemory, with the
// same short reply as a target without a view; `m` never asks the view.
func TestMemoryViewer(t *testing.T) {
	plain := serveTCP(t, newTestTarget())
	vt := &viewTarget{testTarget: newTestTarget()}
	viewed := serveTCP(t, vt)
	cp, err := Dial(plain.addr)
	require.NoError(t, err)
	defer cp.Close()
	cv, err := Dial(viewed.addr)
	require.NoError(t, err)
	defer cv.Close()
	for _, c := range []struct {
		addr uint64
		n    int
	}{{testCodeBase, 0x2000}, {testCodeBase + 0x20, 0x80}, {testCodeBase + 0x1f00, 0x200}, {testStackBase + 0x7fe, 2}} {
		want := make([]byte, c.n)
		nw, errw := cp.ReadMemoryPacket(true, c.addr, want)
		got := make([]byte, c.n)
		ng, errg := cv.ReadMemoryPacket(true, c.addr, got)
		assert.Equal(t, errw, errg, "%#x+%#x", c.addr, c.n)
		require.Equal(t, nw, ng, "%#x+%#x", c.addr, c.n)
		assert.Equal(t, want[:nw], got[:ng], "%#x+%#x", c.addr, c.n)
	}
	assert.Equal(t, 4, vt.views)
	assert.Equal(t, 3, vt.used, "the read past the code region's end went through ReadMemory")
	buf := make([]byte, 0x100)
	_, err = cv.ReadMemoryPacket(false, testCodeBase, buf)
	require.NoError(t, err)
	assert.Equal(t, 4, vt.views, "m does not use the view")
}
