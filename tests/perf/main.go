// Command perf measures rspstub against its peers in one run and prints
// ratios (medians of several runs, with min-max). Absolute times are
// noise on a shared machine; ratios measured side by side are the
// figures.
//
//	go run ./tests/perf            # the full comparison (a few minutes)
//	go run ./tests/perf -quick     # a smoke run of every comparison (seconds)
//
// It builds what it compares: rspstub, tests/testdata/loop.c as a Windows
// program (mingw-w64 gcc -O2) and as a native Linux program (gcc -O2) for
// gdbserver, which it takes from Debian's gdbserver package.
package main

import (
	"bufio"
	"debug/elf"
	"debug/pe"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rspstub/rspstub/emulator/ucwin"
	"github.com/rspstub/rspstub/rsp"
)

var (
	quick = flag.Bool("quick", false, "smoke mode: tiny sizes, one run each")
	runs  = flag.Int("runs", 5, "runs per measurement (the median is reported)")
	only  = flag.String("only", "continue,hits,memory", "comparisons to run, comma-separated")
)

func want(name string) bool { return slices.Contains(strings.Split(*only, ","), name) }

func main() {
	log.SetFlags(0)
	log.SetPrefix("perf: ")
	flag.Parse()
	if *quick {
		*runs = 1
	}
	work, err := os.MkdirTemp("", "rspstub-perf-")
	check(err)
	defer os.RemoveAll(work)
	b := build(work)

	var rows []row
	if want("continue") {
		rows = append(rows, continueCost(b)...)
	}
	if want("hits") {
		rows = append(rows, breakpointHits(b)...)
	}
	if want("memory") {
		rows = append(rows, memoryReads(b)...)
	}
	printTable(os.Stdout, rows)
}

