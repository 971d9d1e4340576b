package main

import (
	"fmt"
	"io"
	"time"

	"github.com/rspstub/rspstub/emulator/ucwin"
	"github.com/rspstub/rspstub/rsp"
)

// continueCost: a guest of about 10^9 instructions run to exit in
// process (ucwin, no server, no client) against `rspstub serve` with a
// client attached and 0, 10, 100 or 1000 breakpoints at addresses never
// executed.
func continueCost(b builds) []row {
	iters := "150000000" // ~7 instructions an iteration: ~10^9
	if *quick {
		iters = "1000000"
	}
	counts := []int{0, 10, 100, 1000}
	var inproc []float64
	served := make([][]float64, len(counts))
	for i := 0; i < *runs; i++ {
		// In process: load, then time the run to exit.
		tgt, err := ucwin.New(ucwin.Config{Program: b.loopPE, Args: []string{iters, "0"}, Stdout: io.Discard, Stderr: io.Discard})
		check(err)
		t0 := time.Now()
		for {
			st, err := tgt.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
			check(err)
			if st.Kind == rsp.StopExited {
				break
			}
		}
		inproc = append(inproc, time.Since(t0).Seconds())
		tgt.Close()

		for k, n := range counts {
			// Breakpoints 4 bytes apart in the image headers (4 KiB:
			// mapped, never executed), then continue to exit.
			s := serve(b, b.loopPE, iters, "0")
			for j := 0; j < n; j++ {
				check(s.c.SetBreakpoint(rsp.BreakSoftware, b.basePE+uint64(j)*4, 1))
			}
			t0 = time.Now()
			untilExit(s.c, 0)
			served[k] = append(served[k], time.Since(t0).Seconds())
			s.close()
		}
	}
	var rows []row
	for k, n := range counts {
		r := row{
			what:  fmt.Sprintf("run ~10^9 guest instructions to exit, %d breakpoints never hit (time)", n),
			short: fmt.Sprintf("continue, %d breakpoints", n),
			ours:  served[k], peer: inproc, unit: "s", peerName: "in-process, no server or client",
			lowerGood: true, target: target{op: "<=", v: 1.1},
		}
		rows = append(rows, r)
	}
	return rows
}
