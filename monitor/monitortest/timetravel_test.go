package monitortest_test

import (
	"bytes"
	"debug/pe"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/monitor/monitortest"
	"github.com/rspstub/rspstub/rsp"
)

// TestBackToWrite is the example of a regression test that bisects a
// failure back in time: run tests/testdata/corrupt.c recorded to the end
// of main, see the global is wrong, go back to its last write and check
// who wrote it; then reverse-stepi, and forward again to the end with
// the output printed once.
func TestBackToWrite(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/corrupt.c", testkit.MinGW, "-O0", "-g")
	var out bytes.Buffer
	s := monitortest.StartRecorded(t, exe, &out)
	guard := peSymbol(t, exe, "guard")
	s.RunTo(t, "outer")
	before := s.Position(t)
	// To outer's return address: the global is corrupted by then.
	sp, err := s.Client.ReadRegisterUint("rsp")
	require.NoError(t, err)
	ret := s.ReadU64(t, sp)
	require.NoError(t, s.Client.SetBreakpoint(rsp.BreakSoftware, ret, 1))
	st, err := s.Client.Continue()
	require.NoError(t, err)
	require.NoError(t, s.Client.RemoveBreakpoint(rsp.BreakSoftware, ret, 1))
	require.Equal(t, rsp.StopSWBreak, st.Kind)
	assert.Equal(t, uint64(39), s.ReadU64(t, guard)&0xffffffff)

	st = s.BackToWrite(t, guard, 4)
	assert.Equal(t, rsp.StopWatch, st.Kind)
	assert.Equal(t, uint64(42), s.ReadU64(t, guard)&0xffffffff, "before the store")
	mod := filepath.Base(exe)
	assert.Equal(t, mod+"!corrupt\n"+mod+"!middle\n"+mod+"!outer\n"+mod+"!main\n",
		firstLines(monitortest.Stack(s.Backtrace(t)), 4), "who wrote")
	at := s.Position(t)
	assert.Greater(t, at, before)
	s.ReverseStep(t)
	assert.Equal(t, at-1, s.Position(t))
	st = s.ReverseContinue(t) // no breakpoint: the recording's start
	assert.Equal(t, "begin", st.ReplayLog)
	st, err = s.Client.Continue()
	require.NoError(t, err)
	assert.Equal(t, rsp.StopExited, st.Kind)
	assert.Equal(t, "before: guard=42\nafter: guard=39\n", out.String())
}

func firstLines(s string, n int) string {
	var b bytes.Buffer
	for i, l := range bytes.SplitAfter([]byte(s), []byte("\n")) {
		if i == n {
			break
		}
		b.Write(l)
	}
	return b.String()
}

// peSymbol is a global's address from the image's COFF symbols.
func peSymbol(t *testing.T, exe, name string) uint64 {
	f, err := pe.Open(exe)
	require.NoError(t, err)
	defer f.Close()
	oh := f.OptionalHeader.(*pe.OptionalHeader64)
	for _, sym := range f.Symbols {
		if sym.Name == name && sym.SectionNumber > 0 {
			return oh.ImageBase + uint64(f.Sections[sym.SectionNumber-1].VirtualAddress) + uint64(sym.Value)
		}
	}
	t.Fatalf("no symbol %s", name)
	return 0
}
