package ucwin

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/debuggee/debuggeetest"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
)

// TestAnswers: in both userlands the stub advertises the Windows library
// list and the exec file, dispatches vFile and qGetTIBAddr, and answers
// each (checked at main, after the DLLs are loaded); no Linux view (auxv,
// SVR4) is advertised.
func TestAnswers(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/conf.c", testkit.MinGW, "-O0", "-g")
	for _, land := range []string{UserlandSynth, UserlandWine} {
		t.Run(land, func(t *testing.T) {
			if land == UserlandWine {
				needWine(t)
			}
			tg, err := New(Config{Program: exe, Userland: land, Stdout: io.Discard, Stderr: io.Discard, Root: t.TempDir()})
			require.NoError(t, err)
			t.Cleanup(func() { tg.Close() })
			main, err := debuggeetest.View(tg).Commands().Resolve("main")
			require.NoError(t, err)
			c := debuggeetest.Serve(t, tg)
			require.NoError(t, c.SetBreakpoint(rsp.BreakSoftware, main, 1))
			st, err := c.Continue()
			require.NoError(t, err)
			require.Equal(t, rsp.StopSWBreak, st.Kind)
			assert.Equal(t, []string{"qXfer:libraries", "qXfer:exec-file", "vFile"}, debuggeetest.CheckAnswers(t, c))
			teb, ok, err := debuggeetest.TIB(t, c, st.Thread)
			assert.True(t, ok, "qGetTIBAddr is dispatched")
			assert.NoError(t, err)
			assert.NotEmpty(t, teb)
		})
	}
}
