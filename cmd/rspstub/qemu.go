package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rspstub/rspstub/debuggee"
	"github.com/rspstub/rspstub/emulator/qemu"
	"github.com/rspstub/rspstub/rsp"
)

const qemuUsage = `Usage:
  rspstub qemu [flags] --connect tcp:127.0.0.1:PORT|unix:PATH
      attach to a running QEMU's gdbstub (started with -gdb tcp:127.0.0.1:PORT -S,
      or -gdb unix:PATH,server=on,wait=off; qemu-user with -g PATH)
  rspstub qemu [flags] -- qemu-system-x86_64 ARGS...
  rspstub qemu [flags] -- qemu-x86_64 [OPTIONS] PROGRAM [ARGS...]
      start QEMU with a private unix-socket gdbstub, stopped before the first
      instruction, and end it when rspstub exits

rspstub serves GDB and LLDB in front of QEMU, adding what QEMU's gdbstub lacks:
no-ack mode, X, reads that return the readable prefix, swbreak/hwbreak/watch stop
kinds, watchpoints in qemu-user, range stepping, "monitor qemu CMD" for QEMU's
own monitor, and for a Windows x64 guest the module list (TEB from gs_base or
k_gs_base, PEB loader list, MZ scan, --module), qGetTIBAddr and the monitor
commands (bt, modules, teb, peb, ...).

Flags:
`

func qemuCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("qemu", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen     = fs.String("listen", "127.0.0.1:1234", "address to listen on: HOST:PORT, or unix:PATH (a port of 0 picks a free one)")
		connect    = fs.String("connect", "", "QEMU's gdbstub to attach to: tcp:127.0.0.1:PORT or unix:PATH")
		modeFlag   = fs.String("mode", "auto", "with --connect: auto, system or user")
		logPackets = fs.Bool("log-packets", false, "log every RSP packet, both sides (at debug level; implies -v)")
		verbose    = fs.Bool("v", false, "verbose logging")
		modules    moduleFlags
		unwinder   = unwinderFlag(fs)
	)
	fs.Var(&modules, "module", "FILE[@BASE]: a PE32+ x64 image loaded at BASE (hex), or an ELF64 x86-64 image (a kernel, firmware; without BASE where it was linked) in the guest: its symbols, lines and CFI name and unwind frames; overrides module discovery there and is served to the debugger (repeatable)")
	fs.Usage = func() {
		fmt.Fprint(stderr, qemuUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	argv := fs.Args()
	switch {
	case *connect == "" && len(argv) == 0:
		fmt.Fprintln(stderr, "rspstub qemu: give --connect ADDR, or a QEMU command line after --")
		fs.Usage()
		return exitUsage
	case *connect != "" && len(argv) > 0:
		fmt.Fprintln(stderr, "rspstub qemu: --connect and a QEMU command line exclude each other")
		return exitUsage
	}
	mode := qemu.ModeAuto
	switch *modeFlag {
	case "auto":
	case "system":
		mode = qemu.ModeSystem
	case "user":
		mode = qemu.ModeUser
	default:
		fmt.Fprintf(stderr, "rspstub qemu: --mode must be auto, system or user, not %q\n", *modeFlag)
		return exitUsage
	}
	var modFiles []*qemu.ModuleFile
	for _, spec := range modules {
		m, err := qemu.ParseModuleFile(spec)
		if err != nil {
			fmt.Fprintf(stderr, "rspstub qemu: %s\n", oneLine(err))
			return exitUsage
		}
		modFiles = append(modFiles, m)
	}
	log := newLogger(stderr, *verbose || *logPackets)
	// From here on a signal must end QEMU too: take signals before
	// starting it (they are acted on once the server runs).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	// Listen first: a busy port fails before QEMU is started.
	l, err := rsp.Listen(*listen, log)
	if err != nil {
		fmt.Fprintf(stderr, "rspstub: %s\n", oneLine(err))
		return exitUsage
	}
	defer l.Close()

	var proc *qemu.Process
	addr := *connect
	if len(argv) > 0 {
		proc, err = qemu.Launch(argv, qemu.LaunchOptions{Stdin: os.Stdin, Stdout: stdout, Stderr: stderr})
		if err != nil {
			fmt.Fprintf(stderr, "rspstub: %s\n", oneLine(err))
			return exitUsage
		}
		defer proc.Stop(2 * time.Second)
		addr, mode = proc.Addr, proc.Mode
	}
	opts := qemu.Options{Logger: log, Mode: mode, LogPackets: *logPackets, Modules: modFiles}
	if proc != nil {
		opts.PID = proc.Cmd.Process.Pid
		opts.Retry = 5 * time.Second
	}
	target, err := qemu.Connect(addr, opts)
	if err != nil {
		fmt.Fprintf(stderr, "rspstub: %s\n", oneLine(err))
		return exitError
	}
	view := debuggee.New(target)
	view.SetCFIPreference(*unwinder)
	if proc != nil {
		// QEMU is ended (by the deferred Stop): no detach first.
		defer target.Client().Close()
	} else {
		// Leave the QEMU we attached to running without a debugger.
		defer target.Close()
	}

	cl := &countingListener{Listener: l}
	laddr := l.Addr().String()
	if l.Addr().Network() == "unix" {
		laddr = "unix:" + laddr
	}
	what := "QEMU at " + *connect
	if proc != nil {
		what = filepath.Base(argv[0])
	}
	fmt.Fprintf(stderr, "rspstub: %s (%s mode): listening on %s; connect with: %s\n", what, target.Mode(), laddr, qemuHint(laddr))

	srv := rsp.NewServer(view, rsp.WithLogger(log), rsp.WithPacketLog(*logPackets))
	var qemuDone <-chan struct{}
	if proc != nil {
		qemuDone = proc.Done()
	}
	go func() {
		select {
		case <-sigs:
			log.Info("signal received; stopping")
			srv.Close()
		case <-qemuDone:
			log.Info("QEMU exited", "status", proc.Exited())
			// An attached debugger learns it from its next request or
			// stop (the connection to QEMU is closed); without one there
			// is nothing left to serve.
			target.Client().Close()
			if cl.active() == 0 {
				srv.Close()
			}
		}
	}()
	err = srv.Serve(cl)
	switch {
	case errors.Is(err, rsp.ErrKilled):
		log.Info("the debugger killed the guest; exiting")
	case errors.Is(err, rsp.ErrExited):
		log.Info("the guest exited and its debugger left; exiting")
	case errors.Is(err, rsp.ErrServerClosed):
	case err != nil:
		fmt.Fprintf(stderr, "rspstub: %s\n", oneLine(err))
		return exitError
	}
	return exitOK
}

// qemuHint is the gdb and lldb commands that reach addr.
func qemuHint(addr string) string {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		return fmt.Sprintf("gdb -ex 'target remote %s'  |  lldb -o 'process connect --plugin gdb-remote unix-connect://%s'", p, p)
	}
	return fmt.Sprintf("gdb -ex 'target remote %s'  |  lldb -o 'gdb-remote %s'", addr, addr)
}

// countingListener counts the open debugger connections.
type countingListener struct {
	net.Listener
	mu sync.Mutex
	n  int
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.n++
	l.mu.Unlock()
	return &countedConn{Conn: c, l: l}, nil
}

func (l *countingListener) active() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

// SyscallConn hands out the socket, for the server's raw socket I/O.
func (c *countedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.n--
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// moduleFlags collects repeated --module FILE[@BASE].
type moduleFlags []string

func (m *moduleFlags) String() string { return strings.Join(*m, ",") }

func (m *moduleFlags) Set(v string) error {
	*m = append(*m, v)
	return nil
}
