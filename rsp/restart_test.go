package rsp

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExtendedRestart: `!` enters extended mode; vRun starts the program
// again (with arguments when given) and answers its first stop; vKill and
// k end the guest but not the session; R restarts without a reply; and
// the server keeps serving after the guest exits.
func TestExtendedRestart(t *testing.T) {
	tt := newTestTarget()
	srv := serveTCP(t, tt)
	dial := func() *rawPeer {
		c, err := net.Dial("tcp", srv.addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return newRawPeer(t, c)
	}

	p := dial()
	assert.Equal(t, "E01", p.ask("vRun;"), "vRun needs extended mode")
	assert.Equal(t, "OK", p.ask("!"))
	got := p.ask("vRun;;" + hexString("7") + ";" + hexString("a b"))
	assert.Regexp(t, `^T05thread:1;10:1010004001000000;.*library:;$`, got)
	assert.Equal(t, []string{"7", "a b"}, tt.args)
	assert.Equal(t, 1, tt.restarts)
	assert.Equal(t, "E16", p.ask("vRun;zz"))

	assert.Equal(t, "OK", p.ask("vKill;1"), "vKill in extended mode")
	assert.True(t, tt.killed)
	assert.Equal(t, "X09", p.ask("?"), "the session goes on with the killed guest")
	assert.Regexp(t, `^T05`, p.ask("vRun;"))
	assert.Equal(t, []string{"7", "a b"}, tt.args, "no arguments: the old ones")

	p.send(frame("k")) // no reply in extended mode
	assert.Equal(t, "X09", p.ask("?"))
	p.send(frame("R00"))
	assert.Regexp(t, `^T05`, p.ask("?"))
	assert.Equal(t, 3, tt.restarts)

	// The guest "exits" and the client leaves: the server serves on.
	tt.stop = Stop{Kind: StopExited}
	p.conn.Close()
	time.Sleep(100 * time.Millisecond)
	p = dial()
	assert.Equal(t, "W00", p.ask("?"))
	assert.Regexp(t, `^T05`, func() string { p.ask("!"); return p.ask("vRun;") }())
	select {
	case err := <-srv.done:
		require.Fail(t, "Serve returned", "%v", err)
	default:
	}
}

// TestRestartUnsupported: without Restarter, `!`, vRun and R answer
// empty and k still ends the session.
func TestRestartUnsupported(t *testing.T) {
	b, _, _ := startPipe(t, &plainTarget{newTestTarget()})
	p := newRawPeer(t, b)
	for _, pkt := range []string{"!", "vRun;", "R00"} {
		assert.Equal(t, "", p.ask(pkt), pkt)
	}
	assert.True(t, strings.HasPrefix(p.ask("?"), "T05"))
}
