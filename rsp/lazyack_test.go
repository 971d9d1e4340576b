package rsp

import (
	"github.com/rspstub/rspstub/internal/testkit"

	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ackStub is a stub in ack mode without QStartNoAckMode, like
// qemu-system's: it acks every packet at once, answers in order, and
// never waits for the client's `+`. Memory reads answer b = low byte of
// the address. Each packet it takes is sent on got with the bytes that
// came before its '$' (the client's acks).
type ackStub struct {
	conn  net.Conn
	r     *bufio.Reader
	got   chan ackPacket
	reads *readLog
}

// readLog records what each Read of the connection returned: bytes
// written together arrive together on loopback, bytes written 100 ms
// apart do not.
type readLog struct {
	conn net.Conn
	mu   sync.Mutex
	log  []string
}

func (l *readLog) Read(p []byte) (int, error) {
	n, err := l.conn.Read(p)
	l.mu.Lock()
	l.log = append(l.log, string(p[:n]))
	l.mu.Unlock()
	return n, err
}

func (l *readLog) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.log {
		if strings.Contains(r, s) {
			return true
		}
	}
	return false
}

type ackPacket struct{ before, payload string }

func (s *ackStub) read() (ackPacket, error) {
	var p ackPacket
	before, err := s.r.ReadString('$')
	if err != nil {
		return p, err
	}
	body, err := s.r.ReadString('#')
	if err != nil {
		return p, err
	}
	if _, err := s.r.Discard(2); err != nil {
		return p, err
	}
	p.before, p.payload = strings.TrimSuffix(before, "$"), strings.TrimSuffix(body, "#")
	_, err = s.conn.Write([]byte{'+'})
	return p, err
}

func (s *ackStub) reply(payload string) error {
	_, err := fmt.Fprintf(s.conn, "$%s#%02x", payload, sumBytes([]byte(payload)))
	return err
}

func (s *ackStub) answer(p ackPacket) error {
	switch {
	case strings.HasPrefix(p.payload, "qSupported"):
		return s.reply("PacketSize=1000")
	case p.payload == "Hg0":
		return s.reply("OK")
	case strings.HasPrefix(p.payload, "m"):
		a, n, _ := strings.Cut(p.payload[1:], ",")
		addr, _ := strconv.ParseUint(a, 16, 64)
		size, _ := strconv.ParseUint(n, 16, 64)
		var b strings.Builder
		for i := uint64(0); i < size; i++ {
			fmt.Fprintf(&b, "%02x", byte(addr+i))
		}
		return s.reply(b.String())
	}
	return s.reply("")
}

// startAckStub serves one client; packets are answered by the test
// (through got and answer), so it can hold a reply back.
func startAckStub(t *testing.T) (*ackStub, net.Conn) {
	srv, cli := testkit.TCPPair(t)
	s := &ackStub{conn: srv, got: make(chan ackPacket, 16), reads: &readLog{conn: srv}}
	s.r = bufio.NewReader(s.reads)
	go func() {
		defer close(s.got)
		for {
			p, err := s.read()
			if err != nil {
				return
			}
			s.got <- p
		}
	}()
	return s, cli
}

// TestLazyAcks: with SetLazyAcks the client's `+` for a reply is not
// sent on its own but in front of its next packet, and a memory read
// keeps a second request in flight before the first is answered.
func TestLazyAcks(t *testing.T) {
	s, conn := startAckStub(t)
	// Negotiation: answer as packets come.
	ready := make(chan *Client, 1)
	go func() {
		c, err := NewClient(conn, WithTimeout(5*time.Second), WithClientLogger(quietLogger()))
		assert.NoError(t, err)
		ready <- c
	}()
	var c *Client
	for c == nil {
		select {
		case p := <-s.got:
			require.NoError(t, s.answer(p))
		case c = <-ready:
		}
	}
	require.NotNil(t, c)
	c.SetLazyAcks(true)

	// A request and its reply: the ack is owed, not sent.
	done := make(chan error, 1)
	go func() { _, err := c.Request("qC"); done <- err }()
	p := <-s.got
	require.Equal(t, "qC", p.payload)
	require.NoError(t, s.answer(p))
	assert.ErrorIs(t, <-done, ErrUnsupported)
	time.Sleep(100 * time.Millisecond)

	// The next packet carries it. A read of three chunks sends its
	// second request before the first is answered.
	chunk := (0x1000 - 8) / 2
	buf := make([]byte, 3*chunk)
	type result struct {
		n   int
		err error
	}
	res := make(chan result, 1)
	go func() { n, err := c.ReadMemory(0x10, buf); res <- result{n, err} }()
	first := <-s.got
	assert.Equal(t, "+", first.before, "the owed ack goes before the next packet")
	assert.True(t, s.reads.contains("+$m10,"), "the owed ack and the next packet in one write")
	assert.Equal(t, fmt.Sprintf("m10,%x", chunk), first.payload)
	select {
	case second := <-s.got:
		assert.Equal(t, fmt.Sprintf("m%x,%x", 0x10+chunk, chunk), second.payload)
		require.NoError(t, s.answer(first))
		require.NoError(t, s.answer(second))
	case <-time.After(5 * time.Second):
		require.FailNow(t, "the second read request did not come before the first reply")
	}
	third := <-s.got
	assert.Equal(t, fmt.Sprintf("m%x,%x", 0x10+2*chunk, chunk), third.payload)
	require.NoError(t, s.answer(third))
	r := <-res
	require.NoError(t, r.err)
	require.Equal(t, len(buf), r.n)
	want := make([]byte, len(buf))
	for i := range want {
		want[i] = byte(0x10 + i)
	}
	assert.Equal(t, want, buf)
}

// BenchmarkReadRuns decodes a reply of many run-length runs (zeroed
// memory from a server), which once cost a scan of the whole buffered
// reply per run.
func BenchmarkReadRuns(b *testing.B) {
	var payload []byte
	for len(payload) < 16<<10 {
		payload = append(payload, "0*~12"...) // 0 repeated, then digits
	}
	pkt := []byte(fmt.Sprintf("$%s#%02x", payload, sumBytes(payload)))
	r := &repeatReader{p: pkt}
	c := newCodecSizes(struct {
		*repeatReader
		discardWriter
	}{r, discardWriter{}}, 1<<20, 64)
	c.noAck = true
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		ev, err := c.readEvent()
		if err != nil || ev != evPacket {
			b.Fatal(ev, err)
		}
	}
}

type repeatReader struct {
	p   []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.p[r.off:])
	r.off = (r.off + n) % len(r.p)
	return n, nil
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
