package rsp

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reverseTarget is a testTarget that goes backwards: a reverse step
// stops with SIGTRAP, a reverse continue at the history's start.
type reverseTarget struct {
	*testTarget
	steps, conts int
}

func (r *reverseTarget) ReverseStep(tid int) (Stop, error) {
	r.steps++
	return Stop{Kind: StopSignal, Signal: SIGTRAP, Thread: 1}, nil
}

func (r *reverseTarget) ReverseContinue() (Stop, error) {
	r.conts++
	return Stop{Kind: StopSignal, Signal: SIGTRAP, Thread: 1, ReplayLog: "begin"}, nil
}

// TestServerReverse: bs and bc are advertised and dispatched only for a
// Reverser; a target without one (the QEMU proxy, a stub without
// --record) answers them as unsupported packets (empty replies).
func TestServerReverse(t *testing.T) {
	conn, _, _ := startPipe(t, newTestTarget())
	p := newRawPeer(t, conn)
	assert.NotContains(t, p.ask("qSupported:swbreak+"), "Reverse")
	assert.Equal(t, "", p.ask("bs"))
	assert.Equal(t, "", p.ask("bc"))

	rt := &reverseTarget{testTarget: newTestTarget()}
	b, _, _ := startPipe(t, rt)
	p = newRawPeer(t, b)
	assert.True(t, strings.HasSuffix(p.ask("qSupported:swbreak+"), ";ReverseStep+;ReverseContinue+"))
	assert.True(t, strings.HasPrefix(p.ask("bs"), "T05thread:1;"))
	bc := p.ask("bc")
	assert.True(t, strings.HasPrefix(bc, "T05thread:1;"), bc)
	assert.True(t, strings.HasSuffix(bc, "replaylog:begin;"), bc)
	assert.Equal(t, "", p.ask("bx"))
	assert.Equal(t, 1, rt.steps)
	assert.Equal(t, 1, rt.conts)
}

// condReverseTarget's reverse continue stops at the nearest software
// breakpoint below rip, or at the code base with replaylog:begin.
type condReverseTarget struct {
	*testTarget
	conts int
}

func (r *condReverseTarget) ReverseStep(tid int) (Stop, error) {
	r.setReg(AMD64RIP, r.reg(AMD64RIP)-1)
	return Stop{Kind: StopSignal, Signal: SIGTRAP, Thread: 1}, nil
}

func (r *condReverseTarget) ReverseContinue() (Stop, error) {
	r.conts++
	rip, best := r.reg(AMD64RIP), uint64(0)
	for _, b := range r.bps {
		if b.used && b.kind == BreakSoftware && b.addr < rip && b.addr > best {
			best = b.addr
		}
	}
	if best == 0 {
		r.setReg(AMD64RIP, testCodeBase)
		return Stop{Kind: StopSignal, Signal: SIGTRAP, Thread: 1, ReplayLog: "begin"}, nil
	}
	r.setReg(AMD64RIP, best)
	return Stop{Kind: StopSWBreak, Signal: SIGTRAP, Thread: 1}, nil
}

// TestReverseContinueConditions: bc goes on backwards past a breakpoint
// whose condition is false, as c does forwards, and stops at the start
// of the history when no hit's condition holds.
func TestReverseContinueConditions(t *testing.T) {
	rt := &condReverseTarget{testTarget: newTestTarget()}
	b, srv, _ := startPipe(t, rt)
	p := newRawPeer(t, b)
	assert.Contains(t, p.ask("qSupported:swbreak+"), ";ReverseContinue+")
	rt.setReg(AMD64RAX, 7)
	rt.setReg(AMD64RIP, testCodeBase+0x300)
	// rax == 7: true at 0x140001100; rax == 8: false at 0x140001200.
	require.Equal(t, "OK", p.ask("Z0,140001100,1;X7,26000022071327"))
	require.Equal(t, "OK", p.ask("Z0,140001200,1;X7,26000022081327"))
	got := askStop(p, "bc")
	assert.Regexp(t, `^T05thread:1;10:0011004001000000;.*swbreak:;$`, got, "the false condition was not reported")
	assert.Equal(t, 2, rt.conts)
	assert.Equal(t, uint64(1), srv.Stats().CondFalse)

	// Only a false condition left below: back to the start.
	rt.setReg(AMD64RIP, testCodeBase+0x300)
	require.Equal(t, "OK", p.ask("z0,140001100,1"))
	got = askStop(p, "bc")
	assert.Contains(t, got, "replaylog:begin;")
	assert.Equal(t, 4, rt.conts)
}

// gatedReverseTarget is a Reverser that may withhold it (FeatureGate), as
// the QEMU backend does when QEMU does not replay a recording.
type gatedReverseTarget struct {
	reverseTarget
	offer bool
}

func (g *gatedReverseTarget) Offers(f Feature) bool { return f != FeatureReverse || g.offer }

// TestServerReverseGate: a withheld Reverser is neither advertised nor
// dispatched; an offered one is both.
func TestServerReverseGate(t *testing.T) {
	for _, offer := range []bool{false, true} {
		g := &gatedReverseTarget{reverseTarget: reverseTarget{testTarget: newTestTarget()}, offer: offer}
		b, _, _ := startPipe(t, g)
		p := newRawPeer(t, b)
		assert.Equal(t, offer, strings.Contains(p.ask("qSupported:swbreak+"), "ReverseStep+"), "offer %v", offer)
		assert.Equal(t, offer, p.ask("bs") != "", "bs, offer %v", offer)
		want := 0
		if offer {
			want = 1
		}
		assert.Equal(t, want, g.steps, "offer %v", offer)
	}
}
