package tests

import (
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/debuggee"
	"github.com/rspstub/rspstub/emulator/ucwin"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
	"github.com/rspstub/rspstub/rsp/rsptest"
)

// Reconnects and the soak (issue 9): the stub keeps serving through 1,000
// connections in a row and through long sessions, and its memory stays
// flat. Figures are logged (go test -v) for the closing note.

// rssSlack is how much the stub's resident set may grow over a run.
const rssSlack = 20 << 10 // KiB

// TestReliabilityReconnect connects 1,000 times in a row (qSupported, ?,
// g, hang up), then runs a normal session.
func TestReliabilityReconnect(t *testing.T) {
	stub, pid := spinStub(t)
	s0 := newState(t, stub.Addr)
	before := readProc(t, pid)
	stats := []stubStats{readStubStats(t, stub.Addr)}
	start := time.Now()
	const n = 1000
	for i := 0; i < n; i++ {
		if i > 0 && i%250 == 0 {
			stats = append(stats, readStubStats(t, stub.Addr))
		}
		c := rawDial(t, stub.Addr)
		c.write("+")
		require.Contains(t, c.request("qSupported:swbreak+;hwbreak+;vContSupported+"), "PacketSize=", "connection %d: qSupported reply", i)
		if st := rawState(t, c); st != s0 {
			c.Close()
			sameState(t, fmt.Sprintf("connection %d", i), st, s0)
		}
		c.Close()
	}
	elapsed := time.Since(start)
	after := readProc(t, pid)
	t.Logf("%d reconnects in %v (%v each); stub before: %v; after: %v", n, elapsed.Round(time.Millisecond),
		(elapsed / n).Round(time.Microsecond), before, after)
	assert.LessOrEqual(t, after.RSSKiB-before.RSSKiB, rssSlack, "the stub's RSS growth (KiB) over %d reconnects", n)
	// The binary's own figures (monitor stub-stats -gc), every 250
	// connections: goroutines and heap stay flat.
	stats = append(stats, readStubStats(t, stub.Addr))
	for i, st := range stats {
		t.Logf("stub-stats after %4d connections: %s", i*250, st)
	}
	first, last := stats[0], stats[len(stats)-1]
	assert.GreaterOrEqual(t, last.sessions-first.sessions, n, "the sessions the stub counted")
	assert.LessOrEqual(t, last.goroutines, first.goroutines+2, "the stub's goroutines after %d reconnects (from %d)", n, first.goroutines)
	assert.LessOrEqual(t, last.heapInUse, first.heapInUse+heapSlack, "the stub's heap in use after %d reconnects (from %d bytes)", n, first.heapInUse)
	// A normal session still works, on the same guest.
	c := dial(t, stub.Addr)
	defer c.Close()
	sameState(t, "a normal session after the reconnects", clientState(t, c), s0)
	runAndInterrupt(t, c, 50*time.Millisecond)
}

// TestReliabilityReconnectGoroutines is the reconnect loop against the
// same server and target in this process, where goroutines and the heap
// are counted directly (TestReliabilityReconnect reads the binary's own
// through monitor stub-stats).
func TestReliabilityReconnectGoroutines(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/spin.c", testkit.MinGW, "-O2")
	tg, err := ucwin.New(ucwin.Config{Program: exe})
	require.NoError(t, err)
	t.Cleanup(func() { tg.Close() }) // after the server's
	addr := rsptest.Start(t, debuggee.New(tg), rsp.WithLogger(quietLog())).Addr
	c := dial(t, addr)
	runAndInterrupt(t, c, 50*time.Millisecond)
	c.Close()
	s0 := newState(t, addr)
	g0, h0 := settle()
	const n = 1000
	for i := 0; i < n; i++ {
		c := rawDial(t, addr)
		c.write("+")
		c.request("qSupported:swbreak+")
		if st := rawState(t, c); st != s0 {
			c.Close()
			sameState(t, fmt.Sprintf("connection %d", i), st, s0)
		}
		c.Close()
	}
	g1, h1 := settle()
	t.Logf("%d reconnects in process: goroutines %d -> %d, heap in use %.1f -> %.1f MiB", n, g0, g1,
		float64(h0)/(1<<20), float64(h1)/(1<<20))
	assert.LessOrEqual(t, g1, g0+2, "goroutines after %d reconnects (from %d)", n, g0)
	assert.LessOrEqual(t, h1, h0+rssSlack<<10, "heap bytes (from %d)", h0)
}

