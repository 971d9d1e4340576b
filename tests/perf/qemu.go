package main

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rspstub/rspstub/rsp"
)

// qemuSystemArgs boots the long-mode guest of emulator/qemu/testdata
// (a loop calling tick(), the first 4 MiB identity-mapped) under TCG.
func qemuSystemArgs(kernel string) []string {
	return []string{"-nographic", "-display", "none", "-no-reboot", "-m", "32", "-smp", "1",
		"-monitor", "none", "-serial", "none", "-parallel", "none", "-net", "none", "-kernel", kernel}
}

// buildQEMUGuest builds the multiboot guest; it returns the bootable
// image and tick's address.
func buildQEMUGuest(b builds) (string, uint64) {
	src := func(name string) string { return filepath.Join(b.repoRoot, "emulator/qemu/testdata", name) }
	run(workDir, "gcc", "-c", "-o", "qguest.o", src("guest.S"))
	run(workDir, "ld", "-m", "elf_x86_64", "-T", src("guest.ld"), "-o", "qguest64.elf", "qguest.o")
	run(workDir, "objcopy", "-O", "elf32-i386", "qguest64.elf", "qguest.elf")
	return filepath.Join(workDir, "qguest.elf"), elfSym(filepath.Join(workDir, "qguest64.elf"), "tick")
}

// qemuSystemDirect starts qemu-system-x86_64, stopped, with its gdbstub
// on a unix socket, and connects to it.
func qemuSystemDirect(qemu, kernel string) *served {
	sockSeq++
	sock := filepath.Join(workDir, fmt.Sprintf("qsys%d.sock", sockSeq))
	cmd := exec.Command(qemu, append(qemuSystemArgs(kernel), "-gdb", "unix:"+sock+",server=on,wait=off", "-S")...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	check(startChild(cmd))
	return &served{cmd: cmd, c: dialRetry(cmd, "unix:"+sock), sock: sock}
}

// qemuSystemDirectTCP starts qemu-system-x86_64, stopped, with its
// gdbstub on a loopback TCP port (as -s does, but on 127.0.0.1 and a
// free port), for another debugger: once QEMU answers, our client
// leaves. It returns the address.
func qemuSystemDirectTCP(qemu, kernel string) (*served, string) {
	addr := freeLoopbackPort()
	cmd := exec.Command(qemu, append(qemuSystemArgs(kernel), "-gdb", "tcp:"+addr, "-S")...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	check(startChild(cmd))
	c := dialRetry(cmd, addr)
	c.Close()
	return &served{cmd: cmd}, addr
}

// freeLoopbackPort returns 127.0.0.1:PORT with a port free a moment ago.
func freeLoopbackPort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	addr := l.Addr().String()
	l.Close()
	return addr
}

// qemuSystemProxied starts `rspstub qemu -- qemu-system-x86_64 ...`
// (QEMU on a private unix socket) listening on a unix socket too.
func qemuSystemProxied(b builds, qemu, kernel string) *served {
	sockSeq++
	sock := filepath.Join(workDir, fmt.Sprintf("rspstubq%d.sock", sockSeq))
	s, addr := startProxied(b, qemu, kernel, "unix:"+sock)
	s.sock = sock
	c, err := rsp.Dial(addr, rsp.WithTimeout(5*time.Minute))
	if err != nil {
		reap(s.cmd)
		fatalf("dial rspstub qemu: %v", err)
	}
	s.c = c
	return s
}

// startProxied starts `rspstub qemu --listen LISTEN -- qemu-system-x86_64
// ...` and waits until it listens; it returns the listening address.
func startProxied(b builds, qemu, kernel, listen string) (*served, string) {
	cmd := exec.Command(b.stub, append([]string{"qemu", "--listen", listen, "--", qemu}, qemuSystemArgs(kernel)...)...)
	cmd.Stdout = io.Discard
	errp, err := cmd.StderrPipe()
	check(err)
	check(startChild(cmd))
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
		reap(cmd)
		fatalf("rspstub qemu did not listen")
	}
	return &served{cmd: cmd}, addr
}

// qemuForwarded starts qemu-system-x86_64 behind a process of ours that
// only copies bytes between two unix sockets (this program run with
// -forward): the cost of any proxy process in front of QEMU, the floor
// for rspstub's own rows.
func qemuForwarded(qemu, kernel string) *served {
	q := qemuSystemDirect(qemu, kernel)
	q.c.Close() // the forwarder connects instead
	q.c = nil
	sockSeq++
	sock := filepath.Join(workDir, fmt.Sprintf("fwd%d.sock", sockSeq))
	self, err := os.Executable()
	check(err)
	cmd := exec.Command(self, "-forward", sock+"="+q.sock)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	check(startChild(cmd))
	return &served{cmd: cmd, c: dialRetry(cmd, "unix:"+sock), sock: sock, also: []*served{q}}
}

