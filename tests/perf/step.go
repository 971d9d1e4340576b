package main

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rspstub/rspstub/rsp"
)

// stepResult is one stub's stepping figures.
type stepResult struct {
	steps float64 // `s` packets per second
	rng   float64 // instructions per second inside one vCont;r, 0 if unsupported
}

// stepRun stops in hit() (called once, at the loop's first iteration),
// finds the loop body by single-stepping, times n single steps (the
// packet GDB sends for stepi: vCont;s, as every stub here offers vCont;
// gdbserver 13's legacy `s` after a breakpoint stop resumes from a stale
// register cache, back in ld.so, at 30-90 ms a step), then
// range-steps (vCont;r over the loop body) until the loop ends.
// iters is the loop's iteration count the program was started with.
func stepRun(s *served, hit uint64, iters, n int, rangeStep bool) stepResult {
	runTo(s, hit)
	// Step out of hit() into the loop until a pc repeats: the pcs from
	// its first visit to the repeat are one iteration.
	var seen []uint64
	start, end := uint64(0), uint64(0)
	period := 0
	for i := 0; i < 1000 && period == 0; i++ {
		_, err := s.c.Step()
		check(err)
		p := pc(s)
		if j := slices.Index(seen, p); j >= 0 {
			body := seen[j:]
			period = len(body)
			start, end = slices.Min(body), slices.Max(body)+1
		}
		seen = append(seen, p)
	}
	if period == 0 {
		fatalf("no loop found in 1000 steps")
	}
	taken := len(seen)

	var r stepResult
	t0 := time.Now()
	for i := 0; i < n; i++ {
		st, err := s.c.Step()
		check(err)
		if st.Kind == rsp.StopExited || st.Signal != rsp.SIGTRAP {
			fatalf("step: unexpected stop %+v", st)
		}
	}
	r.steps = float64(n) / time.Since(t0).Seconds()
	taken += n
	if !rangeStep {
		return r
	}
	// The loop runs iters iterations of `period` instructions in all;
	// what is left of them runs inside the range step.
	left := float64(iters-1)*float64(period) - float64(taken)
	t0 = time.Now()
	st, err := s.c.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads, RangeStart: start, RangeEnd: end}})
	check(err)
	el := time.Since(t0).Seconds()
	if st.Kind == rsp.StopExited {
		fatalf("range step: the guest exited")
	}
	if p := pc(s); p >= start && p < end {
		fatalf("range step stopped at %#x, inside [%#x, %#x)", p, start, end)
	}
	r.rng = left / el
	return r
}

// rangeSupported asks the stub whether it offers vCont;r.
func rangeSupported(s *served) bool {
	rep, err := s.c.Request("vCont?")
	return err == nil && slices.Contains(strings.Split(rep, ";"), "r")
}

// stepping: `s` packets over the loop under rspstub, gdbserver and
// qemu-user; vCont;r over the loop body under rspstub and gdbserver
// (qemu-user does not offer vCont;r).
func stepping(b builds) []row {
	// gdbserver range-steps with one PTRACE_SINGLESTEP an instruction:
	// 12 instructions an iteration, 6000 iterations take it seconds.
	iters, n := 6000, 10000
	if *quick {
		iters, n = 1000, 200
	}
	args := []string{strconv.Itoa(iters), "1"}
	var ours, gdb, qemu, oursR, gdbR []float64
	gdbRange := true
	for i := 0; i < *runs; i++ {
		s := serve(b, append([]string{b.loopPE}, args...)...)
		if !rangeSupported(s) {
			fatalf("rspstub does not offer vCont;r")
		}
		r := stepRun(s, b.hitPE, iters, n, true)
		s.close()
		ours, oursR = append(ours, r.steps), append(oursR, r.rng)
		if b.gdbsrv != "" {
			g := gdbserve(b, b.loopELF, args...)
			gdbRange = rangeSupported(g)
			r := stepRun(g, b.hitELF, iters, n, gdbRange)
			g.close()
			gdb = append(gdb, r.steps)
			if gdbRange {
				gdbR = append(gdbR, r.rng)
			}
		}
		if b.qemu != "" {
			q := qemuServe(b, b.loopELF, args...)
			r := stepRun(q, b.hitELF, iters, n, false)
			q.close()
			qemu = append(qemu, r.steps)
		}
	}
	what := "single step, " + strconv.Itoa(n) + " `vCont;s` packets over a loop (rate)"
	rr := peerRow(row{what: "range step, `vCont;r` over the loop body to the loop's end (instructions/s)",
		short: "vCont;r vs gdbserver", ours: oursR, unit: "steps/s", target: target{op: ">", v: 1}},
		"gdbserver, native", b.gdbsrv, gdbR)
	if b.gdbsrv != "" && !gdbRange {
		rr.peerNA = "n/a (no vCont;r)"
	}
	return []row{
		peerRow(row{what: what, short: "single steps vs gdbserver", ours: ours, unit: "steps/s", target: target{op: ">", v: 1}},
			"gdbserver, native", b.gdbsrv, gdb),
		peerRow(row{what: what, short: "single steps vs qemu-user", ours: ours, unit: "steps/s", target: target{op: ">", v: 1}},
			"qemu-user gdbstub", b.qemu, qemu),
		rr,
	}
}