// row is one line of the result table: a measurement of ours against a
// peer, as a ratio of medians.
type row struct {
	what      string
	ours      []float64 // per-run figures
	peer      []float64
	unit      string
	peerName  string
	lowerGood bool // true for times, false for rates
	target    string
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printTable(w io.Writer, rows []row) {
	fmt.Fprintf(w, "\nrspstub performance, %d run(s) each, medians [min-max]; %s, %d CPUs\n\n",
		*runs, runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU())
	fmt.Fprintf(w, "| measurement | rspstub | peer | ratio | target |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		mo, mp := median(r.ours), median(r.peer)
		ratio := mo / mp
		fmt.Fprintf(w, "| %s | %s | %s: %s | %.2f | %s |\n", r.what,
			fig(r.ours, r.unit), r.peerName, fig(r.peer, r.unit), ratio, r.target)
	}
}

func fig(v []float64, unit string) string {
	if len(v) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%s %s [%s-%s]", num(median(v)), unit, num(slices.Min(v)), num(slices.Max(v)))
}

func num(f float64) string {
	switch {
	case f >= 100:
		return strconv.FormatFloat(f, 'f', 0, 64)
	case f >= 1:
		return strconv.FormatFloat(f, 'f', 2, 64)
	}
	return strconv.FormatFloat(f, 'g', 3, 64)
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// builds holds the artifacts.
type builds struct {
	stub     string // rspstub binary
	loopPE   string // loop.exe
	loopELF  string // native loop
	hitPE    uint64 // address of hit() in loop.exe
	bigPE    uint64 // address of big[] in loop.exe
	hitELF   uint64
	bigELF   uint64
	gdbsrv   string // gdbserver, "" if missing
	repoRoot string
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func run(dir, name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		log.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func build(work string) builds {
	b := builds{repoRoot: repoRoot()}
	b.stub = filepath.Join(work, "rspstub")
	run(b.repoRoot, "go", "build", "-o", b.stub, "./cmd/rspstub")
	src := filepath.Join(b.repoRoot, "tests/testdata/loop.c")
	b.loopPE = filepath.Join(work, "loop.exe")
	run(work, "x86_64-w64-mingw32-gcc", "-O2", "-o", b.loopPE, src)
	b.loopELF = filepath.Join(work, "loop")
	run(work, "gcc", "-O2", "-no-pie", "-o", b.loopELF, src)
	b.hitPE, b.bigPE = peSym(b.loopPE, "hit"), peSym(b.loopPE, "big")
	b.hitELF, b.bigELF = elfSym(b.loopELF, "hit"), elfSym(b.loopELF, "big")
	if p, err := exec.LookPath("gdbserver"); err == nil {
		b.gdbsrv = p
	} else {
		log.Printf("gdbserver not installed: peer rows are skipped (apt-get install gdbserver)")
	}
	return b
}

func peSym(path, name string) uint64 {
	f, err := pe.Open(path)
	check(err)
	defer f.Close()
	base := f.OptionalHeader.(*pe.OptionalHeader64).ImageBase
	for _, s := range f.Symbols {
		if s.Name == name && s.SectionNumber > 0 {
			return base + uint64(f.Sections[s.SectionNumber-1].VirtualAddress) + uint64(s.Value)
		}
	}
	log.Fatalf("%s: no symbol %s", path, name)
	return 0
}

func elfSym(path, name string) uint64 {
	f, err := elf.Open(path)
	check(err)
	defer f.Close()
	syms, err := f.Symbols()
	check(err)
	for _, s := range syms {
		if s.Name == name {
			return s.Value
		}
	}
	log.Fatalf("%s: no symbol %s", path, name)
	return 0
}

// stub is a running `rspstub serve` with a connected client.
type served struct {
	cmd *exec.Cmd
	c   *rsp.Client
}

var listenRE = regexp.MustCompile(`listening on ([^\s;]+)`)

func serve(b builds, args ...string) *served {
	cmd := exec.Command(b.stub, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Stdout = io.Discard
	errp, err := cmd.StderrPipe()
	check(err)
	check(cmd.Start())
	sc := bufio.NewScanner(errp)
	addr := ""
	for sc.Scan() {
		if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
			break
		}
	}
	go io.Copy(io.Discard, errp)
	if addr == "" {
		cmd.Process.Kill()
		log.Fatalf("rspstub did not listen")
	}
	c, err := rsp.Dial(addr, rsp.WithTimeout(5*time.Minute))
	check(err)
	return &served{cmd: cmd, c: c}
}

func (s *served) close() {
	s.c.Close()
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// gdbserve starts gdbserver on the native loop and connects.
func gdbserve(b builds, args ...string) *served {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(b.gdbsrv, append([]string{"--once", addr, b.loopELF}, args...)...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	check(cmd.Start())
	var c *rsp.Client
	for i := 0; i < 100; i++ {
		if c, err = rsp.Dial(addr, rsp.WithTimeout(5*time.Minute)); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	check(err)
	return &served{cmd: cmd, c: c}
}

func untilExit(c *rsp.Client) {
	for i := 0; ; i++ {
		st, err := c.Continue()
		check(err)
		if st.Kind == rsp.StopExited || st.Kind == rsp.StopTerminated {
			return
		}
		if i > 1000 {
			log.Fatalf("the guest did not exit: %+v", st)
		}
	}
}

// continueCost: a guest of about 10^9 instructions run to exit, in
// process (no server, no client) against rspstub serve with a client
// attached and 100 breakpoints at addresses never executed.
func continueCost(b builds) []row {
	iters := "150000000" // ~7 instructions an iteration: ~10^9
	if *quick {
		iters = "1000000"
	}
	var inproc, served100 []float64
	for i := 0; i < *runs; i++ {
		// In process: load, then time the run to exit.
		tgt, err := ucwin.New(ucwin.Config{Program: b.loopPE, Args: []string{iters, "0"}, Stdout: io.Discard, Stderr: io.Discard})
		check(err)
		t0 := time.Now()
		for {
			st, err := tgt.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
			check(err)
			if st.Kind == rsp.StopExited {
				break
			}
		}
		inproc = append(inproc, time.Since(t0).Seconds())
		tgt.Close()

		// Served: a client attached, 100 breakpoints in the image headers
		// (mapped, never executed), then time continue to exit.
		s := serve(b, b.loopPE, iters, "0")
		base := b.hitPE &^ 0xffff
		for k := 0; k < 100; k++ {
			check(s.c.SetBreakpoint(rsp.BreakSoftware, base+uint64(k)*8, 1))
		}
		t0 = time.Now()
		untilExit(s.c)
		served100 = append(served100, time.Since(t0).Seconds())
		s.close()
	}
	return []row{{
		what: "run ~10^9 guest instructions to exit, 100 breakpoints never hit (time)",
		ours: served100, peer: inproc, unit: "s", peerName: "in-process, no server or client",
		lowerGood: true, target: "<= 1.1",
	}}
}

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
		log.Fatalf("expected %d breakpoint hits, got %d", calls, hits)
	}
	return float64(hits) / el
}

func breakpointHits(b builds) []row {
	calls := 100000
	if *quick {
		calls = 200
	}
	iters := strconv.Itoa(calls * 10)
	var ours, peer []float64
	for i := 0; i < *runs; i++ {
		s := serve(b, b.loopPE, iters, strconv.Itoa(calls))
		ours = append(ours, hitLoop(s, b.hitPE, calls))
		s.close()
		if b.gdbsrv != "" {
			g := gdbserve(b, iters, strconv.Itoa(calls))
			peer = append(peer, hitLoop(g, b.hitELF, calls))
			g.close()
		}
	}
	return []row{{
		what: fmt.Sprintf("breakpoint hits, %d x (stop, z0, s, Z0, c) (rate)", calls),
		ours: ours, peer: peer, unit: "hits/s", peerName: "gdbserver, native",
		target: "> 1",
	}}
}

// runTo continues to a breakpoint at addr.
func runTo(s *served, addr uint64) {
	check(s.c.SetBreakpoint(rsp.BreakSoftware, addr, 1))
	st, err := s.c.Continue()
	check(err)
	if st.Kind != rsp.StopSWBreak && st.Signal != rsp.SIGTRAP {
		log.Fatalf("did not stop at %#x: %+v", addr, st)
	}
	check(s.c.RemoveBreakpoint(rsp.BreakSoftware, addr, 1))
}

// readLoop reads `total` bytes of `big` in maximum-size packets and
// returns MiB/s.
func readLoop(s *served, addr uint64, total int, binary bool) float64 {
	chunk := s.c.PacketSize()/2 - 32
	if binary {
		chunk = s.c.PacketSize() - 32
	}
	buf := make([]byte, chunk)
	const span = 4 << 20
	t0 := time.Now()
	for done := 0; done < total; {
		off := uint64(done % span)
		n := min(chunk, span-int(off), total-done)
		got, err := s.c.ReadMemoryPacket(binary, addr+off, buf[:n])
		check(err)
		if got != n {
			log.Fatalf("short read %d of %d at %#x", got, n, addr+off)
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
	var mOurs, xOurs, mPeer, latOurs, latPeer []float64
	for i := 0; i < *runs; i++ {
		// Stop in hit(), after main filled big with its pattern.
		s := serve(b, b.loopPE, "1", "1")
		runTo(s, b.hitPE)
		mOurs = append(mOurs, readLoop(s, b.bigPE, total, false))
		xOurs = append(xOurs, readLoop(s, b.bigPE, total, true))
		latOurs = append(latOurs, latencyLoop(s, trips))
		s.close()
		if b.gdbsrv != "" {
			g := gdbserve(b, "1", "1")
			runTo(g, b.hitELF)
			mPeer = append(mPeer, readLoop(g, b.bigELF, total, false))
			latPeer = append(latPeer, latencyLoop(g, trips))
			g.close()
		}
	}
	return []row{
		{what: "packet round trip (`p` rip) (rate)", ours: latOurs, peer: latPeer, unit: "trips/s",
			peerName: "gdbserver, native", target: ">= 1"},
		{what: fmt.Sprintf("bulk read %d MiB with `m` (throughput)", total>>20), ours: mOurs, peer: mPeer,
			unit: "MiB/s", peerName: "gdbserver, native", target: ">= 1"},
		{what: fmt.Sprintf("bulk read %d MiB: our `x` vs gdbserver's best, `m` (throughput)", total>>20), ours: xOurs,
			peer: mPeer, unit: "MiB/s", peerName: "gdbserver `m` (13.1 has no `x`)", target: ">= 1"},
		{what: fmt.Sprintf("bulk read %d MiB: `x` vs our own `m` (throughput)", total>>20), ours: xOurs, peer: mOurs,
			unit: "MiB/s", peerName: "rspstub `m`", target: ">= 1.8"},
	}
}
