package main

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
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

// qemuSystemProxied starts `rspstub qemu -- qemu-system-x86_64 ...`
// (QEMU on a private unix socket) listening on a unix socket too.
func qemuSystemProxied(b builds, qemu, kernel string) *served {
	sockSeq++
	sock := filepath.Join(workDir, fmt.Sprintf("rspstubq%d.sock", sockSeq))
	cmd := exec.Command(b.stub, append([]string{"qemu", "--listen", "unix:" + sock, "--", qemu}, qemuSystemArgs(kernel)...)...)
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
	c, err := rsp.Dial(addr, rsp.WithTimeout(5*time.Minute))
	if err != nil {
		reap(cmd)
		fatalf("dial rspstub qemu: %v", err)
	}
	return &served{cmd: cmd, c: c, sock: sock}
}

// qemuStepLoop times n single steps in the guest's loop: steps/s. With
// regs, each step is followed by a `g`, which is what GDB's stepi sends
// to QEMU (its stop replies carry no registers). rspstub fetches the
// registers from QEMU once per stop, for the stop reply's expedited
// registers, and answers the `g` from that copy; GDB itself, given those,
// sends no `g` to rspstub.
func qemuStepLoop(s *served, n int, regs bool) float64 {
	t0 := time.Now()
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
	return float64(n) / time.Since(t0).Seconds()
}

// qemuProxy measures what rspstub costs in front of qemu-system: the
// same reads and steps through `rspstub qemu` and straight to QEMU's
// gdbstub, both on unix sockets, stopped in tick() after boot.
func qemuProxy(b builds) []row {
	qemu := tool("qemu-system-x86_64", "qemu-system-x86")
	total, steps := 16<<20, 5000
	if *quick {
		total, steps = 256<<10, 200
	}
	mib := float64(total) / (1 << 20)
	rows := []row{
		{what: fmt.Sprintf("qemu-system: bulk read %g MiB with `m` through rspstub vs QEMU's gdbstub directly, unix sockets (throughput)", mib),
			short: "`m` read via rspstub qemu vs QEMU", unit: "MiB/s", peerName: "qemu-system gdbstub, direct"},
		{what: "qemu-system: single steps (`vCont;s`) through rspstub vs QEMU's gdbstub directly, unix sockets (rate)",
			short: "step via rspstub qemu vs QEMU", unit: "steps/s", peerName: "qemu-system gdbstub, direct"},
		{what: "qemu-system: single steps each followed by `g` (what GDB's stepi sends to QEMU) through rspstub vs QEMU's gdbstub directly, unix sockets (rate)",
			short: "step+g via rspstub qemu vs QEMU", unit: "steps/s", peerName: "qemu-system gdbstub, direct"},
	}
	if qemu == "" {
		for i := range rows {
			rows[i].peerNA = missing
		}
		return rows
	}
	kernel, tick := buildQEMUGuest(b)
	for i := 0; i < *runs; i++ {
		for _, proxied := range []bool{true, false} {
			var s *served
			if proxied {
				s = qemuSystemProxied(b, qemu, kernel)
			} else {
				s = qemuSystemDirect(qemu, kernel)
			}
			check(s.c.SetBreakpoint(rsp.BreakHardware, tick, 1))
			_, err := s.c.Continue()
			check(err)
			check(s.c.RemoveBreakpoint(rsp.BreakHardware, tick, 1))
			read := readLoop(s, 0, total, false) // [0, 4 MiB) is mapped
			step := qemuStepLoop(s, steps, false)
			stepg := qemuStepLoop(s, steps, true)
			s.close()
			if proxied {
				rows[0].ours, rows[1].ours, rows[2].ours = append(rows[0].ours, read), append(rows[1].ours, step), append(rows[2].ours, stepg)
			} else {
				rows[0].peer, rows[1].peer, rows[2].peer = append(rows[0].peer, read), append(rows[1].peer, step), append(rows[2].peer, stepg)
			}
		}
	}
	return rows
}
