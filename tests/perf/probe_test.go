package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
)

// TestPrintTableHostNA: a peer the host cannot run prints its reason in
// the peer column and n/a as the ratio, and has no verdict to miss.
func TestPrintTableHostNA(t *testing.T) {
	r := peerRowNA(row{what: "a watchpoint run", ours: []float64{2}, unit: "s", lowerGood: true},
		"gdbserver, native", "n/a (host: hardware watchpoints in native processes do not fire)", []float64{1})
	var out bytes.Buffer
	printTable(&out, []row{r})
	assert.Contains(t, out.String(), "| gdbserver, native: n/a (host: hardware watchpoints in native processes do not fire) | n/a |")
	v, ok := r.verdict()
	assert.Equal(t, "", v)
	assert.True(t, ok)
}

// TestHostProbe runs the perf harness's watch comparison (-quick) on a
// host simulated to have no working hardware watchpoints: the harness
// must succeed and print the gdbserver row as n/a with the host's reason,
// where it used to die with "0 watchpoint stops".
func TestHostProbe(t *testing.T) {
	for _, tool := range []string{"gdbserver", "gcc", "x86_64-w64-mingw32-gcc"} {
		testkit.Tool(t, tool)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", ".", "-quick", "-only", "watch")
	cmd.Dir = "."
	cmd.Env = append(os.Environ(), simulateNoHostWatch+"=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the harness failed on a host without hardware watchpoints:\n%s", out)
	assert.Regexp(t, regexp.MustCompile(`\| gdbserver, native, the same watchpoint: n/a \(host: hardware watchpoints in native processes do not fire\) \| n/a \|`), string(out))
	assert.Contains(t, string(out), "simulating a host without hardware watchpoints")
}

// TestChartZeroPeer: a peer whose median is 0 (a loop that ended within
// its start-up noise) gives no ratio, in the table and the chart; the
// chart is drawn and does not loop on an infinite ratio.
func TestChartZeroPeer(t *testing.T) {
	rows := []row{
		{what: "calls/s", short: "calls", ours: []float64{5e7}, peer: []float64{0, 0, 1e9}, unit: "/s", peerName: "wine",
			target: target{op: ">=", v: 5e6, abs: true}},
		{what: "a time", short: "time", ours: []float64{2}, peer: []float64{1}, unit: "s", lowerGood: true, target: target{op: "<=", v: 1.1}},
	}
	assert.True(t, math.IsNaN(rows[0].ratio()), "ratio against a zero peer")
	var out bytes.Buffer
	printTable(&out, rows)
	assert.NotContains(t, out.String(), "Inf")
	path := filepath.Join(t.TempDir(), "chart.png")
	done := make(chan error, 1)
	go func() { done <- writeChart(path, rows) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("writeChart did not return")
	}
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Positive(t, st.Size())
}
