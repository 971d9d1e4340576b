package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// dumps: Debian's gdb (13: `m` packets only) running `dump binary memory`
// of bulk.exe's 64 MiB buffer through rspstub, against the same dump of
// the native bulk through gdbserver; gdb times the command itself.
func dumps(b builds) []row {
	size := 64 << 20
	if *quick {
		size = 1 << 20
	}
	var ours, peer []float64
	na := ""
	switch {
	case b.gdb == "":
		na = missing
	case b.gdbsrv == "":
		na = missing
	}
	for i := 0; i < *runs && b.gdb != ""; i++ {
		stub, addr, _ := startStub(b, b.bulkPE, strconv.Itoa(size))
		ours = append(ours, gdbDump(b, addr, b.readyPE, b.bulkBufPE, size))
		reap(stub)
		if b.gdbsrv != "" {
			g, addr := gdbserverOn(b, b.bulkELF, strconv.Itoa(size))
			peer = append(peer, gdbDump(b, addr, b.readyELF, b.bulkBufELF, size))
			reap(g)
		}
	}
	what := fmt.Sprintf("GDB `dump binary memory` of %d MiB, timed by gdb (time)", size>>20)
	if b.gdb == "" {
		return []row{{what: what, short: "gdb dump vs gdbserver", peerName: "gdb against gdbserver", peerNA: missing}}
	}
	return []row{peerRowNA(row{what: what, short: "gdb dump vs gdbserver", ours: ours, unit: "s",
		lowerGood: true, target: target{op: "<", v: 1}}, "the same dump against gdbserver, native", na, peer)}
}

// gdbserverOn starts gdbserver on a native program and returns it and
// its address once it listens (for a client other than ours).
func gdbserverOn(b builds, prog string, args ...string) (*exec.Cmd, string) {
	cmd := exec.Command(b.gdbsrv, append([]string{"--once", "127.0.0.1:0", prog}, args...)...)
	cmd.Stdout = io.Discard
	errp, err := cmd.StderrPipe()
	check(err)
	check(startChild(cmd))
	sc := bufio.NewScanner(errp)
	port := ""
	for sc.Scan() {
		if m := gdbListenRE.FindStringSubmatch(sc.Text()); m != nil {
			port = m[1]
			break
		}
	}
	go io.Copy(io.Discard, errp)
	if port == "" {
		reap(cmd)
		fatalf("gdbserver did not listen")
	}
	return cmd, "127.0.0.1:" + port
}

// gdbDump connects Debian's gdb to the stub at addr, runs to ready(), and
// times `dump binary memory` of size bytes at buf with `maint time`
// (commands on stdin: gdb times only those). It checks the file against
// the pattern and returns seconds (wall).
func gdbDump(b builds, addr string, ready, buf uint64, size int) float64 {
	file := filepath.Join(workDir, "dump.bin")
	defer os.Remove(file)
	cmd := exec.Command(b.gdb, "-nx", "-q")
	cmd.Stdin = strings.NewReader(strings.Join([]string{
		"set pagination off", "set confirm off", "set remotetimeout 60",
		"target remote " + addr,
		fmt.Sprintf("break *%#x", ready),
		"continue",
		"delete",
		`echo @@dump\n`,
		"maint time 1",
		fmt.Sprintf("dump binary memory %s %#x %#x", file, buf, buf+uint64(size)),
		"maint time 0",
		`echo @@end\n`,
		"kill", "quit", ""}, "\n"))
	output := runChild(cmd, "gdb dump")
	_, part, _ := strings.Cut(output, "@@dump")
	part, _, _ = strings.Cut(part, "@@end")
	m := maintRE.FindAllStringSubmatch(part, -1)
	if len(m) == 0 {
		fatalf("gdb: no `maint time` figure for dump:\n%s", tail(output, 2000))
	}
	data, err := os.ReadFile(file)
	check(err)
	if len(data) != size {
		fatalf("gdb dump: %d bytes, want %d:\n%s", len(data), size, tail(output, 2000))
	}
	for _, i := range []int{0, 1, 12345, size / 2, size - 1} {
		if want := byte(uint32(i)*167 + uint32(i)>>9); data[i] != want {
			fatalf("gdb dump: byte %d is %#x, want %#x", i, data[i], want)
		}
	}
	sec, err := strconv.ParseFloat(m[len(m)-1][1], 64)
	check(err)
	return sec
}
