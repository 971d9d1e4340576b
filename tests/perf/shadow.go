package main

import (
	"fmt"
	"io"
	"time"

	"github.com/rspstub/rspstub/emulator/ucwin"
	"github.com/rspstub/rspstub/rsp"
)

// shadowCost: what keeping the shadow call stack costs a run to exit, in
// process (ucwin, as `rspstub run` runs), on loop.exe without calls (one
// translation block an iteration: the worst case) and with a call of
// hit() every iteration (call-heavy code), against the same runs without
// it in the same round. It decides whether `rspstub run` keeps one by
// default.
func shadowCost(b builds) []row {
	cases := []struct {
		what, short string
		args        []string
	}{
		{"tight loop, ~10^9 instructions, no calls", "shadow stack, tight loop", []string{"150000000", "0"}},
		{"a call every iteration, 10^7 calls", "shadow stack, calls", []string{"10000000", "10000000"}},
	}
	if *quick {
		cases[0].args[0], cases[1].args = "1000000", []string{"100000", "100000"}
	}
	var rows []row
	for _, c := range cases {
		var on, off []float64
		for i := 0; i < *runs; i++ {
			for _, shadow := range []bool{false, true} {
				tgt, err := ucwin.New(ucwin.Config{Program: b.loopPE, Args: c.args, ShadowStack: shadow, Stdout: io.Discard, Stderr: io.Discard})
				check(err)
				d := runToExit(tgt).Seconds()
				if shadow {
					on = append(on, d)
				} else {
					off = append(off, d)
				}
			}
		}
		rows = append(rows, row{
			what:  fmt.Sprintf("run to exit with the shadow call stack, %s (time)", c.what),
			short: c.short,
			ours:  on, peer: off, unit: "s", peerName: "rspstub, the same run without it",
			lowerGood: true,
		})
	}
	return rows
}

// runToExit resumes tgt until its guest exits, closes it and returns how
// long the run took.
func runToExit(tgt *ucwin.Target) time.Duration {
	defer tgt.Close()
	t0 := time.Now()
	for {
		st, err := tgt.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
		check(err)
		if st.Kind == rsp.StopExited {
			return time.Since(t0)
		}
	}
}
