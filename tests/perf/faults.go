package main

import (
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/rspstub/rspstub/emulator/ucwin"
)

// faultPaging: what the page tables that make every data fault exact
// (unicorn.Machine.SetFaultPaging, on by default) cost code that does not
// fault, run to exit in process (ucwin, as `rspstub run` runs) against the
// same run with faults placed by the decoder alone (Config.DecodeFaults),
// in the same round. The cases: a tight loop (no memory traffic), bulk.exe
// writing 64 MiB sequentially (a TLB miss, so a table walk, every 4 KiB),
// and hello in the Wine userland (hundreds of regions mapped at start-up:
// the tables are rebuilt before the run).
func faultPaging(b builds) []row {
	cases := []struct {
		what, short, land, exe string
		args                   []string
	}{
		{"tight loop, ~10^9 instructions", "fault paging, loop", ucwin.UserlandSynth, b.loopPE, []string{"150000000", "0"}},
		{"64 MiB written page after page (bulk.exe)", "fault paging, 64 MiB", ucwin.UserlandSynth, b.bulkPE, nil},
		{"hello in the Wine userland, exec to exit", "fault paging, wine hello", ucwin.UserlandWine, b.helloPE, nil},
	}
	if *quick {
		cases[0].args = []string{"1000000", "0"}
		cases[1].args = []string{"1000000"}
	}
	var rows []row
	for _, c := range cases {
		if c.land == ucwin.UserlandWine && !haveWinePE() {
			continue
		}
		var on, off []float64
		for i := 0; i < *runs; i++ {
			// Each goes first in every other round, and each starts
			// after a collection: the runs are in this process, and the
			// first of a pair paid for the garbage of the pair before.
			for k := 0; k < 2; k++ {
				decode := (i+k)%2 == 1
				runtime.GC()
				t0 := time.Now() // start-up included: the tables are built then
				tgt, err := ucwin.New(ucwin.Config{Program: c.exe, Args: c.args, Userland: c.land, DecodeFaults: decode,
					Stdout: io.Discard, Stderr: io.Discard})
				check(err)
				runToExit(tgt)
				d := time.Since(t0).Seconds()
				if decode {
					off = append(off, d)
				} else {
					on = append(on, d)
				}
			}
		}
		rows = append(rows, row{
			what:  fmt.Sprintf("exact faults by paging (the default), %s (time)", c.what),
			short: c.short,
			ours:  on, peer: off, unit: "s", peerName: "rspstub, the same run with faults decoded",
			lowerGood: true, target: target{op: "<=", v: 1.1},
		})
	}
	return rows
}
