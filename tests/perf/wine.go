package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// timeCommand runs name to its end with env and returns how long it took
// (a non-zero exit is fine, a failure to run is fatal).
func timeCommand(env []string, name string, args ...string) time.Duration {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	check(startChild(cmd))
	if err := cmd.Wait(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			fatalf("%s %v: %v\n%s", name, args, err, out.String())
		}
	}
	return time.Since(t0)
}

// wineEnvironment is the environment wine runs in for the perf rows: its
// own prefix under the work folder, no debug output, no display.
func wineEnvironment() []string {
	prefix := filepath.Join(workDir, "wineprefix")
	return append(os.Environ(), "WINEPREFIX="+prefix, "WINEDEBUG=-all", "DISPLAY=")
}

// wineRows: the wine userland against wine itself and against the
// synthesized userland. Start-up is exec to the first instruction of
// main (`rspstub run --break main`, which also ends the process there)
// against `wine hello.exe` running to its end; the system-call rate is a
// loop of NtQueryPerformanceCounter through ntdll's thunk.
func wineRows(b builds) []row {
	wine := tool("wine", "wine")
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/wine/x86_64-windows/ntdll.dll"); err != nil {
		if os.Getenv("RSPSTUB_REQUIRE_TOOLS") == "1" {
			fatalf("Wine's PE DLLs (libwine) are missing and RSPSTUB_REQUIRE_TOOLS=1")
		}
		return nil
	}
	wineEnv := wineEnvironment()
	timed := timeCommand
	runMain := func(land string) time.Duration {
		return timed(os.Environ(), b.stub, "run", "--userland", land, "--break", "main", b.helloPE)
	}
	if wine != "" {
		timed(wineEnv, wine, b.helloPE) // creates the prefix, starts wineserver
	}
	runMain("wine") // warm the page cache
	per := 3
	n := 2_000_000
	if *quick {
		per, n = 1, 100_000
	}
	var oursStart, synthStart, wineStart []float64
	for i := 0; i < *runs; i++ {
		for j := 0; j < per; j++ {
			oursStart = append(oursStart, runMain("wine").Seconds()*1000)
			synthStart = append(synthStart, runMain("synth").Seconds()*1000)
			if wine != "" {
				wineStart = append(wineStart, timed(wineEnv, wine, b.helloPE).Seconds()*1000)
			}
		}
	}
	rows := []row{
		{what: "start-up to main, hello (wine userland vs wine)", short: "start vs wine", ours: oursStart, peer: wineStart,
			unit: "ms", peerName: "wine", lowerGood: true, target: target{op: "<=", v: 1}},
		{what: "start-up to main, hello (wine userland vs synth userland)", short: "wine vs synth start", ours: oursStart, peer: synthStart,
			unit: "ms", peerName: "synth", lowerGood: true},
	}
	if wine == "" {
		rows[0].peerNA = missing
	}
	// System calls per second: the loop's run minus an empty run's.
	// Wine makes them about ten times faster, so its loop is longer
	// (peerScale times), or it would end within the noise of its own
	// start-up.
	const peerScale = 20
	var ours, peer []float64
	for i := 0; i < *runs; i++ {
		ours = append(ours, loopRate(n, func(c int) time.Duration {
			return timed(os.Environ(), b.stub, "run", "--userland", "wine", b.syscallsPE, strconv.Itoa(c))
		}))
		if wine != "" {
			peer = append(peer, loopRate(n*peerScale, func(c int) time.Duration {
				return timed(wineEnv, wine, b.syscallsPE, strconv.Itoa(c))
			}))
		}
	}
	r := row{what: fmt.Sprintf("system calls/s (NtQueryPerformanceCounter loop, %d calls; wine %d)", n, n*peerScale), short: "syscalls/s",
		ours: ours, peer: peer, unit: "/s", peerName: "wine", target: target{op: ">=", v: 2_000_000, abs: true}}
	if wine == "" {
		r.peerNA = missing
	}
	return append(rows, r)
}
