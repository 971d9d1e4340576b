package corpus

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTable checks the table itself: unique names, every source and file
// present, a golden file for every program Wine runs (and none for the
// others), and the size the acceptance test asks for.
func TestTable(t *testing.T) {
	names := map[string]bool{}
	counted := 0
	for _, p := range Programs() {
		assert.False(t, names[p.Name], "duplicate name %s", p.Name)
		names[p.Name] = true
		assert.NotEmpty(t, p.Exercises, p.Name)
		require.NotEmpty(t, p.Sources, p.Name)
		switch p.Toolchain {
		case Wine:
			assert.True(t, strings.HasPrefix(p.Name, "wine-"), p.Name)
		case Go:
			_, err := os.Stat(filepath.Join(SourceDir(), p.Sources[0], "main.go"))
			assert.NoError(t, err, p.Name)
		default:
			for _, s := range append(append([]string{}, p.Sources...), p.DLLs...) {
				_, err := os.Stat(filepath.Join(SourceDir(), s))
				assert.NoError(t, err, p.Name)
			}
		}
		files := p.Files
		if p.Stdin != "" {
			files = append(append([]string{}, files...), p.Stdin)
		}
		for _, f := range files {
			_, err := os.Stat(filepath.Join(SourceDir(), "files", f))
			assert.NoError(t, err, "%s: file %s", p.Name, f)
		}
		_, err := os.Stat(p.GoldenPath())
		if p.InPassRate() {
			counted++
			assert.NoError(t, err, "%s has no golden file (go test ./tests/corpus -run TestWineOracle -update)", p.Name)
		} else {
			assert.Error(t, err, "%s: wine cannot run it, so it should have no golden file", p.Name)
		}
	}
	assert.GreaterOrEqual(t, len(names), 45, "programs in the corpus")
	assert.GreaterOrEqual(t, counted, 40, "programs in the pass rate")

	golden, err := filepath.Glob(filepath.Join(Root(), "testdata", "golden", "*.golden"))
	require.NoError(t, err)
	for _, g := range golden {
		assert.True(t, names[strings.TrimSuffix(filepath.Base(g), ".golden")], "golden file %s has no program", g)
	}
}

func TestParseGolden(t *testing.T) {
	r, err := parseGolden([]byte("exit 3\nline one\r\nno newline"))
	require.NoError(t, err)
	assert.Equal(t, 3, r.ExitCode)
	assert.Equal(t, "line one\r\nno newline", string(r.Stdout))
	r, err = parseGolden([]byte("exit 0\n"))
	require.NoError(t, err)
	assert.Empty(t, r.Stdout)
	_, err = parseGolden([]byte("stdout without a header\n"))
	assert.Error(t, err)
	_, err = parseGolden([]byte("exit x\n"))
	assert.Error(t, err)
}

// TestWineOracle runs every program under wine and compares with its
// golden file (with -update: writes it). This verifies the corpus
// itself: sources, builds and expected outputs agree with real Wine.
// Programs Wine cannot run must still fail under it: when one starts to
// work (a newer Wine), the test says so.
func TestWineOracle(t *testing.T) {
	w := StartWine(t)
	for _, p := range Programs() {
		p := p
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			r := w.Run(t, p)
			if !p.InPassRate() {
				t.Logf("wine cannot run it: %s\nstdout:\n%s\nstderr:\n%s", p.WineFails, r.Stdout, r.Stderr)
				assert.NotZero(t, r.ExitCode, "%s now runs under wine: record its golden output and clear WineFails", p.Name)
				return
			}
			if testkit.Update() {
				require.NoError(t, p.writeGolden(r))
				return
			}
			want := p.Expected(t)
			if !assert.Equal(t, string(want.Stdout), string(r.Stdout), "stdout") {
				t.Logf("stderr:\n%s", r.Stderr)
			}
			assert.Equal(t, want.ExitCode, r.ExitCode, "exit code")
		})
	}
}
