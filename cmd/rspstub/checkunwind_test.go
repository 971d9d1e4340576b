package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
)

func checkUnwind(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = run(append([]string{"check-unwind"}, args...), &o, &e)
	return o.String(), e.String(), code
}

// TestCheckUnwindCLI: exit 0 and the counts on a mingw build, one JSON
// object with --json, exit 2 on bad input.
func TestCheckUnwindCLI(t *testing.T) {
	exe := testkit.BuildPE(t, "unwind/check/testdata/frames.c", testkit.MinGW, "-O2", "-g")
	out, errOut, code := checkUnwind("-n", "3", exe)
	require.Equal(t, checkAgree, code, "exit code\n%s%s", out, errOut)
	for _, want := range []string{"functions with both", "positions compared", "unreachable-padding", "first disagreements:"} {
		assert.Contains(t, out, want, "output")
	}

	out, _, code = checkUnwind("--json", exe, exe)
	var js struct {
		Files []struct {
			File       string
			Functions  int
			Positions  int
			Agreements int
		}
		Total struct {
			Positions   int
			Unexplained int
		}
	}
	require.Equal(t, checkAgree, code, "--json: exit code\n%s", out)
	require.NoError(t, json.Unmarshal([]byte(out), &js), "--json\n%s", out)
	if assert.Len(t, js.Files, 2, "--json: %+v", js) {
		assert.NotZero(t, js.Files[0].Positions, "--json: %+v", js)
		assert.Equal(t, 2*js.Files[0].Positions, js.Total.Positions, "--json: total positions, %+v", js)
	}

	junk := filepath.Join(t.TempDir(), "junk.dll")
	require.NoError(t, os.WriteFile(junk, []byte("not a PE file at all"), 0o644))
	for _, args := range [][]string{{}, {junk}, {exe, junk}, {filepath.Join(t.TempDir(), "missing.dll")}, {"--bogus"}} {
		_, _, code := checkUnwind(args...)
		assert.Equal(t, checkBadInput, code, "check-unwind %q: exit code", args)
	}
}
