package main

import (
	"fmt"
	"io"
	"time"

	"github.com/rspstub/rspstub/emulator/ucwin"
	"github.com/rspstub/rspstub/rsp"
)

// timeTravel: loop.exe runs about 10^9 instructions in process to the
// write of `sink` after its loop (a write watchpoint stops there), without
// recording, with the position counter only, and recorded (counter and
// checkpoints). From that stop, recorded: reverse-stepi (each answered by
// a checkpoint restore and a replay), and reverse-continue with a
// watchpoint on `quiet`, which nothing writes, so the whole history is
// searched back to its start.
func timeTravel(b builds) []row {
	iters := "150000000" // ~7 instructions an iteration: ~10^9
	if *quick {
		iters = "1000000"
	}
	var plain, counting, recorded, rstep, rcont []float64
	var positions []float64
	toWrite := func(record bool, every uint64) (*ucwin.Target, float64) {
		tgt, err := ucwin.New(ucwin.Config{Program: b.loopPE, Args: []string{iters, "0"},
			Stdout: io.Discard, Stderr: io.Discard, Record: record})
		check(err)
		if record {
			tgt.SetCheckpointInterval(every)
		}
		check(tgt.InsertBreakpoint(rsp.WatchWrite, b.sinkPE, 8))
		t0 := time.Now()
		st, err := tgt.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
		check(err)
		el := time.Since(t0).Seconds()
		if st.Kind != rsp.StopWatch {
			fatalf("loop.exe did not stop on the write of sink: %+v", st)
		}
		check(tgt.RemoveBreakpoint(rsp.WatchWrite, b.sinkPE, 8))
		return tgt, el
	}
	for i := 0; i < *runs; i++ {
		tgt, el := toWrite(false, 0)
		plain = append(plain, el)
		tgt.Close()
		tgt, el = toWrite(true, 0)
		counting = append(counting, el)
		tgt.Close()
		tgt, el = toWrite(true, 1<<23)
		recorded = append(recorded, el)
		positions = append(positions, float64(tgt.Position()))
		for k := 0; k < 3; k++ {
			t0 := time.Now()
			_, err := tgt.StepBack(ucwin.ThreadID)
			check(err)
			rstep = append(rstep, time.Since(t0).Seconds()*1000)
		}
		check(tgt.InsertBreakpoint(rsp.WatchWrite, b.quietPE, 8))
		t0 := time.Now()
		st, err := tgt.ContinueBack()
		check(err)
		rcont = append(rcont, time.Since(t0).Seconds())
		if st.ReplayLog != "begin" {
			fatalf("reverse-continue with an unwritten watchpoint did not reach the start: %+v", st)
		}
		tgt.Close()
	}
	n := fmt.Sprintf("%.2g", median(positions))
	return []row{
		{what: fmt.Sprintf("run %s guest instructions with the position counter (time)", n), short: "count positions",
			ours: counting, peer: plain, unit: "s", peerName: "the same run without --record",
			lowerGood: true, target: target{op: "<=", v: 1.1}},
		{what: fmt.Sprintf("run %s guest instructions recorded: counter and checkpoints every 2^23 (time)", n), short: "--record",
			ours: recorded, peer: plain, unit: "s", peerName: "the same run without --record",
			lowerGood: true, target: target{op: "<=", v: 1.25}},
		{what: "reverse-stepi at the end of that run (latency)", short: "reverse-stepi",
			ours: rstep, unit: "ms", peerName: "gdbserver", peerNA: "n/a (it has no reverse execution)",
			lowerGood: true, target: target{op: "<", v: 50, abs: true}},
		{what: "reverse-continue across the whole run, a watchpoint never hit (time)", short: "reverse-continue",
			ours: rcont, unit: "s", peerName: "gdbserver", peerNA: "n/a (it has no reverse execution)",
			lowerGood: true, target: target{op: "<", v: 5, abs: true}},
	}
}
