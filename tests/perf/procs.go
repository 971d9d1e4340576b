package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rspstub/rspstub/rsp"
)

// children are the processes we started and have not reaped.
var children struct {
	sync.Mutex
	m map[*exec.Cmd]bool
}

// startChild starts cmd, which dies with us: SIGKILL on our exit
// (Pdeathsig) and killChildren on a fatal error or signal.
func startChild(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	children.Lock()
	defer children.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	if children.m == nil {
		children.m = map[*exec.Cmd]bool{}
	}
	children.m[cmd] = true
	return nil
}

// runChild runs cmd to its end as a child (startChild), its output
// and errors collected, and returns them; a child still running after 5
// minutes is killed and ends the harness, naming what.
func runChild(cmd *exec.Cmd, what string) string {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	check(startChild(cmd))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		reap(cmd)
		fatalf("%s: no result in 5 minutes", what)
	}
	children.Lock()
	delete(children.m, cmd)
	children.Unlock()
	return out.String()
}

// reap SIGKILLs a child (qemu-user waiting for a debugger ignores
// SIGTERM) and waits for it.
func reap(cmd *exec.Cmd) {
	children.Lock()
	delete(children.m, cmd)
	children.Unlock()
	cmd.Process.Kill()
	cmd.Wait()
}

func killChildren() {
	children.Lock()
	m := children.m
	children.m = nil
	children.Unlock()
	for cmd := range m {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// served is a running stub with a connected client.
type served struct {
	cmd  *exec.Cmd
	c    *rsp.Client
	sock string    // unix socket to remove, if any
	also []*served // what it serves in front of, closed after it
}

func (s *served) close() {
	if s.c != nil {
		s.c.Close()
	}
	reap(s.cmd)
	if s.sock != "" {
		os.Remove(s.sock)
	}
	for _, a := range s.also {
		a.close()
	}
}

var listenRE = regexp.MustCompile(`listening on ([^\s;]+)`)

// startStub starts `rspstub serve` and returns its address once it
// prints "listening on", and how long that took from exec.
func startStub(b builds, args ...string) (*exec.Cmd, string, time.Duration) {
	return startStubOn(b, "127.0.0.1:0", args...)
}

// startStubOn is startStub listening on listen (HOST:PORT or unix:PATH).
//
// The stub runs the synthesized userland unless args choose one: these
// rows measure the emulator and the protocol, and stay comparable across
// runs; the wine rows choose theirs.
func startStubOn(b builds, listen string, args ...string) (*exec.Cmd, string, time.Duration) {
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--userland") }) {
		args = append([]string{"--userland", "synth"}, args...)
	}
	cmd := exec.Command(b.stub, append([]string{"serve", "--listen", listen}, args...)...)
	cmd.Stdout = io.Discard
	errp, err := cmd.StderrPipe()
	check(err)
	t0 := time.Now()
	check(startChild(cmd))
	sc := bufio.NewScanner(errp)
	addr := ""
	for sc.Scan() {
		if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
			break
		}
	}
	el := time.Since(t0)
	go io.Copy(io.Discard, errp)
	if addr == "" {
		reap(cmd)
		fatalf("rspstub serve %v did not listen", args)
	}
	return cmd, addr, el
}

// serve starts `rspstub serve` on a program and connects over TCP.
func serve(b builds, args ...string) *served {
	cmd, addr, _ := startStub(b, args...)
	c, err := rsp.Dial(addr, rsp.WithTimeout(5*time.Minute))
	if err != nil {
		reap(cmd)
		fatalf("dial rspstub: %v", err)
	}
	return &served{cmd: cmd, c: c}
}

// serveUnix is serve over a unix socket, the transport qemu-user's
// gdbstub is measured on.
func serveUnix(b builds, args ...string) *served {
	sockSeq++
	sock := filepath.Join(workDir, fmt.Sprintf("rspstub%d.sock", sockSeq))
	cmd, addr, _ := startStubOn(b, "unix:"+sock, args...)
	c, err := rsp.Dial(addr, rsp.WithTimeout(5*time.Minute))
	if err != nil {
		reap(cmd)
		fatalf("dial rspstub: %v", err)
	}
	return &served{cmd: cmd, c: c, sock: sock}
}

// gdbserve starts gdbserver on a native program and connects.
func gdbserve(b builds, prog string, args ...string) *served {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(b.gdbsrv, append([]string{"--once", addr, prog}, args...)...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	check(startChild(cmd))
	return &served{cmd: cmd, c: dialRetry(cmd, addr)}
}

var sockSeq int

// qemuServe starts qemu-user's gdbstub on a native program on a unix
// socket (`-g PORT` would listen on every interface) and connects.
func qemuServe(b builds, prog string, args ...string) *served {
	sockSeq++
	sock := filepath.Join(workDir, fmt.Sprintf("qemu%d.sock", sockSeq))
	cmd := exec.Command(b.qemu, append([]string{"-g", sock, prog}, args...)...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	check(startChild(cmd))
	return &served{cmd: cmd, c: dialRetry(cmd, "unix:"+sock), sock: sock}
}

// dialRetry dials until the stub accepts: gdbserver listens a moment
// after exec, and qemu-user's socket file appears at bind(), before
// listen().
func dialRetry(cmd *exec.Cmd, addr string) *rsp.Client {
	var err error
	for i := 0; i < 250; i++ {
		var c *rsp.Client
		if c, err = rsp.Dial(addr, rsp.WithTimeout(5*time.Minute)); err == nil {
			return c
		}
		time.Sleep(20 * time.Millisecond)
	}
	reap(cmd)
	fatalf("dial %s (%s): %v", addr, filepath.Base(cmd.Path), err)
	return nil
}

// untilExit continues to the guest's exit; stops on the way (watchpoint
// hits) count.
func untilExit(c *rsp.Client, maxStops int) int {
	for i := 0; ; i++ {
		st, err := c.Continue()
		check(err)
		if st.Kind == rsp.StopExited || st.Kind == rsp.StopTerminated {
			return i
		}
		if i > maxStops {
			fatalf("the guest did not exit after %d stops: %+v", i, st)
		}
	}
}

// runTo continues to a breakpoint at addr and removes it.
func runTo(s *served, addr uint64) {
	check(s.c.SetBreakpoint(rsp.BreakSoftware, addr, 1))
	st, err := s.c.Continue()
	check(err)
	if st.Kind != rsp.StopSWBreak && st.Signal != rsp.SIGTRAP {
		fatalf("did not stop at %#x: %+v", addr, st)
	}
	check(s.c.RemoveBreakpoint(rsp.BreakSoftware, addr, 1))
}

// pc reads the program counter.
func pc(s *served) uint64 {
	v, err := s.c.ReadRegisterUint("rip")
	check(err)
	return v
}
