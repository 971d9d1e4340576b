package main

import (
	"fmt"
	"os"
)

// storeRows: what fast stores (emulator/unicorn/faststore.c) save, as
// whole `rspstub run`s to exit against the same runs with
// RSPSTUB_SLOW_STORES=1, which leaves libunicorn 2.0.1's own path (every
// store through notdirty_write), in the same round: bulk.exe writing its
// 64 MiB (synth userland) and the API mix in the wine userland (Wine's
// heap and every call's stack traffic).
func storeRows(b builds) []row {
	rounds, bulk := "100000", "64 MiB"
	bulkArgs := []string{}
	if *quick {
		rounds, bulk = "2000", "1 MB"
		bulkArgs = []string{"1000000"}
	}
	cases := []struct {
		what, short string
		args        []string
		wine        bool
	}{
		{"bulk.exe writing " + bulk + ", synth userland", "fast stores, bulk", append([]string{"run", "--userland", "synth", b.bulkPE, "--"}, bulkArgs...), false},
		{fmt.Sprintf("API mix of %s rounds, wine userland", rounds), "fast stores, wine API mix", []string{"run", "--userland", "wine", b.apiloopPE, "--", "mix", rounds}, true},
	}
	slow := append(os.Environ(), "RSPSTUB_SLOW_STORES=1")
	var rows []row
	for _, c := range cases {
		if c.wine && !haveWinePE() {
			continue
		}
		var fast, plain []float64
		for i := 0; i < *runs; i++ {
			fast = append(fast, timeCommand(os.Environ(), b.stub, c.args...).Seconds())
			plain = append(plain, timeCommand(slow, b.stub, c.args...).Seconds())
		}
		rows = append(rows, row{
			what:  fmt.Sprintf("fast stores, run to exit: %s (time)", c.what),
			short: c.short,
			ours:  fast, peer: plain, unit: "s", peerName: "rspstub with libunicorn 2.0.1's store path (RSPSTUB_SLOW_STORES=1)",
			lowerGood: true,
		})
	}
	return rows
}
