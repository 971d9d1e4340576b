package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
)

// Helpers of the reliability and security tests: a raw RSP connection
// that can send anything (half packets, bad checksums, bare bytes), the
// stub's /proc figures (StubProc.Pid is its process id), and a snapshot
// of the guest state that a later client must see again.

// procFigures is what /proc/PID/status says about a process.
type procFigures struct {
	RSSKiB  int // VmRSS
	HWMKiB  int // VmHWM: the peak RSS
	Threads int // OS threads (goroutines are not visible from outside)
}

func (f procFigures) String() string {
	return fmt.Sprintf("RSS %.1f MiB (peak %.1f MiB), %d OS threads",
		float64(f.RSSKiB)/1024, float64(f.HWMKiB)/1024, f.Threads)
}

func readProc(t *testing.T, pid int) procFigures {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err, "read the stub's /proc status")
	var f procFigures
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		switch k {
		case "VmRSS":
			f.RSSKiB = n
		case "VmHWM":
			f.HWMKiB = n
		case "Threads":
			f.Threads = n
		}
	}
	return f
}

// rawConn is a TCP connection to the stub on which a test writes bytes
// of its choosing. It stays in ack mode unless the test asks otherwise.
type rawConn struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	acks []byte // '+' and '-' seen since the last takeAcks
}

func rawDial(t testing.TB, addr string) *rawConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	require.NoError(t, err, "dial %s", addr)
	return &rawConn{t: t, conn: conn, r: bufio.NewReaderSize(conn, 1<<16)}
}

func (c *rawConn) Close() { c.conn.Close() }

func frame(payload string) string {
	var sum byte
	for i := 0; i < len(payload); i++ {
		sum += payload[i]
	}
	return fmt.Sprintf("$%s#%02x", payload, sum)
}

// write sends raw bytes.
func (c *rawConn) write(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write([]byte(s))
	require.NoError(c.t, err, "write to the stub")
}

// send sends one well-formed packet.
func (c *rawConn) send(payload string) { c.t.Helper(); c.write(frame(payload)) }

// read returns the payload of the next packet (escapes and run-length
// runs undone), acking it; acks before it are kept in c.acks.
func (c *rawConn) read(timeout time.Duration) (string, error) {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	defer c.conn.SetReadDeadline(time.Time{})
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			return "", err
		}
		switch b {
		case '+', '-':
			c.acks = append(c.acks, b)
			continue
		case '$':
		default:
			return "", fmt.Errorf("unexpected byte %q between packets", b)
		}
		var out []byte
		var sum byte
		for {
			b, err := c.r.ReadByte()
			if err != nil {
				return "", err
			}
			if b == '#' {
				break
			}
			sum += b
			switch b {
			case '}':
				n, err := c.r.ReadByte()
				if err != nil {
					return "", err
				}
				sum += n
				out = append(out, n^0x20)
			case '*':
				n, err := c.r.ReadByte()
				if err != nil {
					return "", err
				}
				sum += n
				if len(out) == 0 || n < 29 {
					return "", fmt.Errorf("bad run-length count %q", n)
				}
				out = append(out, bytes.Repeat(out[len(out)-1:], int(n)-29)...)
			default:
				out = append(out, b)
			}
		}
		var cs [2]byte
		if _, err := c.r.Read(cs[:1]); err != nil {
			return "", err
		}
		if _, err := c.r.Read(cs[1:]); err != nil {
			return "", err
		}
		if got := fmt.Sprintf("%02x", sum); got != string(cs[:]) {
			return "", fmt.Errorf("reply %q has checksum %s, want %s", out, cs, got)
		}
		c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		c.conn.Write([]byte{'+'})
		return string(out), nil
	}
}

// reply reads the next packet or fails the test.
func (c *rawConn) reply() string {
	c.t.Helper()
	p, err := c.read(10 * time.Second)
	require.NoError(c.t, err, "no reply from the stub")
	return p
}

// request sends a packet and returns its reply, skipping `O` output.
func (c *rawConn) request(payload string) string {
	c.t.Helper()
	c.send(payload)
	for i := 0; i < 1000; i++ {
		p := c.reply()
		if isOutput(p) {
			continue
		}
		return p
	}
	require.FailNow(c.t, "no final reply", "to %q", payload)
	return ""
}

