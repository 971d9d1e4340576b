package testkit

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// PeerAddr stands for the address a peer stub listens on in StartPeer's
// command line.
const PeerAddr = "{addr}"

// StartPeer runs another RSP stub, for tests that compare ours with it or
// drive our client against it: argv is its command line with the address
// to listen on written as PeerAddr ("gdbserver", "--once", PeerAddr,
// PROGRAM; "lldb-server", "gdbserver", PeerAddr, "--", PROGRAM). A missing
// tool skips or fails (RequireTool). It returns the address once the
// peer has bound it; the peer is killed when the test ends.
func StartPeer(t testing.TB, argv ...string) string {
	t.Helper()
	require.NotEmpty(t, argv, "StartPeer: no command line")
	bin := RequireTool(t, argv[0])
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	args := make([]string, len(argv)-1)
	for i, a := range argv[1:] {
		args[i] = strings.ReplaceAll(a, PeerAddr, addr)
	}
	cmd := exec.Command(bin, args...)
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	// A probe connection would be taken for the debugger by gdbserver
	// --once: wait until the port is bound instead.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return addr
		}
		l.Close()
		select {
		case <-exited:
			require.FailNow(t, "peer stub exited before listening", "%s", strings.Join(argv, " "))
		case <-time.After(20 * time.Millisecond):
		}
	}
	require.FailNow(t, "peer stub did not listen", "%s on %s within 10 s", strings.Join(argv, " "), addr)
	return ""
}

// TCPPair returns the two ends of a loopback TCP connection, both closed
// when the test ends. (net.Pipe has no buffering: in RSP's ack mode both
// sides would block writing at once.) For tests inside package rsp, which
// serve a target on one end (rsp/rsptest, which serves any target, would
// be an import cycle there).
func TCPPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	b, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	a, err := l.Accept()
	require.NoError(t, err)
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a, b
}
