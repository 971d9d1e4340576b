package ucwin

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp/rsptest"
)

// TestTargetContract runs rsptest's contract test on the Unicorn backend
// with both userlands, on tests/testdata/conf.c: continue reaches count().
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
			rsptest.TestTarget(t, tg, rsptest.Config{Break: count})
		})
	}
}
