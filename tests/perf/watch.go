package main

import (
	"log"
	"os"
	"strconv"
	"time"

	"github.com/rspstub/rspstub/rsp"
)

// watchRun runs the loop to exit, with a write watchpoint on sink when
// watch is set (each write stops the guest; the client continues), and
// returns the time and the stops.
func watchRun(s *served, sink uint64, watch bool) (float64, int) {
	if watch {
		check(s.c.SetBreakpoint(rsp.WatchWrite, sink, 8))
	}
	t0 := time.Now()
	stops := untilExit(s.c, 1<<30)
	return time.Since(t0).Seconds(), stops
}

// quietWatch: loop.exe (about 10^9 instructions, no calls of hit()) run to
// exit with a write watchpoint on the global quiet, which nothing writes
// (its page holds other globals that are written), against the same run
// without it.
func quietWatch(b builds) row {
	iters := "150000000"
	if *quick {
		iters = "1000000"
	}
	var with, without []float64
	for i := 0; i < *runs; i++ {
		s := serve(b, b.loopPE, iters, "0")
		sec, _ := watchRun(s, b.quietPE, false)
		s.close()
		without = append(without, sec)

		s = serve(b, b.loopPE, iters, "0")
		sec, stops := watchRun(s, b.quietPE, true)
		s.close()
		if stops != 0 {
			fatalf("watch: %d stops from a watchpoint on a global nothing writes", stops)
		}
		with = append(with, sec)
	}
	return row{what: "run ~10^9 guest instructions to exit, 1 write watchpoint never hit (time)",
		short: "continue, 1 watchpoint never hit", ours: with, peer: without, unit: "s",
		peerName: "rspstub, the same run without the watchpoint", lowerGood: true,
		target: target{op: "<=", v: 1.1}}
}

// watchCost: loop.exe writes the global sink once per 1000 iterations
// (hit() is called every 1000th); the run to exit with a write
// watchpoint on sink against the same run without it. gdbserver's
// run with the watchpoint (x86 debug registers) is a second peer.
func watchCost(b builds) []row {
	iters := 10000000
	if *quick {
		iters = 100000
	}
	calls := iters / 1000
	args := []string{strconv.Itoa(iters), strconv.Itoa(calls)}
	var with, without, gdb []float64
	gdbNA := missing
	if b.gdbsrv != "" {
		gdbNA = probeHostWatch(b)
	}
	for i := 0; i < *runs; i++ {
		s := serve(b, append([]string{b.loopPE}, args...)...)
		sec, _ := watchRun(s, b.sinkPE, false)
		s.close()
		without = append(without, sec)

		s = serve(b, append([]string{b.loopPE}, args...)...)
		sec, stops := watchRun(s, b.sinkPE, true)
		s.close()
		with = append(with, sec)
		checkStops("rspstub", stops, calls)

		if gdbNA == "" {
			g := gdbserve(b, b.loopELF, args...)
			sec, stops := watchRun(g, b.sinkELF, true)
			g.close()
			gdb = append(gdb, sec)
			checkStops("gdbserver", stops, calls)
		}
	}
	what := "run to exit writing a watched global every 1000 iterations (" + strconv.Itoa(calls) + " watchpoint stops) (time)"
	return []row{
		quietWatch(b),
		{what: what, short: "watchpoint cost (vs none)", ours: with, peer: without, unit: "s",
			peerName: "rspstub, the same run without the watchpoint", lowerGood: true},
		peerRowNA(row{what: what, short: "watchpoint run vs gdbserver", ours: with, unit: "s", lowerGood: true,
			target: target{op: "<", v: 1}},
			"gdbserver, native, the same watchpoint", gdbNA, gdb),
	}
}

// simulateNoHostWatch makes probeHostWatch report a host whose hardware
// watchpoints do not fire, without asking gdbserver (TestHostProbe).
const simulateNoHostWatch = "RSPSTUB_PERF_SIMULATE_NO_HW_WATCH"

// probeHostWatch checks that hardware watchpoints fire in native
// processes on this host: on some (an AMD EPYC VM) they never do, and
// gdbserver then runs the loop to its end without a stop. It returns ""
// when they work, else the peer column's "n/a (host: ...)" text.
func probeHostWatch(b builds) string {
	const na = "n/a (host: hardware watchpoints in native processes do not fire)"
	if os.Getenv(simulateNoHostWatch) == "1" {
		log.Printf("watch: %s=1: simulating a host without hardware watchpoints", simulateNoHostWatch)
		return na
	}
	g := gdbserve(b, b.loopELF, "1000", "1")
	_, stops := watchRun(g, b.sinkELF, true)
	g.close()
	if stops == 0 {
		log.Printf("watch: gdbserver's write watchpoint never stopped a native run (probe): the gdbserver row is n/a")
		return na
	}
	return ""
}

// checkStops: every write to sink stops the guest: calls from hit(),
// and main's last one.
func checkStops(who string, stops, calls int) {
	if stops < calls {
		fatalf("%s: %d watchpoint stops for %d writes", who, stops, calls)
	}
	if stops != calls+1 {
		log.Printf("watch: %s reported %d stops for %d writes", who, stops, calls+1)
	}
}
