package ucwin

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/debuggee/debuggeetest"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp/rsptest"
)

// TestTargetContract runs rsptest's contract test on the Unicorn backend
// (with the process layer over it, as cmd/rspstub serves it) with both
// userlands, on tests/testdata/conf.c: continue reaches count(). There,
// with the DLLs loaded, the stub advertises the Windows library list and
// the exec file, dispatches vFile and qGetTIBAddr, and answers each; no
// Linux view (auxv, SVR4) is advertised.
func TestTargetContract(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/conf.c", testkit.MinGW, "-O0", "-g")
	count := symbol(t, exe, "count")
	for _, userland := range []string{UserlandSynth, UserlandWine} {
		t.Run(userland, func(t *testing.T) {
			if userland == UserlandWine {
				testkit.NeedWine(t)
			}
			tg, err := New(Config{Program: exe, Userland: userland, Stdout: io.Discard, Stderr: io.Discard, Root: t.TempDir()})
			require.NoError(t, err)
			t.Cleanup(func() { tg.Close() })
			view := debuggeetest.View(tg)
			rsptest.TestTarget(t, view, rsptest.Config{Break: count})

			c := rsptest.Client(t, view)
			assert.Equal(t, []string{"qXfer:libraries", "qXfer:exec-file", "vFile"}, debuggeetest.CheckAnswers(t, c))
			st, err := c.StopReason()
			require.NoError(t, err)
			teb, ok, err := debuggeetest.TIB(t, c, st.Thread)
			assert.True(t, ok, "qGetTIBAddr is dispatched")
			assert.NoError(t, err)
			assert.NotEmpty(t, teb)
		})
	}
}
