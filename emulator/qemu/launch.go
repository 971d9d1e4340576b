package qemu

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a QEMU started by Launch with a private gdbstub: a unix
// socket in a temporary folder only this user can enter.
type Process struct {
	Cmd  *exec.Cmd
	Addr string // the gdbstub, "unix:PATH": pass it to Connect
	Mode Mode

	dir      string
	done     chan struct{}
	waitErr  error
	stderr   *tailWriter
	stopOnce sync.Once
}

// LaunchOptions are the standard streams of the QEMU process (nil: the
// null device).
type LaunchOptions struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Ready bounds the wait for the gdbstub socket (default 10 s).
	Ready time.Duration
}

// ModeOf tells qemu-system-* (ModeSystem) from qemu-* user-mode
// emulators (ModeUser) by the program's name.
func ModeOf(program string) (Mode, error) {
	base := filepath.Base(program)
	switch {
	case strings.HasPrefix(base, "qemu-system-"):
		return ModeSystem, nil
	case strings.HasPrefix(base, "qemu-"):
		return ModeUser, nil
	}
	return ModeAuto, fmt.Errorf("qemu: %q is not a QEMU binary (want qemu-system-x86_64 ARGS... or qemu-x86_64 PROGRAM...)", program)
}

// Launch starts argv (qemu-system-x86_64 ARGS... or qemu-x86_64
// [OPTIONS] PROGRAM [ARGS]) with a gdbstub on a private unix socket, the
// CPUs stopped before the first instruction, and waits until the socket
// is there (give Options.Retry to Connect: QEMU may not listen on it
// yet). argv must not ask for a gdbstub of its own (-s, -gdb, -g):
// those listen on every interface.
func Launch(argv []string, opt LaunchOptions) (*Process, error) {
	if len(argv) == 0 {
		return nil, errors.New("qemu: no QEMU command given")
	}
	mode, err := ModeOf(argv[0])
	if err != nil {
		return nil, err
	}
	for _, a := range userOptions(mode, argv[1:]) {
		switch a {
		case "-s", "-gdb", "--gdb", "-g":
			return nil, fmt.Errorf("qemu: remove %s from the QEMU arguments: rspstub gives QEMU a private gdbstub socket itself", a)
		}
	}
	dir, err := os.MkdirTemp("", "rspstub-qemu-")
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	sock := filepath.Join(dir, "gdb.sock")
	args := append([]string(nil), argv[1:]...)
	if mode == ModeSystem {
		args = append(args, "-gdb", "unix:"+sock+",server=on,wait=off", "-S")
	} else {
		args = append([]string{"-g", sock}, args...)
	}
	cmd := exec.Command(argv[0], args...)
	cmd.Stdin, cmd.Stdout = opt.Stdin, opt.Stdout
	p := &Process{Cmd: cmd, Addr: "unix:" + sock, Mode: mode, dir: dir, done: make(chan struct{}), stderr: &tailWriter{w: opt.Stderr}}
	cmd.Stderr = p.stderr
	// QEMU_GDB would give qemu-user a second, TCP gdbstub.
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "QEMU_GDB=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("qemu: start %s: %w", argv[0], err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	ready := opt.Ready
	if ready <= 0 {
		ready = 10 * time.Second
	}
	deadline := time.Now().Add(ready)
	for {
		if fi, err := os.Stat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return p, nil
		}
		select {
		case <-p.done:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("qemu: %s exited before its gdbstub was ready (%v)%s", filepath.Base(argv[0]), p.waitErr, p.stderr.tail())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop(0)
			return nil, fmt.Errorf("qemu: %s made no gdbstub socket within %v%s", filepath.Base(argv[0]), ready, p.stderr.tail())
		}
	}
}

// userOptions are the arguments that are QEMU's own: all of them in
// system mode, those before the program in user mode.
func userOptions(mode Mode, args []string) []string {
	if mode == ModeSystem {
		return args
	}
	for i, a := range args {
		if strings.HasPrefix(a, "-") {
			continue
		}
		if fi, err := os.Stat(a); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return args[:i]
		}
	}
	return args
}

// Done is closed when QEMU has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports QEMU's exit status once Done is closed.
func (p *Process) Exited() error {
	select {
	case <-p.done:
		return p.waitErr
	default:
		return nil
	}
}

// Stop ends QEMU: SIGTERM first (system mode, which shuts down cleanly
// on it) and SIGKILL after grace, or at once in user mode, where QEMU
// waiting for a debugger ignores SIGTERM. It removes the socket folder.
func (p *Process) Stop(grace time.Duration) {
	p.stopOnce.Do(func() {
		defer os.RemoveAll(p.dir)
		select {
		case <-p.done:
			return
		default:
		}
		if p.Mode == ModeSystem && grace > 0 {
			p.Cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
				return
			case <-time.After(grace):
			}
		}
		p.Cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	})
}

// tailWriter passes QEMU's stderr on and keeps its end for error
// messages.
type tailWriter struct {
	w   io.Writer
	mu  sync.Mutex
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2048 {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-1024:]...)
	}
	t.mu.Unlock()
	if t.w != nil {
		t.w.Write(p)
	}
	return len(p), nil
}

func (t *tailWriter) tail() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.buf))
	if s == "" {
		return ""
	}
	return ": " + strings.Join(strings.Fields(s), " ")
}
