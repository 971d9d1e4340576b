package main

import (
	"github.com/stretchr/testify/require"

	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	if code != checkAgree {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"functions with both", "positions compared", "unreachable-padding", "first disagreements:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
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
	if err := json.Unmarshal([]byte(out), &js); err != nil || code != checkAgree {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	if len(js.Files) != 2 || js.Files[0].Positions == 0 || js.Total.Positions != 2*js.Files[0].Positions {
		t.Errorf("--json: %+v", js)
	}

	junk := filepath.Join(t.TempDir(), "junk.dll")
	require.NoError(t, os.WriteFile(junk, []byte("not a PE file at all"), 0o644))
	for _, args := range [][]string{{}, {junk}, {exe, junk}, {filepath.Join(t.TempDir(), "missing.dll")}, {"--bogus"}} {
		if _, _, code := checkUnwind(args...); code != checkBadInput {
			t.Errorf("check-unwind %q: exit %d, want %d", args, code, checkBadInput)
		}
	}
}
