// Command perf measures rspstub against its peers in one run and prints
// ratios (medians of several runs, with min-max). Absolute times are
// noise on a shared machine; ratios measured side by side are the
// figures.
//
//	go run ./tests/perf                 # every comparison (a few minutes)
//	go run ./tests/perf -runs 3 -chart docs/perf.png
//	go run ./tests/perf -quick          # a smoke run of every comparison (seconds)
//	go run ./tests/perf -only hits,step # some comparisons
//	go run ./tests/perf -only qemu      # rspstub qemu against QEMU's own gdbstub
//
// It builds what it compares: rspstub, the programs in tests/testdata as
// Windows programs (mingw-w64 gcc) for rspstub and as native Linux
// programs (gcc -O2 -no-pie) for the peers: Debian's gdbserver, qemu-user
// (qemu-x86_64 and its gdbstub), qemu-system-x86_64 (rspstub qemu in
// front of it against its gdbstub directly) and, for backtraces, the Windows-ABI
// x86_64-w64-mingw32-gdb connected to rspstub. One Go RSP client
// (rsp.Client) drives every stub with the same packet sequences.
//
// A peer tool that is not installed turns its figures into "n/a (tool
// missing)", unless RSPSTUB_REQUIRE_TOOLS=1, when it is an error.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

var (
	quick = flag.Bool("quick", false, "smoke mode: tiny sizes, one run each")
	runs  = flag.Int("runs", 5, "runs per measurement (the median is reported)")
	only  = flag.String("only", strings.Join(comparisons, ","), "comparisons to run, comma-separated")
	chart = flag.String("chart", "", "write a PNG chart of the ratios to this file")
	fwd   = flag.String("forward", "", "internal: LISTEN=TARGET unix sockets, copy bytes between them (the qemu rows' proxy floor)")
)

// comparisons are the names -only accepts, in the order they run.
var comparisons = []string{"continue", "hits", "cond", "step", "memory", "dump", "bt", "startup", "watch", "shadow", "faults", "stores", "qemu", "wine", "api", "trace", "timetravel"}

func want(name string) bool { return slices.Contains(strings.Split(*only, ","), name) }

func main() {
	log.SetFlags(0)
	log.SetPrefix("perf: ")
	flag.Parse()
	if *fwd != "" {
		forward(*fwd)
		return
	}
	for _, n := range strings.Split(*only, ",") {
		if !slices.Contains(comparisons, n) {
			log.Fatalf("-only: unknown comparison %q (have %s)", n, strings.Join(comparisons, ","))
		}
	}
	if *quick {
		*runs = 1
	}
	if *runs < 1 {
		log.Fatalf("-runs must be at least 1")
	}
	// Children die with us: on a signal, on a fatal error, and on a
	// panic (recovered below, then re-raised).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		log.Printf("%v: stopping", s) // before the clients see their stubs die
		fatalf("%v", s)
	}()
	defer func() {
		if p := recover(); p != nil {
			killChildren()
			panic(p)
		}
	}()

	start := time.Now()
	work, err := os.MkdirTemp("", "rspstub-perf-")
	check(err)
	workDir = work
	defer os.RemoveAll(work)
	b := build(work)

	var rows []row
	for _, c := range []struct {
		name string
		f    func(builds) []row
	}{
		{"continue", continueCost},
		{"hits", breakpointHits},
		{"cond", conditionCost},
		{"step", stepping},
		{"memory", memoryReads},
		{"dump", dumps},
		{"bt", backtraces},
		{"startup", startup},
		{"watch", watchCost},
		{"shadow", shadowCost},
		{"faults", faultPaging},
		{"stores", storeRows},
		{"qemu", qemuProxy},
		{"wine", wineRows},
		{"api", apiRows},
		{"trace", traceCost},
		{"timetravel", timeTravel},
	} {
		if want(c.name) {
			t0 := time.Now()
			rows = append(rows, c.f(b)...)
			log.Printf("%s: %.1f s", c.name, time.Since(t0).Seconds())
		}
	}
	killChildren()
	printTable(os.Stdout, rows)
	fmt.Printf("\n(total %.0f s)\n", time.Since(start).Seconds())
	if *chart != "" {
		check(writeChart(*chart, rows))
	}
}

func check(err error) {
	if err != nil {
		fatalf("%v", err)
	}
}

// fatalf kills every child process, then exits.
func fatalf(format string, args ...any) {
	killChildren()
	if workDir != "" {
		os.RemoveAll(workDir)
	}
	log.Fatalf(format, args...)
}

// workDir is the temporary folder with the builds (removed on exit).
var workDir string
