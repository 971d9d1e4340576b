package ucwin

import (
	"github.com/stretchr/testify/require"

	"io"
	"testing"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
)

// TestBreakpointCycleAllocs: GDB removes every breakpoint after each stop
// and inserts them again before each resume; on the real backend that
// cycle allocates nothing in steady state.
func TestBreakpointCycleAllocs(t *testing.T) {
	exe := testkit.BuildPE(t, "examples/demo/demo.c", testkit.MinGW, "-O0")
	tg, err := New(Config{Program: exe, Stdout: io.Discard, Stderr: io.Discard})
	require.NoError(t, err)
	defer tg.Close()
	addrs := []uint64{tg.Process().EntryPoint(), tg.Process().EntryPoint() + 4, tg.Process().EntryPoint() + 8}
	cycle := func() {
		for _, a := range addrs {
			require.NoError(t, tg.RemoveBreakpoint(rsp.BreakSoftware, a, 1))
		}
		for _, a := range addrs {
			require.NoError(t, tg.InsertBreakpoint(rsp.BreakSoftware, a, 1))
		}
	}
	for _, a := range addrs {
		require.NoError(t, tg.InsertBreakpoint(rsp.BreakSoftware, a, 1))
	}
	cycle() // warm up the maps
	if n := testing.AllocsPerRun(100, cycle); n != 0 {
		t.Errorf("a remove/insert cycle of %d breakpoints allocates %v times", len(addrs), n)
	}
}
