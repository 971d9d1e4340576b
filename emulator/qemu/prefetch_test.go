package qemu

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
)

// pending reports whether a prefetching `g` awaits its reply.
func (t *Target) pendingPrefetch() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pendingTID != 0
}

// qemuRegisters reads thread 1's registers from QEMU itself, in our
// layout, past the cache.
func (t *Target) qemuRegisters(tb testing.TB) []byte {
	t.lock()
	defer t.mu.Unlock()
	g, err := t.c.ReadRegisters()
	require.NoError(tb, err)
	dst := make([]byte, t.desc.Size())
	t.mapRegisters(dst, g)
	return dst
}

// TestSystemPrefetch: after a debugger read registers at a stop, the
// next step's stop reply goes out while a `g` to QEMU is pending, and
// the debugger's `g` is answered with QEMU's registers of the new stop;
// a step loop that reads nothing makes no such `g`. Large reads are
// pipelined (lazy acks) and still end at the readable prefix.
func TestSystemPrefetch(t *testing.T) {
	kernel := buildGuest(t)
	elf64 := guestSymbols(t)
	tick := symbol(t, elf64, "tick")
	s := startStub(t, testkit.QEMUSystemArgs(kernel, 1)...)
	require.Equal(t, ModeSystem, s.target.Mode())
	c := s.dial(t)
	require.NoError(t, c.SetBreakpoint(rsp.BreakHardware, tick, 1))
	_, err := c.Continue()
	require.NoError(t, err)
	require.NoError(t, c.RemoveBreakpoint(rsp.BreakHardware, tick, 1))
	pc := s.target.desc.Registers[s.target.desc.PC]

	// Steps without register reads: nothing prefetched (but after the
	// first: the server read the continue's expedited registers).
	for i := 0; i < 3; i++ {
		_, err := c.Step()
		require.NoError(t, err)
		if i > 0 {
			assert.False(t, s.target.pendingPrefetch(), "step %d: prefetch without a register read", i)
		}
	}
	var last uint64
	for i := 0; i < 20; i++ {
		st, err := c.Step()
		require.NoError(t, err)
		require.Equal(t, rsp.SIGTRAP, st.Signal)
		if i > 0 {
			assert.True(t, s.target.pendingPrefetch(), "step %d: no prefetch after a register read", i)
		}
		g, err := c.ReadRegisters()
		require.NoError(t, err)
		want := s.target.qemuRegisters(t)
		require.Equal(t, want, g, "step %d: registers from the prefetch", i)
		rip := binary.LittleEndian.Uint64(g[pc.Offset:])
		assert.NotEqual(t, last, rip, "step %d did not move", i)
		last = rip
	}

	// The page tables map 4 MiB: a read of many QEMU packets across the
	// end gives the prefix, with the right bytes.
	const n = 40000
	buf := make([]byte, n)
	got, err := c.ReadMemory(0x400000-n+100, buf)
	assert.Equal(t, n-100, got, "read across 0x400000 (%v)", err)
	one := make([]byte, 2000)
	for off := 0; off+len(one) <= got; off += len(one) {
		k, err := s.target.Client().ReadMemory(0x400000-n+100+uint64(off), one)
		require.NoError(t, err)
		require.Equal(t, len(one), k)
		require.Equal(t, one, buf[off:off+len(one)], "bytes at +%d", off)
	}
}
