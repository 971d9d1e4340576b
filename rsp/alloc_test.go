package rsp

import (
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loopConn replays one framed packet forever and discards what is
// written: the whole steady-state path (read, decode, handle, reply) runs
// without a network.
type loopConn struct {
	net.Conn // nil; only the methods below are used
	in       []byte
	off      int
	written  int
}

func (c *loopConn) Read(p []byte) (int, error) {
	n := copy(p, c.in[c.off:])
	c.off = (c.off + n) % len(c.in)
	return n, nil
}

func (c *loopConn) Write(p []byte) (int, error) { c.written += len(p); return len(p), nil }
func (c *loopConn) Close() error                { return nil }

// stepOnce reads one packet and answers it as the session loop does.
func stepOnce(t testing.TB, s *session) {
	ev, err := s.c.readEvent()
	if err != nil || ev != evPacket {
		require.FailNow(t, "readEvent", "%v %v", ev, err) // not require.NoError: no allocation on the measured path
	}
	if !s.finish(s.dispatch(s.c.pkt)) {
		require.FailNow(t, "session ended")
	}
}

func newLoopSession(t testing.TB, payload string, noAck bool) (*session, *loopConn) {
	tt := newTestTarget()
	srv := NewServer(tt, WithLogger(quietLogger()))
	lc := &loopConn{in: []byte(frame(payload))}
	s := newSession(srv, lc)
	s.c.noAck = noAck
	return s, lc
}

func TestPacketPathAllocs(t *testing.T) {
	for _, payload := range []string{
		"m140001000,200",
		"m7ff000,1000",
		"x140001000,200",
		"g",
		"p10",
		"p11;thread:1;",
		"P0=0100000000000000",
		"Z0,140001100,1",
		"z0,140001100,1",
		"M7ff000,4:01020304",
		"X7ff000,4:abcd",
		"m0,4", // an error reply costs nothing either
		"qC",
	} {
		for _, noAck := range []bool{false, true} {
			s, lc := newLoopSession(t, payload, noAck)
			allocs := testing.AllocsPerRun(200, func() { stepOnce(t, s) })
			assert.Zero(t, allocs, "%q (noAck=%v): allocations per packet", payload, noAck)
			assert.NotZero(t, lc.written, "%q: no reply", payload)
		}
	}
}

func BenchmarkPacketPath(b *testing.B) {
	for _, payload := range []string{"m140001000,200", "g", "p10", "Z0,140001100,1"} {
		b.Run(payload, func(b *testing.B) {
			s, _ := newLoopSession(b, payload, true)
			b.ReportAllocs()
			for b.Loop() {
				stepOnce(b, s)
			}
		})
	}
}

var _ io.ReadWriter = (*loopConn)(nil)
