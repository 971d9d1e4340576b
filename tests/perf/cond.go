package main

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rspstub/rspstub/rsp"
)

// Conditional breakpoints: a breakpoint on hit() whose condition is false
// at every one of its hits, so the program runs to its end. Evaluated in
// the stub (GDB sends the condition as an agent expression with the Z0
// when the stub says ConditionalBreakpoints+) against evaluated by the
// client, GDB's way without it (every hit is a stop reply, a register
// read, then z0, s, Z0, c), and against gdbserver evaluating the same
// expression on the native program.

// falseCondition is "argument register == 1" as GDB compiles it:
// reg N; const8 1; equal; end. hit()'s argument is a 64-bit LCG state,
// never 1 in these runs (a hit would fail the run).
func falseCondition(argReg int) string {
	code := []byte{0x26, byte(argReg >> 8), byte(argReg), 0x22, 0x01, 0x13, 0x27}
	return fmt.Sprintf("X%x,%s", len(code), hex.EncodeToString(code))
}

// condTarget runs the program with the condition evaluated by the stub
// and returns false hits per second.
func condTarget(s *served, addr uint64, argReg, calls int) float64 {
	rep, err := s.c.Request(fmt.Sprintf("Z0,%x,1;%s", addr, falseCondition(argReg)))
	check(err)
	if rep != "OK" {
		fatalf("conditional Z0: %q", rep)
	}
	t0 := time.Now()
	st, err := s.c.Continue()
	check(err)
	el := time.Since(t0).Seconds()
	if st.Kind != rsp.StopExited {
		fatalf("the false condition stopped the program: %+v", st)
	}
	// rspstub counts the hits it swallowed (gdbserver has no counter).
	if out, err := s.c.Monitor(rsp.StubStatsCommand); err == nil {
		var n int
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(l, "conditions-false "); ok {
				n, _ = strconv.Atoi(v)
			}
		}
		if n != calls {
			fatalf("the stub evaluated %d false conditions, want %d", n, calls)
		}
	}
	return float64(calls) / el
}

// condClient evaluates the condition in the client at every hit, as GDB
// does without ConditionalBreakpoints+, and returns hits per second.
func condClient(s *served, addr uint64, argReg, calls int) float64 {
	check(s.c.SetBreakpoint(rsp.BreakSoftware, addr, 1))
	var reg [8]byte
	t0 := time.Now()
	hits := 0
	for {
		st, err := s.c.Continue()
		check(err)
		if st.Kind == rsp.StopExited {
			break
		}
		hits++
		check(s.c.ReadRegister(argReg, reg[:]))
		if reg == [8]byte{1} {
			fatalf("the condition is true at hit %d", hits)
		}
		check(s.c.RemoveBreakpoint(rsp.BreakSoftware, addr, 1))
		_, err = s.c.Step()
		check(err)
		check(s.c.SetBreakpoint(rsp.BreakSoftware, addr, 1))
	}
	el := time.Since(t0).Seconds()
	if hits != calls {
		fatalf("expected %d hits, got %d", calls, hits)
	}
	return float64(hits) / el
}

// conditionCost: hit() called `calls` times under a false condition.
func conditionCost(b builds) []row {
	calls := 100000
	if *quick {
		calls = 200
	}
	args := []string{strconv.Itoa(calls * 10), strconv.Itoa(calls)}
	const rcx, rdi = rsp.AMD64RCX, rsp.AMD64RDI // the first argument: Windows x64, SysV
	var inStub, client, gdb []float64
	for i := 0; i < *runs; i++ {
		s := serve(b, append([]string{b.loopPE}, args...)...)
		inStub = append(inStub, condTarget(s, b.hitPE, rcx, calls))
		s.close()
		s = serve(b, append([]string{b.loopPE}, args...)...)
		client = append(client, condClient(s, b.hitPE, rcx, calls))
		s.close()
		if b.gdbsrv != "" {
			g := gdbserve(b, b.loopELF, args...)
			gdb = append(gdb, condTarget(g, b.hitELF, rdi, calls))
			g.close()
		}
	}
	what := fmt.Sprintf("false breakpoint condition, %d hits: evaluated in the stub (rate)", calls)
	return []row{
		peerRow(row{what: what + " vs by the client", short: "cond in stub vs client", ours: inStub, unit: "hits/s", target: target{op: ">", v: 1}},
			"rspstub, client evaluates (GDB without ConditionalBreakpoints)", "rspstub", client),
		peerRow(row{what: what + " vs gdbserver", short: "cond vs gdbserver", ours: inStub, unit: "hits/s", target: target{op: ">", v: 1}},
			"gdbserver, native, in the stub", b.gdbsrv, gdb),
	}
}
