package rsp

import (
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parseStats reads the "name value" lines of monitor stub-stats.
func parseStats(t *testing.T, out string) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, ok := strings.Cut(l, " ")
		f, err := strconv.ParseFloat(v, 64)
		require.True(t, ok, "stub-stats line %q", l)
		require.NoError(t, err, "stub-stats line %q", l)
		m[k] = f
	}
	return m
}

func TestStubStats(t *testing.T) {
	tt := newTestTarget()
	conn, _, _ := startPipe(t, tt)
	c, err := NewClient(conn, WithTimeout(5*time.Second))
	require.NoError(t, err)
	out, err := c.Monitor(" stub-stats ")
	require.NoError(t, err)
	first := parseStats(t, out)
	for _, k := range []string{"goroutines", "heap-inuse", "heap-alloc", "packets", "sessions", "uptime"} {
		assert.Contains(t, first, k, "stub-stats: %q", out)
	}
	assert.GreaterOrEqual(t, first["goroutines"], 1.0, "goroutines in %q", out)
	assert.Greater(t, first["heap-inuse"], 0.0, "heap-inuse in %q", out)
	assert.Equal(t, 1.0, first["sessions"], "sessions in %q", out)
	assert.GreaterOrEqual(t, first["packets"], 3.0, "packets in %q", out)
	for range 10 {
		_, err := c.ReadRegisters()
		require.NoError(t, err)
	}
	out, _ = c.Monitor("stub-stats")
	assert.Equal(t, first["packets"]+11, parseStats(t, out)["packets"], "packets after 11 more")
}

// TestMonitorHelpListsStubStats: "monitor help" ends with the server's
// own command, after the target's list, and answers even without a
// target monitor.
func TestMonitorHelpListsStubStats(t *testing.T) {
	conn, _, _ := startPipe(t, newTestTarget())
	p := newRawPeer(t, conn)
	p.send(frame("qRcmd," + hexString("help")))
	var out strings.Builder
	for {
		r := p.recv()
		if r == "OK" {
			break
		}
		b, err := hex.DecodeString(r[1:])
		require.NoError(t, err)
		out.Write(b)
	}
	assert.Regexp(t, `^commands: help, big, fail\n  stub-stats \[-gc\] +the stub's own figures`, out.String())

	b, _, _ := startPipe(t, &plainTarget{newTestTarget()})
	p2 := newRawPeer(t, b)
	p2.send(frame("qRcmd," + hexString("help")))
	assert.Equal(t, "O"+hexString(stubStatsHelp), p2.recv())
	assert.Equal(t, "OK", p2.recv())
}
