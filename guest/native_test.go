package guest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNativeFunctions runs a program against the synthesized DLLs'
// native functions: each agrees with the TEB and PEB fields it reads,
// with the Go side's writes to them, and the clock moves at real speed.
func TestNativeFunctions(t *testing.T) {
	exe := buildC(t, "native", "native.c", mingwGCC("-O1"))
	r := runUnicorn(t, exe, Config{}, nil)
	require.Empty(t, r.unimplemented)
	assert.Equal(t, []string{
		"lasterror 0xbeef teb 0xbeef",
		"after a failed Go API 203",
		"pid 1 tid 1",
		"pseudo 1 1",
		"heap 1 alloc 1",
		"strlen 0 1 12 wcslen 0 5",
		"tick moved 1 agree 1",
	}, strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"))
	assert.Equal(t, 0, r.exitCode)
}
