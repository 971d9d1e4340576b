package monitor_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/debuggee/debuggeetest"
	"github.com/rspstub/rspstub/emulator/ucwin"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
	"github.com/rspstub/rspstub/rsp/rsptest"
)

// servedAt serves prog (Unicorn, synth userland) in-process on loopback
// TCP, runs it to the first hit of sym and returns a connected client:
// the stub and the client of the perf harness's rows, in one process.
func servedAt(b *testing.B, prog, sym string, args ...string) *rsp.Client {
	b.Helper()
	tg, err := ucwin.New(ucwin.Config{Program: prog, Args: args})
	require.NoError(b, err)
	b.Cleanup(func() { tg.Close() })
	view := debuggeetest.View(tg)
	addr, err := view.Commands().Resolve(sym)
	require.NoError(b, err)
	s := rsptest.Start(b, view, rsp.WithLogger(slog.New(slog.DiscardHandler)))
	c, err := rsp.Dial(s.Addr, rsp.WithTimeout(time.Minute))
	require.NoError(b, err)
	b.Cleanup(func() { c.Close() })
	require.NoError(b, c.SetBreakpoint(rsp.BreakSoftware, addr, 1))
	st, err := c.Continue()
	require.NoError(b, err)
	require.Equal(b, rsp.StopSWBreak, st.Kind, "run to %s: %+v", sym, st)
	require.NoError(b, c.RemoveBreakpoint(rsp.BreakSoftware, addr, 1))
	return c
}

// BenchmarkBacktraceServed is the perf harness's `monitor bt` again and
// `bt -json` again rows (issue 17: each ≤ 30 ms end to end): a
// 10,000-deep recursion (tests/testdata/recurse.c) stopped in leaf(),
// the command sent by rsp.Client and its output streamed back, both
// sides in this process over loopback TCP.
//
//	go test ./monitor -run XXX -bench BacktraceServed -benchtime 20x
func BenchmarkBacktraceServed(b *testing.B) {
	exe := testkit.BuildPE(b, "tests/testdata/recurse.c", testkit.MinGW, "-O2", "-g")
	c := servedAt(b, exe, "leaf", "10000")
	for _, cmd := range []string{"bt", "bt -json"} {
		b.Run(strings.ReplaceAll(cmd, " ", ""), func(b *testing.B) {
			// The first command at the stop reads the symbol tables: not
			// what is measured.
			out, err := c.Monitor(cmd + " -n 20000")
			require.NoError(b, err)
			n := strings.Count(out, "\n") - 2 // header (or none) and end line
			if cmd == "bt -json" {
				n = strings.Count(out, `"index":`)
			}
			require.Greater(b, n, 10000, "frames in %s", cmd)
			b.SetBytes(int64(len(out)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Monitor(cmd + " -n 20000"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
