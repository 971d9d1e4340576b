package rsp

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRangeStepStopsAtBreakpoint: the server's range-step loop (the test
// target is no RangeStepper) stops on a breakpoint inserted inside the
// range, and reports it as a breakpoint hit; once removed, the same range
// is stepped through.
func TestRangeStepStopsAtBreakpoint(t *testing.T) {
	tt := newTestTarget()
	conn, _, _ := startPipe(t, tt)
	p := newRawPeer(t, conn)
	p.ask("qSupported:swbreak+;hwbreak+")
	tt.setReg(AMD64RIP, 0x140001100)
	require.Equal(t, "OK", p.ask("Z0,140001104,1"))
	got := p.ask("vCont;r140001100,140001108:1;c")
	assert.Regexp(t, `^T05thread:1;10:0411004001000000;.*swbreak:;$`, got)

	require.Equal(t, "OK", p.ask("z0,140001104,1"))
	require.Equal(t, "OK", p.ask("Z1,140001106,1"))
	got = p.ask("vCont;r140001100,140001108:1;c")
	assert.Regexp(t, `^T05thread:1;10:0611004001000000;.*hwbreak:;$`, got)

	require.Equal(t, "OK", p.ask("z1,140001106,1"))
	got = p.ask("vCont;r140001100,140001108:1;c")
	assert.Regexp(t, `^T05thread:1;10:0811004001000000;`, got)
	assert.NotContains(t, got, "break:")
}

func TestBreakTable(t *testing.T) {
	var bt breakTable
	require.NotNil(t, bt.insert(BreakSoftware, 0x10, 1))
	require.NotNil(t, bt.insert(BreakHardware, 0x20, 1))
	require.NotNil(t, bt.insert(BreakSoftware, 0x10, 1)) // again: still one entry
	assert.Equal(t, 2, bt.n)
	assert.Equal(t, StopSWBreak, bt.at(0x10).stopKind())
	assert.Equal(t, StopHWBreak, bt.at(0x20).stopKind())
	assert.Nil(t, bt.at(0x30))
	bt.remove(BreakSoftware, 0x10)
	assert.Nil(t, bt.at(0x10))
	bt.remove(BreakSoftware, 0x10) // not there: harmless
	assert.Equal(t, 1, bt.n)
	for i := 0; i < maxBreakpoints-1; i++ {
		require.NotNil(t, bt.insert(BreakSoftware, uint64(0x1000+i), 1))
	}
	assert.Nil(t, bt.insert(BreakSoftware, 0x999999, 1), "the table is bounded")
	bt.clear()
	assert.Nil(t, bt.at(0x20))
}
