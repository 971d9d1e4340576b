package monitor_test

import (
	"github.com/stretchr/testify/require"

	"bytes"
	"encoding/json"
	"errors"
	"os"
	"testing"

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
	if err != nil || st.Kind != rsp.StopSWBreak {
		t.Fatalf("continue: %+v %v", st, err)
	}

	files := func(m monitor.Module) ([]byte, error) {
		if m.Name == "demo.exe" {
			return os.ReadFile(exe)
		}
		return nil, errors.New("no local file")
	}
	mon := monitor.New(monitor.Remote(c, files))
	bt, err := mon.Backtrace(monitor.BacktraceOptions{})
	require.NoError(t, err)
	if len(bt.Frames) != len(wantStack) {
		t.Fatalf("%d frames, want %d", len(bt.Frames), len(wantStack))
	}
	for i, w := range wantStack {
		if l := bt.Frames[i].Loc; l.Symbol != w.sym {
			t.Errorf("frame %d: %s, want %s!%s", i, l, w.mod, w.sym)
		}
	}

	out, err := c.Monitor("bt -json")
	require.NoError(t, err)
	var theirs monitor.BacktraceJSON
	require.NoError(t, json.Unmarshal([]byte(out), &theirs))
	ours := bt.JSON()
	if len(ours) != len(theirs.Frames) {
		t.Fatalf("client %d frames, stub %d", len(ours), len(theirs.Frames))
	}
	for i := range ours {
		a, b := ours[i], theirs.Frames[i]
		if a.PC != b.PC || a.SP != b.SP || a.Module != b.Module || a.Symbol != b.Symbol || a.Trust != b.Trust {
			t.Errorf("frame %d: client %+v, stub %+v", i, a, b)
		}
		for r, v := range b.Saved {
			if a.Saved[r] != v {
				t.Errorf("frame %d: %s saved at %s (client) vs %s (stub)", i, r, a.Saved[r], v)
			}
		}
	}
	var tebOut, modOut bytesBuffer
	if err := mon.Run("teb", &tebOut); err != nil {
		t.Errorf("teb over RSP: %v", err)
	}
	if err := mon.Run("modules", &modOut); err != nil {
		t.Errorf("modules over RSP: %v", err)
	}
	t.Logf("client-side bt:\n%s\n%s%s", tableOf(bt), tebOut.String(), modOut.String())
}

type bytesBuffer = bytes.Buffer

func tableOf(bt *monitor.Backtrace) string {
	var b bytes.Buffer
	monitor.WriteTable(&b, bt, false)
	return b.String()
}
