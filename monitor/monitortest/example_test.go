package monitortest_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/monitor"
	"github.com/rspstub/rspstub/monitor/monitortest"
	"github.com/rspstub/rspstub/rsp"
)

// TestDemoStackAtD is the example regression test: run the seed program
// under "rspstub serve", stop in d, and check the stack against
// testdata/demo-at-d.golden (go test -update rewrites it).
func TestDemoStackAtD(t *testing.T) {
	src := testkit.BuildPE(t, "examples/demo/demo.c", testkit.MinGW, "-O2", "-g")
	exe := filepath.Join(t.TempDir(), "demo.exe")
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(exe, b, 0o755))
	stub := testkit.StartStub(t, exe)
	c, err := rsp.Dial(stub.Addr)
	require.NoError(t, err)
	defer c.Close()

	s := monitortest.Attach(t, c, func(m monitor.Module) ([]byte, error) {
		if m.Name == "demo.exe" {
			return os.ReadFile(exe)
		}
		return nil, errors.New("no local file")
	})
	s.RunTo(t, "d")
	bt := s.Backtrace(t)
	monitortest.Golden(t, "testdata/demo-at-d.golden", monitortest.Stack(bt))

	// Memory through the same session: frame 0's return address slot
	// holds frame 1's pc.
	assert.Equal(t, bt.Frames[1].PC, s.ReadU64(t, bt.Frames[0].ReturnAddressAt), "the return address slot, against frame 1's pc")
}

// TestStartInProcess: the same regression test with the stub started in
// this process by monitortest.Start.
func TestStartInProcess(t *testing.T) {
	exe := testkit.BuildPE(t, "examples/demo/demo.c", testkit.ClangMinGW, "-O0", "-g")
	var out bytes.Buffer
	s := monitortest.Start(t, exe, &out)
	s.RunTo(t, "c")
	got := monitortest.Stack(s.Backtrace(t))
	assert.True(t, strings.HasPrefix(got, filepath.Base(exe)+"!c\n"), "stack:\n%s", got)
	assert.Contains(t, got, "ntdll.dll!RtlUserThreadStart\n-- zero return address", "stack")
	assert.Contains(t, out.String(), "b: ", "guest output")
}
