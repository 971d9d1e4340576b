package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/rspstub/rspstub/rsp"
)

// hitLoop runs continue -> stop -> continue over a breakpoint on hit()
// the way GDB does it (remove, step off, reinsert, continue) and returns
// hits per second.
func hitLoop(s *served, addr uint64, calls int) float64 {
	check(s.c.SetBreakpoint(rsp.BreakSoftware, addr, 1))
	t0 := time.Now()
	hits := 0
	for {
		st, err := s.c.Continue()
		check(err)
		if st.Kind == rsp.StopExited {
			break
		}
		hits++
		check(s.c.RemoveBreakpoint(rsp.BreakSoftware, addr, 1))
		_, err = s.c.Step()
		check(err)
		check(s.c.SetBreakpoint(rsp.BreakSoftware, addr, 1))
	}
	el := time.Since(t0).Seconds()
	if hits != calls {
		fatalf("expected %d breakpoint hits, got %d", calls, hits)
	}
	return float64(hits) / el
}

// breakpointHits: hit() called `calls` times under rspstub (loop.exe),
// gdbserver and qemu-user (the native loop), the same client and packets.
func breakpointHits(b builds) []row {
	// qemu-user manages about 1,200 hits/s here: it gets a fifth of
	// the hits (the figure is a rate) to keep the full run in minutes.
	calls, qcalls := 100000, 20000
	if *quick {
		calls, qcalls = 200, 200
	}
	args := []string{strconv.Itoa(calls * 10), strconv.Itoa(calls)}
	qargs := []string{strconv.Itoa(qcalls * 10), strconv.Itoa(qcalls)}
	var ours, gdb, qemu []float64
	for i := 0; i < *runs; i++ {
		s := serve(b, append([]string{b.loopPE}, args...)...)
		ours = append(ours, hitLoop(s, b.hitPE, calls))
		s.close()
		if b.gdbsrv != "" {
			g := gdbserve(b, b.loopELF, args...)
			gdb = append(gdb, hitLoop(g, b.hitELF, calls))
			g.close()
		}
		if b.qemu != "" {
			q := qemuServe(b, b.loopELF, qargs...)
			qemu = append(qemu, hitLoop(q, b.hitELF, qcalls))
			q.close()
		}
	}
	what := fmt.Sprintf("breakpoint hits, %d x (stop, z0, s, Z0, c) (rate)", calls)
	qwhat := what
	if qcalls != calls {
		qwhat = fmt.Sprintf("breakpoint hits, %d x (stop, z0, s, Z0, c); qemu-user %d x (rate)", calls, qcalls)
	}
	return []row{
		peerRow(row{what: what, short: "bp hits vs gdbserver", ours: ours, unit: "hits/s", target: target{op: ">", v: 1}},
			"gdbserver, native", b.gdbsrv, gdb),
		peerRow(row{what: qwhat, short: "bp hits vs qemu-user", ours: ours, unit: "hits/s", target: target{op: ">", v: 1}},
			"qemu-user gdbstub", b.qemu, qemu),
	}
}

// peerRow fills in a row's peer, or says the tool is missing.
func peerRow(r row, name, tool string, figs []float64) row {
	na := ""
	if tool == "" {
		na = missing
	}
	return peerRowNA(r, name, na, figs)
}

// peerRowNA is peerRow for a peer that may be unusable for another reason
// than a missing tool: na is the reason ("n/a (host: ...)"), or "".
func peerRowNA(r row, name, na string, figs []float64) row {
	r.peerName = name
	r.peerNA = na
	if na != "" {
		figs = nil
	}
	r.peer = figs
	return r
}