// heapSlack is how much the stub's heap in use (after a collection) may
// grow over a run.
const heapSlack = 4 << 20

// stubStats are the figures of monitor stub-stats that the soak watches.
type stubStats struct {
	goroutines, sessions, packets int
	heapInUse                     int64
}

func (s stubStats) String() string {
	return fmt.Sprintf("goroutines %d, heap in use %.2f MiB, sessions %d, packets %d", s.goroutines,
		float64(s.heapInUse)/(1<<20), s.sessions, s.packets)
}

// parseStubStats reads the "name value" lines of monitor stub-stats.
func parseStubStats(t *testing.T, out string) stubStats {
	t.Helper()
	var st stubStats
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(l, " ")
		x, _ := strconv.ParseFloat(v, 64)
		switch k {
		case "goroutines":
			st.goroutines = int(x)
		case "heap-inuse":
			st.heapInUse = int64(x)
		case "sessions":
			st.sessions = int(x)
		case "packets":
			st.packets = int(x)
		}
	}
	require.NotZero(t, st.goroutines, "monitor stub-stats output %q: goroutines", out)
	require.NotZero(t, st.heapInUse, "monitor stub-stats output %q: heap in use", out)
	return st
}

// sessionStubStats reads the figures on an open session (the stub
// serves one debugger at a time).
func sessionStubStats(t *testing.T, c *rsp.Client) stubStats {
	t.Helper()
	out, err := c.Monitor("stub-stats -gc")
	require.NoError(t, err, "monitor stub-stats")
	return parseStubStats(t, out)
}

// readStubStats asks the stub for its own figures after a collection.
// Sessions that just ended may still be winding down: it waits until two
// readings agree on the goroutine count (bounded).
func readStubStats(t *testing.T, addr string) stubStats {
	t.Helper()
	var prev stubStats
	for try := 0; try < 20; try++ {
		c := dial(t, addr)
		out, err := c.Monitor("stub-stats -gc")
		c.Close()
		require.NoError(t, err, "monitor stub-stats")
		st := parseStubStats(t, out)
		if try > 0 && st.goroutines == prev.goroutines {
			return st
		}
		prev = st
		time.Sleep(20 * time.Millisecond)
	}
	return prev
}

