package qemu

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/debuggee/debuggeetest"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
)

// TestAnswersSystem: qemu-system (a Windows-like guest, testdata
// winguest.S, stopped before it has a TEB) advertises the Windows library
// list and answers it; auxv (a Linux view) is not advertised; vFile and
// qXfer:exec-file only with a --module file to serve.
func TestAnswersSystem(t *testing.T) {
	g := buildWinGuest(t)
	mf, err := ParseModuleFile(g.exe + "@800000")
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		opt  Options
		want []string
	}{
		{"no-module", Options{}, []string{"qXfer:libraries"}},
		{"module", Options{Modules: []*ModuleFile{mf}}, []string{"qXfer:libraries", "qXfer:exec-file", "vFile"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startStubWith(t, tc.opt, testkit.QEMUSystemArgs(g.kernel, 1)...)
			c := s.dial(t)
			d := peSymbol(t, g.exe, "d")
			require.NoError(t, c.SetBreakpoint(rsp.BreakSoftware, d, 1))
			st, err := c.Continue()
			require.NoError(t, err)
			require.Equal(t, rsp.StopSWBreak, st.Kind)
			assert.Equal(t, tc.want, debuggeetest.CheckAnswers(t, c))
			// qGetTIBAddr is dispatched (a Windows view); with no TEB yet
			// it answers an error, not an empty reply.
			_, ok, err := debuggeetest.TIB(t, c, st.Thread)
			assert.True(t, ok)
			assert.Error(t, err)
		})
	}
}

// TestAnswersUser: qemu-user (a dynamically linked Linux program, stopped
// after its dynamic linker ran) advertises the SVR4 library list and auxv
// and answers both; no Windows view, no vFile (the program's files are
// the debugger host's).
func TestAnswersUser(t *testing.T) {
	prog := buildConf(t, false)
	s := startStub(t, "qemu-x86_64", prog)
	c := s.dial(t)
	require.NoError(t, c.SetBreakpoint(rsp.BreakSoftware, symbol(t, prog, "count"), 1))
	st, err := c.Continue()
	require.NoError(t, err)
	require.Equal(t, rsp.StopSWBreak, st.Kind)
	assert.Equal(t, []string{"qXfer:libraries-svr4", "qXfer:auxv"}, debuggeetest.CheckAnswers(t, c))
	_, ok, _ := debuggeetest.TIB(t, c, st.Thread)
	assert.False(t, ok, "qGetTIBAddr is not dispatched for a Linux program")
}
