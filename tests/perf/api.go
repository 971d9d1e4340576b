package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// apiRows: API calls made by a program run to its end (`rspstub run`),
// tests/testdata/apiloop.c. The trivial call's rate is GetTickCount in a
// loop under the synthesized userland (the loop's run minus an empty
// run's); the API-heavy loop is the whole program, start-up included,
// under each userland against the same program under wine.
func apiRows(b builds) []row {
	wine := tool("wine", "wine")
	wineEnv := wineEnvironment()
	n, rounds := 20_000_000, 1_000_000
	if *quick {
		n, rounds = 200_000, 20_000
	}
	stub := func(land string, args ...string) time.Duration {
		return timeCommand(os.Environ(), b.stub, append([]string{"run", "--userland", land, b.apiloopPE, "--"}, args...)...)
	}
	// Wine's GetTickCount is a few nanoseconds: its loop is peerScale
	// times longer, or it would end within the noise of its start-up.
	const peerScale = 50
	if wine != "" {
		timeCommand(wineEnv, wine, b.apiloopPE, "tick", "1") // creates the prefix, starts wineserver
	}
	var tickOurs, tickWine, mixSynth, mixWineLand, mixWine []float64
	for i := 0; i < *runs; i++ {
		tickOurs = append(tickOurs, loopRate(n, func(c int) time.Duration { return stub("synth", "tick", strconv.Itoa(c)) }))
		mixSynth = append(mixSynth, stub("synth", "mix", strconv.Itoa(rounds)).Seconds()*1000)
		if haveWinePE() {
			mixWineLand = append(mixWineLand, stub("wine", "mix", strconv.Itoa(rounds)).Seconds()*1000)
		}
		if wine != "" {
			tickWine = append(tickWine, loopRate(n*peerScale, func(c int) time.Duration {
				return timeCommand(wineEnv, wine, b.apiloopPE, "tick", strconv.Itoa(c))
			}))
			mixWine = append(mixWine, timeCommand(wineEnv, wine, b.apiloopPE, "mix", strconv.Itoa(rounds)).Seconds()*1000)
		}
	}
	missing := "n/a (wine missing)"
	rows := []row{
		{what: fmt.Sprintf("trivial API calls/s (GetTickCount loop, %d calls, synth userland; wine %d)", n, n*peerScale), short: "API calls/s",
			ours: tickOurs, peer: tickWine, unit: "/s", peerName: "wine", target: target{op: ">=", v: 5_000_000, abs: true}},
		{what: fmt.Sprintf("API-heavy loop, %d rounds, whole program (synth userland vs wine)", rounds), short: "API mix synth",
			ours: mixSynth, peer: mixWine, unit: "ms", peerName: "wine", lowerGood: true, target: target{op: "<=", v: 2}},
	}
	if haveWinePE() {
		rows = append(rows, row{what: fmt.Sprintf("API-heavy loop, %d rounds, whole program (wine userland vs wine)", rounds),
			short: "API mix wine-land", ours: mixWineLand, peer: mixWine, unit: "ms", peerName: "wine", lowerGood: true, target: target{op: "<=", v: 2}})
	}
	if wine == "" {
		for i := range rows {
			rows[i].peerNA = missing
		}
	}
	return rows
}

// loopRate is n calls per second of a loop's run (run(n)) minus an
// empty run's (run(0)), or 0 when the loop did not outlast the noise.
func loopRate(n int, run func(count int) time.Duration) float64 {
	full, empty := run(n), run(0)
	if full <= empty {
		return 0
	}
	return float64(n) / (full - empty).Seconds()
}

// haveWinePE reports whether Wine's PE DLLs (the wine userland) are here.
func haveWinePE() bool {
	_, err := os.Stat("/usr/lib/x86_64-linux-gnu/wine/x86_64-windows/ntdll.dll")
	return err == nil
}
