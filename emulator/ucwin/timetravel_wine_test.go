package ucwin

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
)

// TestTimeTravelWineThreads: the wine userland with three threads
// (tests/testdata/wthreads.c), first run with breakpoint stops and steps
// in the workers: going back 1, 1000, 100000 instructions and half the
// run, and forward again, ends at the same position every time, and the
// output is printed once.
func TestTimeTravelWineThreads(t *testing.T) {
	testkit.NeedWine(t)
	exe := testkit.BuildPE(t, "tests/testdata/wthreads.c", testkit.MinGW, "-O0", "-g")
	var out bytes.Buffer
	tg, err := New(Config{Program: exe, Record: true, Userland: UserlandWine, Stdout: &out, Stderr: &out})
	require.NoError(t, err)
	defer tg.Close()
	work := symbolAddr(t, exe, "work")
	require.NoError(t, tg.InsertBreakpoint(rsp.BreakSoftware, work, 1))
	for i := 0; i < 2; i++ {
		st, err := tg.Resume(cont)
		require.NoError(t, err)
		require.Equal(t, rsp.StopSWBreak, st.Kind, "hit %d", i)
		for k := 0; k < 5; k++ {
			_, err := tg.Resume([]rsp.ResumeAction{{Thread: st.Thread, Step: true}})
			require.NoError(t, err)
		}
	}
	require.NoError(t, tg.RemoveBreakpoint(rsp.BreakSoftware, work, 1))
	st, err := tg.Resume(cont)
	require.NoError(t, err)
	require.Equal(t, rsp.StopExited, st.Kind)
	end := tg.Position()
	want := out.String()
	require.Contains(t, want, "total 3")
	for _, back := range []uint64{1, 1000, 100000, end / 2} {
		_, err = tg.ReverseStepN(back)
		require.NoError(t, err, "back %d", back)
		assert.Equal(t, end-back, tg.Position(), "back %d", back)
		st, err = tg.Resume(cont)
		require.NoError(t, err)
		assert.Equal(t, rsp.StopExited, st.Kind)
		assert.Equal(t, end, tg.Position(), "forward again after going back %d", back)
	}
	assert.Equal(t, want, out.String(), "output printed once")
}

// TestTimeTravelStdin: what the guest read from stdin is kept for
// replays: going back before the read and forward again reads the same
// line (the host reader is consumed once), so the run ends where it did.
func TestTimeTravelStdin(t *testing.T) {
	testkit.NeedWine(t)
	exe := testkit.BuildPE(t, "tests/testdata/readline.c", testkit.MinGW, "-O0", "-g")
	var out bytes.Buffer
	tg, err := New(Config{Program: exe, Record: true, Userland: UserlandWine, Stdout: &out, Stderr: &out,
		Stdin: bytes.NewBufferString("hello from stdin\n")})
	require.NoError(t, err)
	defer tg.Close()
	st, err := tg.Resume(cont)
	require.NoError(t, err)
	require.Equal(t, rsp.StopExited, st.Kind)
	assert.Equal(t, len("hello from stdin\n"), st.ExitCode)
	end := tg.Position()
	_, err = tg.ReverseStepN(end - tg.rec.start)
	require.NoError(t, err)
	st, err = tg.Resume(cont)
	require.NoError(t, err)
	require.Equal(t, rsp.StopExited, st.Kind)
	assert.Equal(t, len("hello from stdin\n"), st.ExitCode, "the replay read the same line")
	assert.Equal(t, end, tg.Position())
	assert.Equal(t, "got hello from stdin\r\n", out.String())
}
