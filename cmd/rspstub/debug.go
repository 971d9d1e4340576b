package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/rspstub/rspstub/debuggee"
	"github.com/rspstub/rspstub/emulator/ucwin"
	"github.com/rspstub/rspstub/monitor"
	"github.com/rspstub/rspstub/rsp"
)

// rspstub debug: one command for a session, the way `rr replay` starts
// gdb. The stub serves the program on a unix socket in a private folder
// (0700), and the debugger starts in the terminal with the unwinder
// script loaded and the connection made (target extended-remote, so
// `run` starts the program again).
//
// GDB's first screen has no warnings: the library list names Windows
// paths, which GDB treats as absolute only on a DOS-based target file
// system (the script sets it), and the module images are written under a
// private sysroot as the library list names them (C:/dir/x.dll), before
// GDB asks for the list. GDB reads them from there, so it neither warns
// that remote file transfers are slow nor fails to find a DLL that
// loads later.

const debugUsage = `Usage: rspstub debug [flags] PROGRAM.exe [ARGS...]

Starts the stub on a private unix socket and a debugger attached to it:
Debian's gdb with rspstub's unwinder script (the default), --mingw-gdb for
x86_64-w64-mingw32-gdb (GDB with the Windows ABI), or --lldb. Quit the
debugger to end the session.

Flags:
`

func debugCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("debug", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		useLLDB   = fs.Bool("lldb", false, "start lldb instead of gdb")
		useMinGW  = fs.Bool("mingw-gdb", false, "start x86_64-w64-mingw32-gdb (GDB with the Windows ABI) instead of gdb")
		debugger  = fs.String("debugger", "", "the debugger's path (default: gdb, x86_64-w64-mingw32-gdb or lldb from PATH)")
		stopAt    = fs.String("stop-at", "start", "first stop: start (the thread's first instruction) or entry (the image entry point)")
		verbose   = fs.Bool("v", false, "verbose stub logging (to stderr, between the debugger's lines)")
		dllPaths  multiFlag
		gf        = addGuestFlags(fs)
		debugArgs multiFlag
	)
	fs.Var(&dllPaths, "dll-path", "a folder to search for the program's DLLs (repeatable; synth userland)")
	fs.Var(&debugArgs, "debugger-arg", "an argument for the debugger, after rspstub's own (repeatable: -debugger-arg=-batch)")
	fs.Usage = func() {
		fmt.Fprint(stderr, debugUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() < 1 {
		fmt.Fprintln(stderr, "rspstub debug: no program given")
		fs.Usage()
		return exitUsage
	}
	if *useLLDB && *useMinGW {
		fmt.Fprintln(stderr, "rspstub debug: --lldb and --mingw-gdb exclude each other")
		return exitUsage
	}
	if *stopAt != "start" && *stopAt != "entry" {
		fmt.Fprintf(stderr, "rspstub debug: --stop-at must be start or entry, not %q\n", *stopAt)
		return exitUsage
	}
	land, err := gf.check()
	if err != nil {
		fmt.Fprintf(stderr, "rspstub debug: %s\n", oneLine(err))
		return exitUsage
	}
	prog, err := filepath.Abs(fs.Arg(0))
	if err == nil {
		_, err = os.Stat(prog)
	}
	if err != nil {
		fmt.Fprintf(stderr, "rspstub: %v\n", err)
		return exitUsage
	}
	kind := "gdb"
	switch {
	case *useLLDB:
		kind = "lldb"
	case *useMinGW:
		kind = "x86_64-w64-mingw32-gdb"
	}
	dbgPath := *debugger
	if dbgPath == "" {
		if dbgPath, err = exec.LookPath(kind); err != nil {
			fmt.Fprintf(stderr, "rspstub debug: %s is not installed: %v\n", kind, err)
			return exitUsage
		}
	}

	// The stub's log would interleave with the debugger's screen: only
	// warnings, unless -v.
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	dir, err := os.MkdirTemp("", "rspstub-debug-")
	if err != nil {
		fmt.Fprintf(stderr, "rspstub: %v\n", err)
		return exitError
	}
	defer os.RemoveAll(dir)
	cfg := ucwin.Config{
		Program:     prog,
		Args:        fs.Args()[1:],
		DLLPaths:    dllPaths,
		StopAtEntry: *stopAt == "entry",
		// The guest's output reaches the debugger's console (`O`
		// packets): the terminal is the debugger's.
		Stdout: io.Discard,
		Stderr: io.Discard,
		Logger: log,
	}
	gf.apply(&cfg, land)
	// No userland line (log nil): debug's log shares the debugger's
	// screen.
	target, stop, ok := gf.startUnicorn("debug", "rspstub", cfg, nil, stderr)
	if !ok {
		return exitUsage
	}
	defer stop()

	sock := filepath.Join(dir, "stub.sock")
	l, err := rsp.Listen("unix:"+sock, log)
	if err != nil {
		fmt.Fprintf(stderr, "rspstub: %s\n", oneLine(err))
		return exitError
	}
	st := &sysrootTarget{Target: debuggee.New(target), root: filepath.Join(dir, "sysroot"), log: log}
	srv := rsp.NewServer(st, rsp.WithLogger(log))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	defer srv.Close()

	argv, env, err := debuggerArgs(kind, dir, prog, sock, st.root)
	if err != nil {
		fmt.Fprintf(stderr, "rspstub: %v\n", err)
		return exitError
	}
	cmd := exec.Command(dbgPath, append(argv, debugArgs...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	cmd.Env = append(os.Environ(), env...)
	// Ctrl-C reaches the whole foreground group: the debugger turns it
	// into an interrupt packet; the stub must not die of it.
	signal.Ignore(os.Interrupt)
	defer signal.Reset(os.Interrupt)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "rspstub: start %s: %v\n", kind, err)
		return exitError
	}
	go func() {
		if _, ok := <-sigs; ok {
			cmd.Process.Signal(syscall.SIGTERM)
		}
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		fmt.Fprintf(stderr, "rspstub: %s: %v\n", kind, err)
		return exitError
	}
	return exitOK
}

// debuggerArgs writes the script into dir and returns the debugger's
// arguments and extra environment.
func debuggerArgs(kind, dir, prog, sock, sysroot string) ([]string, []string, error) {
	if kind == "lldb" {
		script := filepath.Join(dir, "rspstub_lldb.py")
		if err := os.WriteFile(script, []byte(monitor.LLDBScript), 0o600); err != nil {
			return nil, nil, err
		}
		return []string{"--no-lldbinit", prog,
			"-o", "command script import " + script,
			"-o", "process connect --plugin gdb-remote unix-connect://" + sock}, lldbPythonPath(), nil
	}
	script := filepath.Join(dir, "rspstub-gdb.py")
	if err := os.WriteFile(script, []byte(monitor.GDBScript), 0o600); err != nil {
		return nil, nil, err
	}
	return []string{"-q", prog,
		"-ex", "set sysroot " + sysroot,
		"-ex", "source " + script,
		"-ex", "target extended-remote " + sock}, nil, nil
}

// lldbPythonPath points Debian's lldb at its Python package (without it
// lldb prints "No module named 'lldb.embedded_interpreter'" first).
func lldbPythonPath() []string {
	out, err := exec.Command("dpkg", "-L", "python3-lldb-14").Output()
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasSuffix(line, "/lldb/__init__.py") {
			return []string{"PYTHONPATH=" + filepath.Dir(filepath.Dir(line))}
		}
	}
	return nil
}

