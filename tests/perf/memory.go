package main

import (
	"fmt"
	"time"
)

// readLoop reads `total` bytes of `big` (4 MiB, read over and over) with
// the client's ReadMemory (maximum-size packets; two in flight in no-ack
// mode, which QEMU does not have) and returns MiB/s. The reads stay
// inside big: QEMU fails a whole read that crosses into unmapped memory.
func readLoop(s *served, addr uint64, total int, binary bool) float64 {
	const span = 4 << 20
	buf := make([]byte, span)
	t0 := time.Now()
	for done := 0; done < total; {
		n := min(span, total-done)
		got, err := s.c.ReadMemoryAs(binary, addr, buf[:n])
		check(err)
		if got != n {
			fatalf("short read %d of %d at %#x", got, n, addr)
		}
		done += n
	}
	return float64(total) / (1 << 20) / time.Since(t0).Seconds()
}

// latencyLoop times `n` one-register reads (`p` of rip): round trips/s.
func latencyLoop(s *served, n int) float64 {
	pc := s.c.RegisterNum("rip")
	var buf [8]byte
	t0 := time.Now()
	for i := 0; i < n; i++ {
		check(s.c.ReadRegister(pc, buf[:]))
	}
	return float64(n) / time.Since(t0).Seconds()
}

func memoryReads(b builds) []row {
	total, trips := 64<<20, 20000
	if *quick {
		total, trips = 1<<20, 200
	}
	var mOurs, xOurs, mGDB, mQEMU, latOurs, latGDB, latQEMU []float64
	var mOursU, xOursU, latOursU []float64 // rspstub on a unix socket
	for i := 0; i < *runs; i++ {
		// Stop in hit(), after main filled big with its pattern.
		s := serve(b, b.loopPE, "1", "1")
		runTo(s, b.hitPE)
		mOurs = append(mOurs, readLoop(s, b.bigPE, total, false))
		xOurs = append(xOurs, readLoop(s, b.bigPE, total, true))
		latOurs = append(latOurs, latencyLoop(s, trips))
		s.close()
		if b.gdbsrv != "" {
			g := gdbserve(b, b.loopELF, "1", "1")
			runTo(g, b.hitELF)
			mGDB = append(mGDB, readLoop(g, b.bigELF, total, false))
			latGDB = append(latGDB, latencyLoop(g, trips))
			g.close()
		}
		if b.qemu != "" {
			// QEMU on a unix socket: rspstub on one too for these rows.
			s := serveUnix(b, b.loopPE, "1", "1")
			runTo(s, b.hitPE)
			mOursU = append(mOursU, readLoop(s, b.bigPE, total, false))
			xOursU = append(xOursU, readLoop(s, b.bigPE, total, true))
			latOursU = append(latOursU, latencyLoop(s, trips))
			s.close()
			q := qemuServe(b, b.loopELF, "1", "1")
			runTo(q, b.hitELF)
			mQEMU = append(mQEMU, readLoop(q, b.bigELF, total, false))
			latQEMU = append(latQEMU, latencyLoop(q, trips))
			q.close()
		}
	}
	mib := total >> 20
	return []row{
		peerRow(row{what: "packet round trip (`p` rip) (rate)", short: "`p` round trip vs gdbserver",
			ours: latOurs, unit: "trips/s", target: target{op: ">=", v: 1}}, "gdbserver, native", b.gdbsrv, latGDB),
		peerRow(row{what: "packet round trip (`p` rip), both on a unix socket (rate)", short: "`p` round trip vs qemu-user",
			ours: latOursU, unit: "trips/s", target: target{op: ">=", v: 1}}, "qemu-user gdbstub", b.qemu, latQEMU),
		peerRow(row{what: fmt.Sprintf("bulk read %d MiB with `m` (throughput)", mib), short: "`m` read vs gdbserver",
			ours: mOurs, unit: "MiB/s", target: target{op: ">=", v: 1}}, "gdbserver, native", b.gdbsrv, mGDB),
		peerRow(row{what: fmt.Sprintf("bulk read %d MiB with `m`, both on a unix socket (throughput)", mib), short: "`m` read vs qemu-user",
			ours: mOursU, unit: "MiB/s", target: target{op: ">=", v: 1}}, "qemu-user gdbstub", b.qemu, mQEMU),
		peerRow(row{what: fmt.Sprintf("bulk read %d MiB: our `x` vs gdbserver's best, `m` (throughput)", mib), short: "our `x` vs gdbserver `m`",
			ours: xOurs, unit: "MiB/s", target: target{op: ">=", v: 1}}, "gdbserver `m` (13.1 has no `x`)", b.gdbsrv, mGDB),
		peerRow(row{what: fmt.Sprintf("bulk read %d MiB: our `x` vs QEMU's best, `m`, both on a unix socket (throughput)", mib), short: "our `x` vs qemu-user `m`",
			ours: xOursU, unit: "MiB/s", target: target{op: ">=", v: 1}}, "qemu-user `m` (it has no `x`)", b.qemu, mQEMU),
		{what: fmt.Sprintf("bulk read %d MiB: `x` vs our own `m` (throughput)", mib), short: "our `x` vs our `m`",
			ours: xOurs, peer: mOurs, unit: "MiB/s", peerName: "rspstub `m`", target: target{op: ">=", v: 1.8}},
		{what: fmt.Sprintf("bulk read %d MiB with `x` through our client (throughput, against 1 GiB/s)", mib), short: "`x` read vs 1 GiB/s",
			ours: xOurs, unit: "MiB/s", peerName: "none", target: target{op: ">=", v: 1024, abs: true}},
	}
}
