package rsp

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// growingTarget knows its memory map but may map more while it runs.
type growingTarget struct {
	Target
	MemoryMapper
}

// TestMemoryMapOnlyWhenFixed: a map that can grow answers
// qMemoryRegionInfo but never advertises or serves qXfer:memory-map,
// which would make GDB refuse memory mapped after it connected.
func TestMemoryMapOnlyWhenFixed(t *testing.T) {
	tt := newTestTarget()
	for _, tc := range []struct {
		name  string
		tgt   Target
		fixed bool
	}{
		{"fixed", tt, true},
		{"growing", growingTarget{tt, tt}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := discover(tc.tgt)
			require.NotNil(t, f.mm, "MemoryMapper not discovered")
			assert.Equal(t, tc.fixed, strings.Contains(f.supported(DefaultPacketSize), "qXfer:memory-map:read+"), "memory-map advertised")
			assert.Equal(t, tc.fixed, f.xferReadable("memory-map"), "memory-map readable")
		})
	}
}

// TestServeEndsAfterExit: once the target has exited and its debugger
// leaves, Serve returns ErrExited instead of waiting for clients that
// would find nothing to debug.
func TestServeEndsAfterExit(t *testing.T) {
	tt := newTestTarget()
	tt.stop = Stop{Kind: StopExited, ExitCode: 3}
	s := serveTCP(t, tt)
	c, err := Dial(s.addr)
	require.NoError(t, err)
	st, err := c.StopReason()
	require.NoError(t, err, "stop reason")
	assert.Equal(t, StopExited, st.Kind, "stop reason %+v", st)
	assert.Equal(t, 3, st.ExitCode, "stop reason %+v", st)
	c.Close()
	select {
	case err := <-s.done:
		assert.ErrorIs(t, err, ErrExited, "Serve")
	case <-time.After(5 * time.Second):
		require.FailNow(t, "Serve kept running after the exited target's debugger left")
	}
}
