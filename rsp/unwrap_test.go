package rsp

import (
	"encoding/hex"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// baseOnly hides every optional interface of the target it holds: only
// the methods of Target are promoted.
type baseOnly struct{ Target }

// wrapper is a layer over a target: it forwards the base methods (through
// baseOnly), adds its own monitor, withholds the Windows library list and
// lets the server find everything else on the wrapped target.
type wrapper struct {
	baseOnly
	inner Target
	gated Feature
}

func (w *wrapper) Unwrap() Target { return w.inner }

func (w *wrapper) Offers(f Feature) bool { return f != w.gated }

func (w *wrapper) Monitor(cmd string, out io.Writer) error {
	_, err := io.WriteString(out, "wrapper: "+cmd+"\n")
	return err
}

// selfWrapper unwraps to itself: discovery must stop.
type selfWrapper struct{ baseOnly }

func (s *selfWrapper) Unwrap() Target { return s }

// gatedAuxv offers everything but the Windows library list, with an
// auxiliary vector: a gate deep in the chain still counts.
type gatedAuxv struct{ *testTarget }

func (gatedAuxv) Offers(f Feature) bool { return f != FeatureLibraries }
func (gatedAuxv) Auxv() ([]byte, error) { return testAuxv, nil }

// testAuxv is AT_PAGESZ (6) = 0x1000: no byte the protocol escapes.
var testAuxv = []byte{6, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0}

func serveTarget(t *testing.T, tg Target) *rawPeer {
	t.Helper()
	b, _, _ := startPipe(t, tg)
	return newRawPeer(t, b)
}

// TestUnwrapFindsInnerInterfaces: optional interfaces the wrapper lacks
// are found on the target it wraps; its own methods win; its gate
// withholds what the wrapped target implements.
func TestUnwrapFindsInnerInterfaces(t *testing.T) {
	inner := newTestTarget()
	p := serveTarget(t, &wrapper{baseOnly: baseOnly{inner}, inner: inner, gated: FeatureLibraries})
	sup := p.ask("qSupported:")
	assert.Contains(t, sup, ";swbreak+", "Breakpointer comes from the wrapped target")
	assert.Contains(t, sup, ";qXfer:exec-file:read+", "ExecFiler comes from the wrapped target")
	assert.NotContains(t, sup, "qXfer:libraries:read+", "the wrapper's gate withholds the Windows library list")
	assert.Equal(t, "", p.ask("qXfer:libraries:read::0,1000"))
	assert.Equal(t, "OK", p.ask("Z0,140001000,1"))
	out := p.ask("qRcmd," + hex.EncodeToString([]byte("bt")))
	assert.Equal(t, "O"+hex.EncodeToString([]byte("wrapper: bt\n")), out, "the wrapper's Monitor wins")
	assert.Equal(t, "OK", p.recv())
}

// TestUnwrapGateDeepInChain: a FeatureGate on the wrapped target is
// obeyed as well as one on the wrapper.
func TestUnwrapGateDeepInChain(t *testing.T) {
	inner := gatedAuxv{newTestTarget()}
	p := serveTarget(t, &wrapper{baseOnly: baseOnly{inner}, inner: inner, gated: FeatureExecFile})
	sup := p.ask("qSupported:")
	assert.NotContains(t, sup, "qXfer:libraries:read+", "withheld by the wrapped target's gate")
	assert.NotContains(t, sup, "qXfer:exec-file", "withheld by the wrapper's gate")
	assert.Contains(t, sup, ";qXfer:auxv:read+")
	assert.Equal(t, "l"+string(testAuxv), p.ask("qXfer:auxv:read::0,100"))
}

// TestAs: As finds an interface on the wrapper first, then on what it
// wraps, and reports false when none has it.
func TestAs(t *testing.T) {
	inner := newTestTarget()
	w := &wrapper{baseOnly: baseOnly{inner}, inner: inner}
	m, ok := As[Monitor](w)
	require.True(t, ok)
	assert.Same(t, w, m, "the wrapper's Monitor wins")
	bp, ok := As[Breakpointer](w)
	require.True(t, ok)
	assert.Same(t, inner, bp, "Breakpointer comes from the wrapped target")
	_, ok = As[SVR4LibraryLister](w)
	assert.False(t, ok)
	_, ok = As[Breakpointer](baseOnly{inner})
	assert.False(t, ok, "without Unwrap nothing below is looked at")
}

// TestUnwrapStopsOnCycle: a target that unwraps to itself is looked at
// once per step and discovery ends.
func TestUnwrapStopsOnCycle(t *testing.T) {
	s := &selfWrapper{baseOnly{newTestTarget()}}
	f := discover(s)
	assert.Nil(t, f.libs)
	assert.Nil(t, f.bp)
	require.NotNil(t, s.Description())
}
