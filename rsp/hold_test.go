package rsp

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeLog records each Write.
type writeLog struct {
	bytes.Buffer
	writes []string
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

// TestHoldWrites: packets sent while held go out in one write, with an
// owed acknowledgement first, and nothing is written before.
func TestHoldWrites(t *testing.T) {
	var w writeLog
	c := newCodecSizes(&w, 4096, 4096)
	c.lateAck, c.ackDue = true, true
	require.NoError(t, c.holdWrites(true))
	require.NoError(t, c.sendString("g"))
	require.NoError(t, c.sendString("m100000,400"))
	assert.Empty(t, w.writes, "written while held")
	require.NoError(t, c.holdWrites(false))
	assert.Equal(t, []string{"+$g#67$m100000,400#4e"}, w.writes)
	require.NoError(t, c.holdWrites(false)) // nothing held: no write
	require.NoError(t, c.sendString("g"))
	assert.Equal(t, []string{"+$g#67$m100000,400#4e", "$g#67"}, w.writes)
}
