package testkit

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// update is the one -update flag of every test binary that imports the
// kit: `go test ./monitor -run TestX -update` rewrites the golden files
// that TestX compares with.
var update = flag.Bool("update", false, "rewrite golden files instead of comparing with them")

// Update reports whether the test runs with -update (golden files are
// rewritten, not compared).
func Update() bool { return *update }

// Golden compares got with the file at path (relative to the test's
// package folder), or writes it when the test runs with -update.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file %s (run go test -run '%s' -update to create it)", path, t.Name())
	assert.Equal(t, string(want), string(got), "%s differs (run with -update to accept)", path)
}

// GoldenString is Golden for text.
func GoldenString(t testing.TB, path, got string) {
	t.Helper()
	Golden(t, path, []byte(got))
}