func isOutput(p string) bool { return len(p) > 1 && p[0] == 'O' && len(p)%2 == 1 && p != "OK" }

func (c *rawConn) takeAcks() []byte {
	a := c.acks
	c.acks = nil
	return a
}

// drain discards whatever the stub sends until it is quiet for quiet.
func (c *rawConn) drain(quiet time.Duration) int {
	n := 0
	buf := make([]byte, 4096)
	for i := 0; i < 10000; i++ {
		c.conn.SetReadDeadline(time.Now().Add(quiet))
		k, err := c.r.Read(buf)
		n += k
		if err != nil {
			break
		}
	}
	c.conn.SetReadDeadline(time.Time{})
	return n
}

// expectClosed waits for the stub to hang up.
func (c *rawConn) expectClosed(timeout time.Duration) error {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 4096)
	for i := 0; i < 1<<16; i++ {
		if _, err := c.r.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return fmt.Errorf("the stub did not hang up within %v", timeout)
			}
			return nil
		}
	}
	return fmt.Errorf("the stub keeps sending")
}

// guestState is what a client sees of a stopped guest: the stop reply
// and all registers.
type guestState struct {
	Stop string
	Regs string
}

func (g guestState) String() string {
	r := g.Regs
	if len(r) > 64 {
		r = r[:64] + "..."
	}
	return fmt.Sprintf("stop %q, registers %s", g.Stop, r)
}

// rawState reads the state on a raw connection.
func rawState(t testing.TB, c *rawConn) guestState {
	t.Helper()
	return guestState{Stop: c.request("?"), Regs: c.request("g")}
}

// clientState reads the state through the Go client.
func clientState(t testing.TB, c *rsp.Client) guestState {
	t.Helper()
	st, err := c.Request("?")
	require.NoError(t, err, "?")
	g, err := c.Request("g")
	require.NoError(t, err, "g")
	return guestState{Stop: st, Regs: g}
}

// newState connects a fresh client, reads the state and leaves (closing
// the connection without a detach).
func newState(t testing.TB, addr string) guestState {
	t.Helper()
	c := rawDial(t, addr)
	defer c.Close()
	c.request("qSupported:swbreak+;hwbreak+")
	return rawState(t, c)
}

// dial connects the Go client with a bounded exchange time.
func dial(t testing.TB, addr string) *rsp.Client {
	t.Helper()
	c, err := rsp.Dial(addr, rsp.WithTimeout(20*time.Second))
	require.NoError(t, err, "connect to the stub")
	return c
}

// runAndInterrupt continues a spinning guest, interrupts it after delay
// and checks that it stopped with SIGINT.
func runAndInterrupt(t testing.TB, c *rsp.Client, delay time.Duration) rsp.Stop {
	t.Helper()
	type result struct {
		st  rsp.Stop
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := c.Continue()
		done <- result{st, err}
	}()
	time.Sleep(delay)
	require.NoError(t, c.Interrupt(), "interrupt")
	select {
	case r := <-done:
		require.NoError(t, r.err, "continue")
		require.Equal(t, rsp.StopSignal, r.st.Kind, "stop %+v after an interrupt, want SIGINT", r.st)
		require.Equal(t, rsp.SIGINT, r.st.Signal, "stop %+v after an interrupt, want SIGINT", r.st)
		return r.st
	case <-time.After(15 * time.Second):
		require.FailNow(t, "no stop within 15 s of the interrupt")
	}
	return rsp.Stop{}
}

// spinStub starts a stub on the spinning guest and brings the guest into
// its loop (continue, interrupt), so that later states are mid-loop.
func spinStub(t *testing.T) (*testkit.StubProc, int) {
	t.Helper()
	exe := testkit.BuildPE(t, "tests/testdata/spin.c", testkit.MinGW, "-O2")
	stub := testkit.StartStub(t, exe)
	pid := stub.Pid()
	c := dial(t, stub.Addr)
	runAndInterrupt(t, c, 100*time.Millisecond)
	c.Close()
	return stub, pid
}

// sameState fails unless two states are equal.
func sameState(t testing.TB, what string, got, want guestState) {
	t.Helper()
	require.Equal(t, want, got, "%s: the guest state changed", what)
}
