package tests

import (
	"github.com/stretchr/testify/require"

	"fmt"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

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
		if rep := c.request("qSupported:swbreak+;hwbreak+;vContSupported+"); !strings.Contains(rep, "PacketSize=") {
			t.Fatalf("connection %d: qSupported reply %q", i, rep)
		}
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
	if after.RSSKiB-before.RSSKiB > rssSlack {
		t.Errorf("the stub's RSS grew by %d KiB over %d reconnects", after.RSSKiB-before.RSSKiB, n)
	}
	// The binary's own figures (monitor stub-stats -gc), every 250
	// connections: goroutines and heap stay flat.
	stats = append(stats, readStubStats(t, stub.Addr))
	for i, st := range stats {
		t.Logf("stub-stats after %4d connections: %s", i*250, st)
	}
	first, last := stats[0], stats[len(stats)-1]
	if last.sessions < first.sessions+n {
		t.Errorf("the stub counted %d sessions, want at least %d", last.sessions-first.sessions, n)
	}
	if last.goroutines > first.goroutines+2 {
		t.Errorf("the stub's goroutines grew from %d to %d over %d reconnects", first.goroutines, last.goroutines, n)
	}
	if last.heapInUse > first.heapInUse+heapSlack {
		t.Errorf("the stub's heap in use grew from %d to %d bytes over %d reconnects", first.heapInUse, last.heapInUse, n)
	}
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
	if g1 > g0+2 {
		t.Errorf("goroutines grew from %d to %d over %d reconnects", g0, g1, n)
	}
	if h1 > h0+rssSlack<<10 {
		t.Errorf("heap grew from %d to %d bytes", h0, h1)
	}
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
	if st.goroutines == 0 || st.heapInUse == 0 {
		t.Fatalf("monitor stub-stats output %q", out)
	}
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
				t.Fatalf("cycle %d: no stop", i)
			}
		} else {
			st, err = c.Continue()
		}
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		stops++
		switch {
		case st.Kind == rsp.StopSWBreak && st.Signal == rsp.SIGTRAP:
			pc, err := c.ReadRegisterUint("rip")
			sent++
			if err != nil || pc != hit {
				t.Fatalf("cycle %d: rip %#x (%v) at the breakpoint, want %#x", i, pc, err, hit)
			}
		case st.Signal == rsp.SIGINT && i%100 == 99:
			sigints++
		default:
			t.Fatalf("cycle %d: stop %+v", i, st)
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
			if err != nil || rep == "" {
				t.Fatalf("cycle %d: %s: %q %v", i, req, rep, err)
			}
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
	if grow := end.RSSKiB - warm.RSSKiB; grow > rssSlack {
		t.Errorf("the stub's RSS grew by %d KiB during the soak", grow)
	}
	t.Logf("soak: stub-stats after warm-up: %s; at the end: %s", warmStats, endStats)
	if endStats.goroutines > warmStats.goroutines+2 {
		t.Errorf("the stub's goroutines grew from %d to %d during the soak", warmStats.goroutines, endStats.goroutines)
	}
	if endStats.heapInUse > warmStats.heapInUse+heapSlack {
		t.Errorf("the stub's heap in use grew from %d to %d bytes during the soak", warmStats.heapInUse, endStats.heapInUse)
	}
	if endStats.packets-warmStats.packets < sent {
		t.Errorf("the stub counted %d packets, the client sent at least %d", endStats.packets-warmStats.packets, sent)
	}
	if end.Threads > warm.Threads+4 {
		t.Errorf("the stub's OS threads grew from %d to %d", warm.Threads, end.Threads)
	}
	// Still answering.
	if st, err := c.StopReason(); err != nil || st.Kind == rsp.StopExited {
		t.Fatalf("? at the end: %+v %v", st, err)
	}
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
	if len(pcs) != 4 {
		t.Fatalf("want 4 pcs (one per connection), got %d:\n%s", len(pcs), out)
	}
	for _, m := range pcs[1:] {
		if m[1] != pcs[0][1] {
			t.Fatalf("pc %s after a reconnect, want %s:\n%s", m[1], pcs[0][1], out)
		}
	}
	require.NotContains(t, out, "another debugger", "a reconnect was refused:\n%s", out)
}