// forward serves -forward LISTEN=TARGET: one connection accepted on the
// unix socket LISTEN, joined to one to TARGET, bytes copied both ways
// until either side closes.
func forward(spec string) {
	listen, to, ok := strings.Cut(spec, "=")
	if !ok {
		log.Fatalf("-forward: want LISTEN=TARGET, got %q", spec)
	}
	ln, err := net.Listen("unix", listen)
	if err != nil {
		log.Fatal(err)
	}
	down, err := ln.Accept()
	if err != nil {
		log.Fatal(err)
	}
	up, err := net.Dial("unix", to)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		io.Copy(up, down)
		up.Close()
	}()
	io.Copy(down, up)
}

// qemuSteps makes n single steps in the guest's loop. With regs, each
// step is followed by a `g`, which is what GDB's stepi sends to QEMU
// (its stop replies carry no registers). rspstub's stop replies carry
// none either when it would have to ask QEMU first; it asks QEMU for
// them as it passes the stop on when its client read registers at the
// last stop, and answers the `g` from that copy.
func qemuSteps(s *served, n int, regs bool) {
	for i := 0; i < n; i++ {
		st, err := s.c.Step()
		check(err)
		if st.Signal != rsp.SIGTRAP {
			fatalf("step: unexpected stop %+v", st)
		}
		if regs {
			_, err := s.c.ReadRegisters()
			check(err)
		}
	}
}

// qemuBlocks is how many slices each measurement is cut into, taken in
// turn from every QEMU: the load of a shared machine then weighs on all
// of them alike.
const qemuBlocks = 10

// qemuProxy measures what rspstub costs in front of qemu-system: the
// same reads and steps through `rspstub qemu`, straight to QEMU's
// gdbstub, and through a process that only forwards bytes, all on unix
// sockets, each stopped in tick() after boot. The three QEMUs run side
// by side and every measurement alternates between them in slices.
func qemuProxy(b builds) []row {
	qemu := tool("qemu-system-x86_64", "qemu-system-x86")
	total, steps := 16<<20, 5000
	if *quick {
		total, steps = 256<<10, 200
	}
	mib := float64(total) / (1 << 20)
	direct := "qemu-system gdbstub, direct"
	rows := []row{
		{what: fmt.Sprintf("qemu-system: bulk read %g MiB with `m` through rspstub vs QEMU's gdbstub directly, unix sockets (throughput)", mib),
			short: "`m` read via rspstub qemu vs QEMU", unit: "MiB/s", peerName: direct, target: target{op: ">=", v: 0.9}},
		{what: "qemu-system: single steps (`vCont;s`) through rspstub vs QEMU's gdbstub directly, unix sockets (rate)",
			short: "step via rspstub qemu vs QEMU", unit: "steps/s", peerName: direct, target: target{op: ">=", v: 0.9}},
		{what: "qemu-system: single steps each followed by `g` (what GDB's stepi sends to QEMU) through rspstub vs QEMU's gdbstub directly, unix sockets (rate)",
			short: "step+g via rspstub qemu vs QEMU", unit: "steps/s", peerName: direct, target: target{op: ">=", v: 0.9}},
		{what: "qemu-system: single steps through a process that only copies bytes (the floor of any proxy process) vs QEMU's gdbstub directly, unix sockets (rate)",
			short: "step via a byte forwarder vs QEMU", unit: "steps/s", peerName: direct},
		{what: "qemu-system: single steps each followed by `g` through a process that only copies bytes vs QEMU's gdbstub directly, unix sockets (rate)",
			short: "step+g via a byte forwarder vs QEMU", unit: "steps/s", peerName: direct},
	}
	if qemu == "" || b.gdb == "" {
		rows = append(rows, row{what: gdbStepWhat, short: gdbStepShort, unit: "stepi/s", peerName: "gdb to qemu-system's gdbstub, direct"})
		for i := range rows {
			rows[i].peerNA = missing
		}
		return rows
	}
	kernel, tick := buildQEMUGuest(b)
	rows = append(rows, qemuGDBSteps(b, qemu, kernel, tick))
	for i := 0; i < *runs; i++ {
		all := []*served{qemuSystemProxied(b, qemu, kernel), qemuSystemDirect(qemu, kernel), qemuForwarded(qemu, kernel)}
		for _, s := range all {
			check(s.c.SetBreakpoint(rsp.BreakHardware, tick, 1))
			_, err := s.c.Continue()
			check(err)
			check(s.c.RemoveBreakpoint(rsp.BreakHardware, tick, 1))
		}
		var read, step, stepg [3]time.Duration
		slice := func(d *[3]time.Duration, f func(*served)) {
			for k := 0; k < qemuBlocks; k++ {
				for j, s := range all {
					t0 := time.Now()
					f(s)
					d[j] += time.Since(t0)
				}
			}
		}
		chunk := total / qemuBlocks
		slice(&read, func(s *served) { readLoop(s, 0, chunk, false) }) // [0, 4 MiB) is mapped
		slice(&step, func(s *served) { qemuSteps(s, steps/qemuBlocks, false) })
		slice(&stepg, func(s *served) { qemuSteps(s, steps/qemuBlocks, true) })
		for _, s := range all {
			s.close()
		}
		n := float64(steps / qemuBlocks * qemuBlocks)
		m := float64(chunk*qemuBlocks) / (1 << 20)
		rows[0].ours, rows[0].peer = append(rows[0].ours, m/read[0].Seconds()), append(rows[0].peer, m/read[1].Seconds())
		rows[1].ours, rows[1].peer = append(rows[1].ours, n/step[0].Seconds()), append(rows[1].peer, n/step[1].Seconds())
		rows[2].ours, rows[2].peer = append(rows[2].ours, n/stepg[0].Seconds()), append(rows[2].peer, n/stepg[1].Seconds())
		rows[3].ours, rows[3].peer = append(rows[3].ours, n/step[2].Seconds()), append(rows[3].peer, n/step[1].Seconds())
		rows[4].ours, rows[4].peer = append(rows[4].ours, n/stepg[2].Seconds()), append(rows[4].peer, n/stepg[1].Seconds())
	}
	return rows
}

