package rsp

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReplyWatchExpiresAWait checks that a wait longer than the timeout
// fails with a deadline error, after the timeout and within a tick more,
// that the connection reads again afterwards, and that the watchdog ends
// itself once idle.
func TestReplyWatchExpiresAWait(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	w := &replyWatch{conn: a, timeout: 100 * time.Millisecond}
	buf := make([]byte, 1)

	w.begin()
	t0 := time.Now()
	_, err := a.Read(buf)
	waited := time.Since(t0)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.True(t, w.end(), "the watchdog expired the read")
	assert.GreaterOrEqual(t, waited, 100*time.Millisecond)
	assert.Less(t, waited, time.Second)

	// The next wait reads normally.
	w.begin()
	go b.Write([]byte{'+'})
	n, err := a.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.False(t, w.end())

	// Idle, it ends by itself.
	require.Eventually(t, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return !w.running
	}, 5*time.Second, 10*time.Millisecond)
}

// TestReplyWatchQuickRepliesNeverExpire runs many short waits back to
// back across several ticks: none may be expired.
func TestReplyWatchQuickRepliesNeverExpire(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	w := &replyWatch{conn: a, timeout: 40 * time.Millisecond}
	go func() {
		for {
			if _, err := b.Write([]byte{'+'}); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	buf := make([]byte, 1)
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
		w.begin()
		_, err := a.Read(buf)
		require.NoError(t, err)
		require.False(t, w.end())
	}
}
