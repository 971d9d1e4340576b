// Package debuggeetest gives tests the process layer over a backend
// target they drive directly.
package debuggeetest

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/debuggee"
	"github.com/rspstub/rspstub/rsp"
)

var (
	mu    sync.Mutex
	views = map[debuggee.Backend]*debuggee.Target{}
)

// View is the layer over b, one per backend for the life of the test
// binary, so that its monitor keeps its symbol caches from one command to
// the next.
func View(b debuggee.Backend) *debuggee.Target {
	mu.Lock()
	defer mu.Unlock()
	v := views[b]
	if v == nil {
		v = debuggee.New(b)
		views[b] = v
	}
	return v
}

// Serve serves the layer over b (View) on a loopback port for the rest of
// the test and returns a client connected to it.
func Serve(t testing.TB, b debuggee.Backend) *rsp.Client {
	t.Helper()
	l, err := rsp.Listen("127.0.0.1:0", nil)
	require.NoError(t, err)
	srv := rsp.NewServer(View(b), rsp.WithLogger(slog.New(slog.DiscardHandler)))
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	c, err := rsp.Dial(l.Addr().String(), rsp.WithTimeout(30*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}
