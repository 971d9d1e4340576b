package qemu

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
)

// memStats returns the memory cache's hits and misses, and how many
// blocks it holds.
func (t *Target) memStats() (hits, misses uint64, blocks int) {
	t.lock()
	defer t.mu.Unlock()
	return t.mem.hits, t.mem.misses, t.mem.n
}

// qemuMemory reads memory from QEMU itself, past the cache.
func (t *Target) qemuMemory(tb testing.TB, addr uint64, n int) []byte {
	t.lock()
	defer t.mu.Unlock()
	p := make([]byte, n)
	k, err := t.c.ReadMemory(addr, p)
	require.NoError(tb, err, "QEMU read at %#x", addr)
	return p[:k]
}

// TestSystemMemoryCache steps through the guest's loop reading what
// GDB's stepi reads (the code at pc again and again, the function's
// start, the stack): every answer equals QEMU's own, most come from the
// cache, the code around the new pc arrives with the registers after a
// step, a write is seen at once, and memory off the pc and sp pages (a
// device's, for all the target knows) is never read ahead or kept.
func TestSystemMemoryCache(t *testing.T) {
	kernel := buildGuest(t)
	elf64 := guestSymbols(t)
	tick, counter := symbol(t, elf64, "tick"), symbol(t, elf64, "counter")
	s := startStub(t, testkit.QEMUSystemArgs(kernel, 1)...)
	c := s.dial(t)
	require.NoError(t, c.SetBreakpoint(rsp.BreakHardware, tick, 1))
	_, err := c.Continue()
	require.NoError(t, err)
	require.NoError(t, c.RemoveBreakpoint(rsp.BreakHardware, tick, 1))
	d := s.target.desc
	pcReg, spReg := d.Registers[d.PC], d.Registers[d.SP]

	read := func(addr uint64, n int) []byte {
		p := make([]byte, n)
		k, err := c.ReadMemory(addr, p)
		require.NoError(t, err, "read %d at %#x", n, addr)
		require.Equal(t, n, k, "read %d at %#x", n, addr)
		return p
	}
	for i := 0; i < 30; i++ {
		_, err := c.Step()
		require.NoError(t, err)
		g, err := c.ReadRegisters()
		require.NoError(t, err)
		if i > 1 {
			_, _, blocks := s.target.memStats()
			assert.Equal(t, 1, blocks, "step %d: the code around pc did not come with the registers", i)
		}
		pc := binary.LittleEndian.Uint64(g[pcReg.Offset:])
		sp := binary.LittleEndian.Uint64(g[spReg.Offset:])
		for _, r := range []struct {
			addr uint64
			n    int
		}{{pc, 1}, {pc, 1}, {tick, 0x40}, {sp, 0x10}, {pc, 1}, {pc &^ 0xfff, 0x400}, {(pc &^ 0x3ff) + 0x3f8, 0x10}} {
			want := s.target.qemuMemory(t, r.addr, r.n)
			assert.Equal(t, want, read(r.addr, r.n), "step %d: %d bytes at %#x", i, r.n, r.addr)
		}
	}
	hits, misses, _ := s.target.memStats()
	t.Logf("memory cache: %d hits, %d misses", hits, misses)
	// Per step, seven reads: only the stack's block and the second block
	// of the read across blocks come from QEMU (the code's block came
	// with the registers), but in the first steps.
	assert.GreaterOrEqual(t, hits, uint64(5*28), "reads answered from the cache")
	assert.LessOrEqual(t, misses, uint64(2*30+2), "blocks read from QEMU")

	// A write is seen at once, through the cache and in QEMU.
	g, err := c.ReadRegisters()
	require.NoError(t, err)
	pc := binary.LittleEndian.Uint64(g[pcReg.Offset:])
	orig := read(pc, 1)
	require.NoError(t, c.WriteMemory(pc, []byte{orig[0] ^ 0xff}))
	assert.Equal(t, []byte{orig[0] ^ 0xff}, read(pc, 1), "read after a write")
	assert.Equal(t, []byte{orig[0] ^ 0xff}, s.target.qemuMemory(t, pc, 1), "QEMU after a write")
	require.NoError(t, c.WriteMemory(pc, orig))
	assert.Equal(t, orig, read(pc, 1), "read after the write back")

	// Off the pc and sp pages nothing is kept: counter is read from
	// QEMU every time, and changes when the guest runs.
	require.NotEqual(t, pc&^0xfff, counter&^0xfff)
	hits0, misses0, _ := s.target.memStats()
	for i := 0; i < 3; i++ {
		read(counter, 8)
	}
	hits1, misses1, _ := s.target.memStats()
	assert.Equal(t, hits0, hits1, "a read off the pc and sp pages was answered from the cache")
	assert.Equal(t, misses0, misses1, "a read off the pc and sp pages was read ahead")

	// A monitor command may change anything: it empties the cache.
	read(pc, 1)
	var out strings.Builder
	handled, err := s.target.MonitorCommand("qemu info status", &out)
	require.NoError(t, err)
	require.True(t, handled)
	assert.Contains(t, out.String(), "VM status")
	_, _, blocks := s.target.memStats()
	assert.Zero(t, blocks, "blocks kept across a monitor command")
}

// TestStepsThread: the read-ahead after a resume needs the stopped
// thread to have been single-stepped.
func TestStepsThread(t *testing.T) {
	all := rsp.AllThreads
	for _, c := range []struct {
		actions []rsp.ResumeAction
		tid     int
		want    bool
	}{
		{[]rsp.ResumeAction{{Thread: all, Step: true}}, 1, true},
		{[]rsp.ResumeAction{{Thread: all}}, 1, false},
		{[]rsp.ResumeAction{{Thread: 1, Step: true}, {Thread: all}}, 1, true},
		{[]rsp.ResumeAction{{Thread: 2, Step: true}, {Thread: all}}, 1, false},
		{[]rsp.ResumeAction{{Thread: 1}, {Thread: all, Step: true}}, 1, false},
		{[]rsp.ResumeAction{{Thread: all, Step: true}}, 0, false},
	} {
		assert.Equal(t, c.want, stepsThread(c.actions, c.tid), "%+v for thread %d", c.actions, c.tid)
	}
}
