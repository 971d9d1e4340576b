package rsp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// connPair returns both ends of a fresh connection on network ("tcp" or
// "unix").
func connPair(t *testing.T, network string) (net.Conn, net.Conn) {
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	l, err := net.Listen(network, addr)
	require.NoError(t, err)
	defer l.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		acc <- c
	}()
	a, err := net.Dial(network, l.Addr().String())
	require.NoError(t, err)
	b := <-acc
	require.NotNil(t, b)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestRawIO checks the raw socket reader-writer the codec uses: it is
// chosen for TCP and unix sockets, moves small and large messages both
// ways (a large write fills the socket and waits for room), honours
// read deadlines, reports the peer's close as EOF, and reports a write
// to a closed peer as net.Conn does.
func TestRawIO(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			a, b := connPair(t, network)
			ra, rb := fastIO(a), fastIO(b)
			require.IsType(t, &rawIO{}, ra)

			_, err := ra.Write([]byte("$qSupported#37"))
			require.NoError(t, err)
			buf := make([]byte, 64)
			n, err := rb.Read(buf)
			require.NoError(t, err)
			assert.Equal(t, "$qSupported#37", string(buf[:n]))

			big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: more than a socket holds
			done := make(chan error, 1)
			go func() {
				_, err := ra.Write(big)
				done <- err
			}()
			got := make([]byte, 0, len(big))
			for len(got) < len(big) {
				n, err := rb.Read(buf[:cap(buf)])
				require.NoError(t, err)
				got = append(got, buf[:n]...)
			}
			require.NoError(t, <-done)
			assert.True(t, bytes.Equal(big, got), "1 MiB through the raw path")

			require.NoError(t, b.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
			_, err = rb.Read(buf)
			assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
			require.NoError(t, b.SetReadDeadline(time.Time{}))

			require.NoError(t, a.Close())
			_, err = rb.Read(buf)
			assert.ErrorIs(t, err, io.EOF)
			var werr error
			for i := 0; i < 100 && werr == nil; i++ { // the first write may still be taken
				_, werr = rb.Write([]byte("+"))
				time.Sleep(time.Millisecond)
			}
			var oe *net.OpError
			assert.True(t, errors.As(werr, &oe), "write to a closed peer: %v (%T), want a *net.OpError", werr, werr)
		})
	}
}

// TestRawIOPipe: a connection that is not a socket is used as it is.
func TestRawIOPipe(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	assert.Equal(t, io.ReadWriter(a), fastIO(a))
}
