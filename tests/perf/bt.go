package main

import (
	"fmt"
	"log"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var (
	monFrameRE = regexp.MustCompile("(?m)^[0-9a-f]{2,} [0-9a-f]{8}`[0-9a-f]{8}  ")
	gdbFrameRE = regexp.MustCompile(`(?m)^(?:\(gdb\) )*#\d+\s`)
	maintRE    = regexp.MustCompile(`Command execution time: [0-9.]+ \(cpu\), ([0-9.]+) \(wall\)`)
)

// backtraces: `monitor bt` of a 10,000-frame recursion (recurse.exe
// stopped in leaf()) against the Windows-ABI GDB's own `bt` of the same
// stop, that GDB connected to rspstub. Both are timed on the client
// side: our client around qRcmd, GDB by `maint time` around `bt`. The
// first `monitor bt` after the stop reads the modules' symbol tables;
// the same command again at the same stop (what a debugger's unwinder
// script pays at every stop after the first, or a user typing bt twice)
// and `bt -json` again have rows of their own.
func backtraces(b builds) []row {
	depth := "10000"
	if *quick {
		depth = "300"
	}
	var ours, peer, warm, warmJSON []float64
	frames, gdbFrames := 0, 0
	for i := 0; i < *runs; i++ {
		s := serve(b, b.recursePE, depth)
		if i == 0 {
			help, err := s.c.Monitor("help")
			if err != nil || !strings.Contains(help, "bt") {
				s.close()
				log.Printf("bt: the stub has no `monitor bt`: no backtrace row")
				return nil
			}
		}
		runTo(s, b.leafPE)
		t0 := time.Now()
		out, err := s.c.Monitor("bt -n 20000")
		el := time.Since(t0).Seconds()
		check(err)
		ours = append(ours, el)
		frames = len(monFrameRE.FindAllStringIndex(out, -1))
		// Again at the same stop: the median of a few, as a figure of
		// its own (the first of them pays for the buffers).
		var again, againJSON []float64
		for k := 0; k < 5; k++ {
			t0 = time.Now()
			out2, err := s.c.Monitor("bt -n 20000")
			again = append(again, time.Since(t0).Seconds())
			check(err)
			if out2 != out {
				fatalf("bt: a second `monitor bt` at the same stop differs")
			}
			t0 = time.Now()
			js, err := s.c.Monitor("bt -json -n 20000")
			againJSON = append(againJSON, time.Since(t0).Seconds())
			check(err)
			if n := strings.Count(js, `"index":`); n != frames {
				fatalf("bt -json: %d frames, bt %d", n, frames)
			}
		}
		warm = append(warm, median(again))
		warmJSON = append(warmJSON, median(againJSON))
		s.close()

		if b.mingwGDB != "" {
			sec, n := gdbBT(b, depth)
			peer = append(peer, sec)
			gdbFrames = n
		}
	}
	if b.mingwGDB != "" && gdbFrames < frames-3 {
		log.Printf("bt: gdb listed %d frames, monitor bt %d", gdbFrames, frames)
	}
	peerName := "x86_64-w64-mingw32-gdb `bt`"
	if len(peer) > 0 {
		peerName = fmt.Sprintf("x86_64-w64-mingw32-gdb `bt` (%d frames)", gdbFrames)
	}
	return []row{
		peerRow(row{
			what:  fmt.Sprintf("backtrace of a %s-deep recursion: first `monitor bt` at the stop (%d frames) (time)", depth, frames),
			short: "monitor bt vs GDB bt", ours: ours, unit: "s", lowerGood: true, target: target{op: "<=", v: 0.1},
		}, peerName, b.mingwGDB, peer),
		peerRow(row{
			what:  fmt.Sprintf("backtrace of a %s-deep recursion: `monitor bt` again at the stop (%d frames) (time)", depth, frames),
			short: "monitor bt again vs GDB bt", ours: warm, unit: "s", lowerGood: true, target: target{op: "<=", v: 0.02},
		}, peerName, b.mingwGDB, peer),
		{what: fmt.Sprintf("backtrace of a %s-deep recursion: `monitor bt` again, end to end (%d frames) (time)", depth, frames),
			short: "monitor bt again (absolute)", ours: warm, unit: "s", lowerGood: true,
			target: target{op: "<=", v: 0.03, abs: true}},
		{what: fmt.Sprintf("backtrace of a %s-deep recursion: `monitor bt -json` again, end to end (%d frames) (time)", depth, frames),
			short: "monitor bt -json again (absolute)", ours: warmJSON, unit: "s", lowerGood: true,
			target: target{op: "<=", v: 0.03, abs: true}},
	}
}

// gdbBT serves recurse.exe, lets the Windows-ABI gdb (no local files: it
// fetches the program through the stub) run to leaf() and time its own
// `bt` with `maint time`; returns seconds (wall) and frames listed.
// The commands come on stdin: gdb times only commands it reads there,
// not -ex ones.
func gdbBT(b builds, depth string) (float64, int) {
	stub, addr, _ := startStub(b, b.recursePE, depth)
	defer reap(stub)
	cmd := exec.Command(b.mingwGDB, "-nx", "-q")
	cmd.Stdin = strings.NewReader(strings.Join([]string{
		"set pagination off", "set confirm off", "set width 0", "set height 0",
		"set remotetimeout 60",
		"target remote " + addr,
		fmt.Sprintf("break *%#x", b.leafPE),
		"continue",
		`echo @@bt\n`,
		"maint time 1",
		"bt",
		"maint time 0",
		`echo @@end\n`,
		"kill", "quit", ""}, "\n"))
	output := runChild(cmd, "x86_64-w64-mingw32-gdb")
	_, bt, _ := strings.Cut(output, "@@bt")
	bt, _, _ = strings.Cut(bt, "@@end")
	m := maintRE.FindAllStringSubmatch(bt, -1)
	if len(m) == 0 {
		fatalf("x86_64-w64-mingw32-gdb: no `maint time` figure for bt:\n%s", tail(output, 2000))
	}
	// The last figure is bt's: `maint time 1` may time itself first.
	sec, err := strconv.ParseFloat(m[len(m)-1][1], 64)
	check(err)
	return sec, len(gdbFrameRE.FindAllStringIndex(bt, -1))
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