// sysrootTarget is the target with its module images written under a
// private sysroot, as the library list names them ("C:\dir\x.dll" ->
// ROOT/C:/dir/x.dll), before each answer to the library list: GDB finds
// every DLL locally, those loaded later included.
type sysrootTarget struct {
	*debuggee.Target
	root    string
	log     *slog.Logger
	mu      sync.Mutex
	written map[string]bool
}

// Libraries implements rsp.LibraryLister.
func (t *sysrootTarget) Libraries(dst []rsp.Library) []rsp.Library {
	dst = t.Target.Libraries(dst)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.written == nil {
		t.written = map[string]bool{}
	}
	for _, l := range dst {
		if t.written[l.Name] {
			continue
		}
		t.written[l.Name] = true
		if err := t.write(l.Name); err != nil {
			t.log.Warn("sysroot: cannot write a module image; the debugger reads it from the stub", "module", l.Name, "err", err)
		}
	}
	return dst
}

// sysrootPath maps a Windows path onto the sysroot the way GDB looks it
// up on a DOS-based target file system ("C:\dir\x.dll" -> ROOT/C:/dir/x.dll).
func sysrootPath(root, name string) (string, error) {
	// Cleaned as an absolute path, it cannot climb out of root.
	clean := filepath.Clean("/" + strings.ReplaceAll(name, `\`, "/"))
	if clean == "/" {
		return "", fmt.Errorf("%q: not a module path", name)
	}
	return filepath.Join(root, clean), nil
}

func (t *sysrootTarget) write(name string) error {
	path, err := sysrootPath(t.root, name)
	if err != nil {
		return err
	}
	f, err := t.Target.OpenFile(name)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, f.Size())
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}
