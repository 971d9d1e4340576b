package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// traceCost: what --trace-api and --coverage cost a whole `rspstub run`
// (start-up included), against the same run without them in the same
// round. The trace: apiloop.exe's mix of cheap calls (7 traced calls a
// round, each stopping the emulator at its entry and its return; in the
// wine userland the system calls are traced too); coverage: loop.exe's
// tight loop (one translation block an iteration, the worst case for a
// block hook) and the API mix.
func traceCost(b builds) []row {
	rounds, iters := 100_000, 100_000_000
	if *quick {
		rounds, iters = 2_000, 1_000_000
	}
	out := filepath.Join(workDir, "trace-out")
	stub := func(args ...string) float64 {
		d := timeCommand(os.Environ(), b.stub, append([]string{"run"}, args...)...)
		return d.Seconds()
	}
	type measure struct {
		what, short string
		flag        string
		args        []string
	}
	ms := []measure{
		{fmt.Sprintf("--trace-api, API mix of %d rounds (%d calls), synth userland", rounds, 7*rounds), "trace-api synth", "--trace-api",
			[]string{"--userland", "synth", b.apiloopPE, "mix", strconv.Itoa(rounds)}},
		{fmt.Sprintf("--coverage, API mix of %d rounds, synth userland", rounds), "coverage api mix", "--coverage",
			[]string{"--userland", "synth", b.apiloopPE, "mix", strconv.Itoa(rounds)}},
		{fmt.Sprintf("--coverage, tight loop of %d iterations, synth userland", iters), "coverage tight loop", "--coverage",
			[]string{"--userland", "synth", b.loopPE, strconv.Itoa(iters), "0"}},
	}
	if haveWinePE() {
		ms = append(ms, measure{fmt.Sprintf("--trace-api, API mix of %d rounds, wine userland (system calls too)", rounds), "trace-api wine", "--trace-api",
			[]string{"--userland", "wine", b.apiloopPE, "mix", strconv.Itoa(rounds)}})
	}
	var rows []row
	for _, m := range ms {
		var on, off []float64
		for i := 0; i < *runs; i++ {
			off = append(off, stub(m.args...))
			on = append(on, stub(append([]string{m.flag, out}, m.args...)...))
		}
		if st, err := os.Stat(out); err == nil {
			fmt.Fprintf(os.Stderr, "perf: %s: %d bytes written\n", m.short, st.Size())
		}
		rows = append(rows, row{what: "run to exit with " + m.what + " (time)", short: m.short,
			ours: on, peer: off, unit: "s", peerName: "rspstub, the same run without it", lowerGood: true})
	}
	return rows
}