const (
	gdbStepWhat  = "qemu-system: GDB's `stepi` (vCont;s, then g and GDB's memory reads) through rspstub vs GDB to QEMU's gdbstub directly, GDB on loopback TCP as with rspstub's default --listen and QEMU's -s (rate)"
	gdbStepShort = "GDB stepi via rspstub qemu vs QEMU"
)

// qemuGDBSteps times Debian's GDB single-stepping the guest's loop with
// `stepi` from its Python (each step is what a user's stepi costs: the
// resume, the registers, the code at pc and the function's start for
// GDB's frame analysis, the thread list), through `rspstub qemu` and
// straight to qemu-system's gdbstub. GDB sessions alternate between the
// two, in slices (each going first in half of them), each run. A
// session ends with `disconnect`, not a detach: QEMU would run the guest
// on after a detach, a busy loop beside the other's next session. GDB
// connects over loopback TCP, as users
// do by default (rspstub qemu listens on 127.0.0.1:1234, QEMU's -s on
// port 1234); rspstub reaches its QEMU over its private unix socket.
// (With GDB on unix sockets the ratio is lower, 0.76-0.90 here: QEMU
// answers faster on a unix socket than on TCP, and rspstub gains less,
// since each read by the peer of a unix socket signals the writer's
// socket writable, and Go's poller, which watches every socket for that
// edge-triggered, wakes for it: 17 thread switches a stepi on unix
// against 12 on TCP, measured.)
func qemuGDBSteps(b builds, qemu, kernel string, tick uint64) row {
	r := row{what: gdbStepWhat, short: gdbStepShort, unit: "stepi/s", peerName: "gdb to qemu-system's gdbstub, direct", target: target{op: ">=", v: 0.9}}
	n, slices := 2000, 8
	if *quick {
		n, slices = 100, 2
	}
	script := filepath.Join(workDir, "stepi.py")
	check(os.WriteFile(script, []byte(fmt.Sprintf(`import gdb, time
gdb.execute("hbreak *%#x")
gdb.execute("continue", to_string=True)
gdb.execute("delete")
n = %d
t = time.time()
for i in range(n):
    gdb.execute("stepi", to_string=True)
print("@@rate %%.3f" %% (n / (time.time() - t)))
gdb.execute("disconnect")
`, tick, n/slices)), 0o644))
	elf := strings.TrimSuffix(kernel, "qguest.elf") + "qguest64.elf"
	for i := 0; i < *runs; i++ {
		proxied, paddr := startProxied(b, qemu, kernel, "127.0.0.1:0")
		direct, daddr := qemuSystemDirectTCP(qemu, kernel)
		var ours, peer float64 // seconds per step, summed over slices
		for k := 0; k < slices; k++ {
			if k%2 == 0 { // each goes first in half the slices
				ours += 1 / gdbStepRate(b, paddr, script, elf)
				peer += 1 / gdbStepRate(b, daddr, script, elf)
			} else {
				peer += 1 / gdbStepRate(b, daddr, script, elf)
				ours += 1 / gdbStepRate(b, paddr, script, elf)
			}
		}
		proxied.close()
		direct.close()
		r.ours = append(r.ours, float64(slices)/ours)
		r.peer = append(r.peer, float64(slices)/peer)
	}
	return r
}

// gdbStepRate runs one GDB session on the stub at addr with the
// stepping script and returns its rate.
func gdbStepRate(b builds, addr, script, elf string) float64 {
	cmd := exec.Command(b.gdb, "-nx", "-q", "-batch", "-ex", "set pagination off", "-ex", "set confirm off",
		"-ex", "set architecture i386:x86-64", "-ex", "target remote "+addr, "-x", script, elf)
	out := runChild(cmd, "gdb stepi")
	m := gdbRateRE.FindStringSubmatch(out)
	if m == nil {
		fatalf("gdb stepi: no rate:\n%s", tail(out, 2000))
	}
	v, err := strconv.ParseFloat(m[1], 64)
	check(err)
	return v
}

var gdbRateRE = regexp.MustCompile(`@@rate ([0-9.]+)`)
