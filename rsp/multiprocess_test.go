package rsp

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMultiprocessIDs: after multiprocess+ every thread id the server
// writes is p<pid>.<tid> (stop replies, qC, qfThreadInfo, the thread
// list) and exits name the process; without it ids stay bare.
func TestMultiprocessIDs(t *testing.T) {
	tt := newTestTarget()
	tt.threadIDs = []int{1, 0x24}
	conn, _, _ := startPipe(t, tt)
	p := newRawPeer(t, conn)
	assert.Regexp(t, `;multiprocess\+$`, p.ask("qSupported:multiprocess+;swbreak+"))
	assert.Regexp(t, `^T05thread:p2a\.1;`, p.ask("?"))
	assert.Equal(t, "QCp2a.1", p.ask("qC"))
	assert.Equal(t, "mp2a.1,p2a.24", p.ask("qfThreadInfo"))
	assert.Contains(t, p.ask("qXfer:threads:read::0,1000"), `<thread id="p2a.24" name="worker36">`)
	assert.Equal(t, "OK", p.ask("Hgp2a.24"))
	assert.Equal(t, "OK", p.ask("Tp2a.24"))
	assert.Equal(t, "OK", p.ask("Hcp2a.-1"))
	assert.Regexp(t, `^T05thread:p2a\.1;`, p.ask("vCont;s:p2a.1"))
	tt.stop = Stop{Kind: StopExited, ExitCode: 3}
	assert.Equal(t, "W03;process:2a", p.ask("?"))
	tt.stop = Stop{Kind: StopTerminated, Signal: SIGKILL}
	assert.Equal(t, "X09;process:2a", p.ask("?"))

	conn2, _, _ := startPipe(t, newTestTarget())
	p2 := newRawPeer(t, conn2)
	assert.NotContains(t, p2.ask("qSupported:swbreak+"), "multiprocess")
	assert.Regexp(t, `^T05thread:1;`, p2.ask("?"))
	assert.Equal(t, "QC1", p2.ask("qC"))
}

// svr4Target offers an SVR4 library list and withholds the Windows one.
type svr4Target struct{ *testTarget }

func (svr4Target) SVR4Libraries(dst []SVR4Library) (uint64, []SVR4Library, error) {
	return 0x7ffff7ffe2e0, append(dst,
		SVR4Library{Name: "linux-vdso.so.1", LM: 0x7ffff7fc1000, Addr: 0x7ffff7fc1000, Dynamic: 0x7ffff7fc13e0},
		SVR4Library{Name: "/lib/x86_64-linux-gnu/libc.so.6", LM: 0x7ffff7fc1710, Addr: 0x7ffff7d9c000, Dynamic: 0x7ffff7f9d9c0}), nil
}

func (svr4Target) Offers(f Feature) bool { return f != FeatureLibraries }

// TestSVR4Libraries: a FeatureGate decides which library list is
// advertised and served; the SVR4 document names main-lm and lists the
// other entries with lm, l_addr and l_ld.
func TestSVR4Libraries(t *testing.T) {
	b, _, _ := startPipe(t, svr4Target{newTestTarget()})
	p := newRawPeer(t, b)
	sup := p.ask("qSupported:multiprocess+")
	assert.Contains(t, sup, ";qXfer:libraries-svr4:read+")
	assert.NotContains(t, sup, ";qXfer:libraries:read+")
	assert.Equal(t, "", p.ask("qXfer:libraries:read::0,1000"))
	assert.Equal(t, `l<library-list-svr4 version="1.0" main-lm="0x7ffff7ffe2e0">
  <library name="linux-vdso.so.1" lm="0x7ffff7fc1000" l_addr="0x7ffff7fc1000" l_ld="0x7ffff7fc13e0" lmid="0x0"/>
  <library name="/lib/x86_64-linux-gnu/libc.so.6" lm="0x7ffff7fc1710" l_addr="0x7ffff7d9c000" l_ld="0x7ffff7f9d9c0" lmid="0x0"/>
</library-list-svr4>
`, p.ask("qXfer:libraries-svr4:read::0,1000"))
	assert.Equal(t, "E16", p.ask("qXfer:libraries-svr4:read:start=0;prev=0:0,1000"))

	// The test target has no SVR4 list: not advertised, not served.
	conn2, _, _ := startPipe(t, newTestTarget())
	p2 := newRawPeer(t, conn2)
	require.NotContains(t, p2.ask("qSupported:"), "libraries-svr4")
	assert.Equal(t, "", p2.ask("qXfer:libraries-svr4:read::0,1000"))
	assert.Equal(t, `<library-list-svr4 version="1.0">`+"\n</library-list-svr4>\n", SVR4LibrariesXML(0, nil))
}
