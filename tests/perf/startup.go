package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rspstub/rspstub/rsp"
)

// vmRSS is a process's resident memory in MiB (/proc/PID/status).
func vmRSS(pid int) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	check(err)
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			check(err)
			return kb / 1024
		}
	}
	fatalf("no VmRSS for pid %d", pid)
	return 0
}

var gdbListenRE = regexp.MustCompile(`Listening on port (\d+)`)

// gdbserverStart times gdbserver from exec to "Listening on port" on
// the native hello, then connects and measures its resident memory.
func gdbserverStart(b builds) (time.Duration, float64) {
	cmd := exec.Command(b.gdbsrv, "--once", "127.0.0.1:0", b.helloELF)
	cmd.Stdout = io.Discard
	errp, err := cmd.StderrPipe()
	check(err)
	t0 := time.Now()
	check(startChild(cmd))
	defer reap(cmd)
	sc := bufio.NewScanner(errp)
	port := ""
	for sc.Scan() {
		if m := gdbListenRE.FindStringSubmatch(sc.Text()); m != nil {
			port = m[1]
			break
		}
	}
	el := time.Since(t0)
	go io.Copy(io.Discard, errp)
	if port == "" {
		fatalf("gdbserver did not listen")
	}
	c, err := rsp.Dial("127.0.0.1:"+port, rsp.WithTimeout(time.Minute))
	check(err)
	defer c.Close()
	return el, vmRSS(cmd.Process.Pid)
}

// startup: exec of `rspstub serve hello.exe` to its "listening on" line
// (the PE loaded and mapped, DLL models ready), and the stub's resident
// memory with a client attached; gdbserver on the native hello beside it.
func startup(b builds) []row {
	per := 5 // starts per run
	if *quick {
		per = 2
	}
	// One start to warm the page cache.
	cmd, _, _ := startStub(b, b.helloPE)
	reap(cmd)
	var ours, peer, rss, peerRSS []float64
	for i := 0; i < *runs; i++ {
		for j := 0; j < per; j++ {
			cmd, addr, el := startStub(b, b.helloPE)
			ours = append(ours, el.Seconds()*1000)
			c, err := rsp.Dial(addr, rsp.WithTimeout(time.Minute))
			check(err)
			rss = append(rss, vmRSS(cmd.Process.Pid))
			c.Close()
			reap(cmd)
			if b.gdbsrv != "" {
				el, r := gdbserverStart(b)
				peer = append(peer, el.Seconds()*1000)
				peerRSS = append(peerRSS, r)
			}
		}
	}
	return []row{
		peerRow(row{what: "start-up: exec of `rspstub serve` on a mingw hello-world to \"listening on\" (time)",
			short: "start-up (50 ms) vs gdbserver", ours: ours, unit: "ms", lowerGood: true,
			target: target{op: "<=", v: 50, abs: true}}, "gdbserver on native hello, to \"Listening on port\"", b.gdbsrv, peer),
		peerRow(row{what: "resident memory (VmRSS) of `rspstub serve` hello.exe, client attached (figure)",
			ours: rss, unit: "MiB", figure: true}, "gdbserver, for scale", b.gdbsrv, peerRSS),
	}
}
