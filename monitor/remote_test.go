package monitor_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/monitor"
	"github.com/rspstub/rspstub/rsp"
)

// TestRemoteBacktrace drives a stub from Go the way a regression test of
// an emulated program would: connect with rsp.Dial, set a breakpoint,
// continue, then take the backtrace in the client with monitor.Remote
// (which works against any RSP stub with a Windows library list). It must
// equal the stub's own "monitor bt -json", frame for frame.
func TestRemoteBacktrace(t *testing.T) {
	exe := buildDemo(t, testkit.MinGW, "-O2", "-g")
	d := mustResolve(t, exe, "d")
	stub := testkit.StartStub(t, exe)

	c, err := rsp.Dial(stub.Addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetBreakpoint(rsp.BreakSoftware, d, 1))
	st, err := c.Continue()
	require.NoError(t, err, "continue")
	require.Equal(t, rsp.StopSWBreak, st.Kind, "continue: %+v", st)

	files := func(m monitor.Module) ([]byte, error) {
		if m.Name == "demo.exe" {
			return os.ReadFile(exe)
		}
		return nil, errors.New("no local file")
	}
	mon := monitor.New(monitor.Remote(c, files))
	bt, err := mon.Backtrace(monitor.BacktraceOptions{})
	require.NoError(t, err)
	require.Len(t, bt.Frames, len(wantStack), "frames")
	for i, w := range wantStack {
		assert.Equal(t, w.sym, bt.Frames[i].Loc.Symbol, "frame %d: %s, want %s!%s", i, bt.Frames[i].Loc, w.mod, w.sym)
	}

	out, err := c.Monitor("bt -json")
	require.NoError(t, err)
	var theirs monitor.BacktraceJSON
	require.NoError(t, json.Unmarshal([]byte(out), &theirs))
	ours := bt.JSON()
	require.Len(t, ours, len(theirs.Frames), "the client's frames, against the stub's")
	for i := range ours {
		a, b := ours[i], theirs.Frames[i]
		assert.Equal(t, [5]any{b.PC, b.SP, b.Module, b.Symbol, b.Trust}, [5]any{a.PC, a.SP, a.Module, a.Symbol, a.Trust},
			"frame %d: pc, sp, module, symbol and trust, client's against stub's", i)
		for r, v := range b.Saved {
			assert.Equal(t, v, a.Saved[r], "frame %d: where %s is saved, client's against stub's", i, r)
		}
	}
	var tebOut, modOut bytesBuffer
	assert.NoError(t, mon.Run("teb", &tebOut), "teb over RSP")
	assert.NoError(t, mon.Run("modules", &modOut), "modules over RSP")
	t.Logf("client-side bt:\n%s\n%s%s", tableOf(bt), tebOut.String(), modOut.String())
}

type bytesBuffer = bytes.Buffer

func tableOf(bt *monitor.Backtrace) string {
	var b bytes.Buffer
	monitor.WriteTable(&b, bt, false)
	return b.String()
}