// settle waits for ended sessions' goroutines to finish and returns the
// goroutine count and the heap in use after a collection.
func settle() (int, uint64) {
	var g int
	for i := 0; i < 100; i++ {
		g = runtime.NumGoroutine()
		time.Sleep(20 * time.Millisecond)
		if runtime.NumGoroutine() == g && i >= 5 {
			break
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return g, ms.HeapInuse
}

// TestReliabilitySoak runs one long session on loop.exe with a
// breakpoint on hit(): stop/resume cycles (continue to the breakpoint,
// every 100th racing a Ctrl-C) and a mix of read packets between them.
// Short mode: 100,000 packets and 10,000 cycles; RSPSTUB_SOAK=1: ten
// times that.
func TestReliabilitySoak(t *testing.T) {
	packets, cycles := 100_000, 10_000
	if os.Getenv("RSPSTUB_SOAK") == "1" {
		packets, cycles = 1_000_000, 100_000
	}
	exe := testkit.BuildPE(t, "tests/testdata/loop.c", testkit.MinGW, "-O1")
	hit := symbolAddr(t, exe, "hit")
	// hit() every 10 iterations: enough calls for every cycle.
	stub := testkit.StartStub(t, exe, "1000000000", "100000000")
	pid := stub.Pid()
	c := dial(t, stub.Addr)
	defer c.Close()
	require.NoError(t, c.SetBreakpoint(rsp.BreakSoftware, hit, 1))
	perCycle := packets / cycles
	reqs := []string{"g", "?", "qC", "qfThreadInfo", "p10", "p7", "p6", "qAttached"}
	sent, stops, sigints := 0, 0, 0
	var warm, peak procFigures
	var warmStats stubStats
	start := time.Now()
	warmAt := cycles / 20
	for i := 0; i < cycles; i++ {
		if i == warmAt {
			warm = readProc(t, pid)
			warmStats = sessionStubStats(t, c)
			start = time.Now()
		}
		if i%(cycles/10) == 0 {
			if f := readProc(t, pid); f.RSSKiB > peak.RSSKiB {
				peak = f
			}
		}
		var st rsp.Stop
		var err error
		if i%100 == 99 {
			// A Ctrl-C racing the breakpoint: either stop is right, and
			// the interrupt must not leak into the next cycle.
			done := make(chan struct{})
			go func() {
				st, err = c.Continue()
				close(done)
			}()
			c.Interrupt()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				require.FailNow(t, "no stop", "cycle %d", i)
			}
		} else {
			st, err = c.Continue()
		}
		require.NoError(t, err, "cycle %d", i)
		stops++
		switch {
		case st.Kind == rsp.StopSWBreak && st.Signal == rsp.SIGTRAP:
			pc, err := c.ReadRegisterUint("rip")
			sent++
			require.NoError(t, err, "cycle %d: rip", i)
			require.Equal(t, hit, pc, "cycle %d: rip at the breakpoint", i)
		case st.Signal == rsp.SIGINT && i%100 == 99:
			sigints++
		default:
			require.FailNow(t, "an unexpected stop", "cycle %d: stop %+v", i, st)
		}
		for k := 1; k < perCycle; k++ {
			var req string
			switch k % 4 {
			case 0:
				req = fmt.Sprintf("m%x,40", hit)
			default:
				req = reqs[(i+k)%len(reqs)]
			}
			rep, err := c.Request(req)
			sent++
			require.NoError(t, err, "cycle %d: %s", i, req)
			require.NotEmpty(t, rep, "cycle %d: %s", i, req)
		}
	}
	elapsed := time.Since(start)
	endStats := sessionStubStats(t, c)
	end := readProc(t, pid)
	if end.RSSKiB > peak.RSSKiB {
		peak = end
	}
	t.Logf("soak: %d stop/resume cycles (%d of them raced by a Ctrl-C that won) and %d packets besides the resumes; "+
		"%v after warm-up (%.0f cycles/s); stub after warm-up: %v; at the end: %v; highest sample %.1f MiB",
		stops, sigints, sent, elapsed.Round(time.Millisecond), float64(cycles-warmAt)/elapsed.Seconds(),
		warm, end, float64(peak.RSSKiB)/1024)
	assert.LessOrEqual(t, end.RSSKiB-warm.RSSKiB, rssSlack, "the stub's RSS growth (KiB) during the soak")
	t.Logf("soak: stub-stats after warm-up: %s; at the end: %s", warmStats, endStats)
	assert.LessOrEqual(t, endStats.goroutines, warmStats.goroutines+2, "the stub's goroutines during the soak (from %d)", warmStats.goroutines)
	assert.LessOrEqual(t, endStats.heapInUse, warmStats.heapInUse+heapSlack, "the stub's heap in use during the soak (from %d bytes)", warmStats.heapInUse)
	assert.GreaterOrEqual(t, endStats.packets-warmStats.packets, sent, "the packets the stub counted, against those the client sent")
	assert.LessOrEqual(t, end.Threads, warm.Threads+4, "the stub's OS threads (from %d)", warm.Threads)
	// Still answering.
	st, err := c.StopReason()
	require.NoError(t, err, "? at the end")
	require.NotEqual(t, rsp.StopExited, st.Kind, "? at the end: %+v", st)
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestReliabilityGDBReconnect: GDB disconnects and reconnects at once,
// three times in one session (the stub once refused such a client as a
// second debugger); each time it finds the same pc.
func TestReliabilityGDBReconnect(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	stub, _ := spinStub(t)
	cmds := []string{"echo @@pc\\n", "p/x $pc"}
	for i := 0; i < 3; i++ {
		cmds = append(cmds, "disconnect", "target remote "+stub.Addr, "echo @@pc\\n", "p/x $pc")
	}
	out := testkit.GDB(t, gdb, "", stub.Addr, cmds...)
	pcs := regexp.MustCompile(`@@pc\n\$\d+ = (0x[0-9a-f]+)`).FindAllStringSubmatch(out, -1)
	require.Len(t, pcs, 4, "pcs, one per connection:\n%s", out)
	for _, m := range pcs[1:] {
		require.Equal(t, pcs[0][1], m[1], "pc after a reconnect:\n%s", out)
	}
	require.NotContains(t, out, "another debugger", "a reconnect was refused:\n%s", out)
}
