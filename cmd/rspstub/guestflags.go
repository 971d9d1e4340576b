package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/rspstub/rspstub/emulator/ucwin"
	"github.com/rspstub/rspstub/guest/minidump"
	"github.com/rspstub/rspstub/guest/wine"
	"golang.org/x/sys/unix"
)

// guestFlags are the options that shape the guest's world, shared by
// serve and run.
type guestFlags struct {
	userland      *string
	root          *string
	cwd           *string
	env           multiFlag
	envInherit    *bool
	wineDebug     *string
	traceSyscalls *bool
	unimplErr     *bool
	clock         *string
	registry      multiFlag
	traceAPI      *string
	coverage      *string
	exactFaults   *bool
	faultPaging   *bool
	record        *bool
}

func addGuestFlags(fs *flag.FlagSet) *guestFlags {
	g := &guestFlags{
		userland:      fs.String("userland", "auto", "the guest's system DLLs: wine (Wine 8's real PE DLLs over an NT system-call layer), synth (rspstub's small synthesized Win32 layer) or auto (wine when Wine 8's PE DLLs are installed)"),
		root:          fs.String("root", "", "host folder that is the guest's C: (wine userland; default: a new empty temporary folder, plus the program's own folder read-only at C:\\rspstub)"),
		cwd:           fs.String("cwd", "", `the guest's working directory, a Windows path (wine userland; default C:\)`),
		envInherit:    fs.Bool("env-inherit", false, "give the guest the host's environment too (by default it sees only a Windows-like default block and --env)"),
		wineDebug:     fs.String("wine-debug", "", "Wine debug channels to turn on, as WINEDEBUG takes them (\"+file,+heap,warn+reg\"); their output is logged"),
		traceSyscalls: fs.Bool("trace-syscalls", false, "log one line per NT system call: thread, name, decoded arguments, status, caller (wine userland)"),
		unimplErr:     fs.Bool("unimplemented-returns-error", false, "let system calls rspstub does not implement fail with STATUS_NOT_IMPLEMENTED instead of stopping the guest (wine userland)"),
		exactFaults:   fs.Bool("exact-faults", false, "also place guest memory faults with sync points, at a price on code that needs them: faults are exact by default through page tables (--fault-paging), and this covers a run whose memory map outgrows them or --fault-paging=false (the fault decoder would then flag a position it cannot prove)"),
		faultPaging:   fs.Bool("fault-paging", true, "stop every guest memory fault at its exact instruction through page tables that mirror the memory map, at no measured cost; --fault-paging=false leaves faults to the decoder, which flags a position it cannot prove"),
		clock:         fs.String("clock", "virtual", "guest time: virtual (the same on every run) or real (the host's wall clock) (wine userland)"),
		traceAPI:      fs.String("trace-api", "", "write the API calls the program's modules make to this file, one JSON object a line: thread, caller module!symbol, API, decoded arguments, return value; in the wine userland the NT system calls too"),
		coverage:      fs.String("coverage", "", "write the basic blocks the program executes to this file in drcov format (Lighthouse, Cartographer, Binary Ninja), when the stub ends"),
		record:        fs.Bool("record", false, "record the execution for time travel: monitor when/snapshot/reverse-stepi/reverse-continue and GDB's reverse commands (bs, bc); guest clocks become virtual, driven by the instruction count"),
	}
	fs.Var(&g.env, "env", "set a guest environment variable, NAME=VALUE (repeatable)")
	fs.Var(&g.registry, "registry", "merge into the guest's registry at start a .reg file, a Wine registry file (system.reg, user.reg) or a Wine prefix folder (its three; e.g. ~/.wine for the COM registrations wineboot made) (repeatable; wine userland)")
	return g
}

// check validates the flags and resolves "auto".
func (g *guestFlags) check() (string, error) {
	if *g.clock != "virtual" && *g.clock != "real" {
		return "", fmt.Errorf("--clock must be virtual or real, not %q", *g.clock)
	}
	if *g.record && *g.clock == "real" {
		return "", fmt.Errorf("--record needs --clock virtual: a replay must see the same time")
	}
	for _, kv := range g.env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return "", fmt.Errorf("--env %q: want NAME=VALUE", kv)
		}
	}
	land, err := ucwin.ResolveUserland(*g.userland)
	if err != nil {
		return "", err
	}
	if land == ucwin.UserlandWine && !wine.Installed() {
		return "", fmt.Errorf("--userland wine: %v (install it with scripts/setup.sh)", wine.ErrNoWine)
	}
	if land == ucwin.UserlandSynth {
		for _, f := range []struct {
			name, val string
		}{{"root", *g.root}, {"cwd", *g.cwd}, {"registry", strings.Join(g.registry, "")}} {
			if f.val != "" {
				return "", fmt.Errorf("--%s needs the wine userland", f.name)
			}
		}
	}
	if *g.root != "" {
		st, err := os.Stat(*g.root)
		if err != nil || !st.IsDir() {
			return "", fmt.Errorf("--root %s is not a folder", *g.root)
		}
	}
	return land, nil
}

// openOutputs creates the --trace-api and --coverage files (regular
// files only: a device, folder or /proc path is refused) and puts them in
// cfg; done closes them after the target is closed.
func (g *guestFlags) openOutputs(cfg *ucwin.Config) (done func() error, err error) {
	var files []*os.File
	done = func() error {
		var first error
		for _, f := range files {
			if err := f.Close(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	for _, o := range []struct {
		flag, path string
		set        func(*os.File)
	}{
		{"--trace-api", *g.traceAPI, func(f *os.File) { cfg.TraceAPI = f }},
		{"--coverage", *g.coverage, func(f *os.File) { cfg.Coverage = f }},
	} {
		if o.path == "" {
			continue
		}
		if err := minidump.CheckPath(o.path); err != nil {
			done()
			return nil, fmt.Errorf("%s: %w", o.flag, err)
		}
		f, err := os.Create(o.path)
		if err != nil {
			done()
			return nil, fmt.Errorf("%s: %w", o.flag, err)
		}
		files = append(files, f)
		o.set(f)
	}
	return done, nil
}

// startUnicorn is how serve, run and debug start the Unicorn target on
// cfg (the guest flags already applied): it creates the --trace-api and
// --coverage files, loads the program and, when log is not nil, logs
// which userland runs. A failure is said on stderr (a file it cannot
// create as "rspstub CMD: ...", a program that does not load as
// "LOADPREFIX: PROG: ...") and returns ok false: the subcommand exits
// with its usage code. stop closes the target, saying on stderr if that
// fails, and then the files.
func (g *guestFlags) startUnicorn(cmd, loadPrefix string, cfg ucwin.Config, log *slog.Logger, stderr io.Writer) (target *ucwin.Target, stop func(), ok bool) {
	closeOutputs, err := g.openOutputs(&cfg)
	if err != nil {
		fmt.Fprintf(stderr, "rspstub %s: %s\n", cmd, oneLine(err))
		return nil, nil, false
	}
	target, err = ucwin.New(cfg)
	if err != nil {
		closeOutputs()
		fmt.Fprintf(stderr, "%s: %s: %s\n", loadPrefix, cfg.Program, oneLine(err))
		return nil, nil, false
	}
	stop = func() {
		if err := target.Close(); err != nil {
			fmt.Fprintf(stderr, "rspstub %s: %s\n", cmd, oneLine(err))
		}
		closeOutputs()
	}
	if log != nil {
		logUserland(log, target, *g.userland)
	}
	return target, stop, true
}

// environment is the guest's environment: a Windows-like default block,
// the host's with --env-inherit, then --env.
func (g *guestFlags) environment() []string {
	env := wine.DefaultEnv()
	if *g.envInherit {
		env = append(env, os.Environ()...)
	}
	return append(env, g.env...)
}

// apply fills the guest part of a ucwin configuration.
func (g *guestFlags) apply(cfg *ucwin.Config, land string) {
	cfg.Userland = land
	cfg.Env = g.environment()
	cfg.Root = *g.root
	cfg.Cwd = *g.cwd
	cfg.WineDebug = *g.wineDebug
	cfg.TraceSyscalls = *g.traceSyscalls
	cfg.UnimplementedReturnsError = *g.unimplErr
	cfg.RealClock = *g.clock == "real"
	cfg.Registry = g.registry
	cfg.ExactFaults = *g.exactFaults
	cfg.DecodeFaults = !*g.faultPaging
	cfg.Record = *g.record
	cfg.Stdin = os.Stdin
	cfg.StdioKinds = [3]string{stdioKind(os.Stdin), stdioKind(os.Stdout), stdioKind(os.Stderr)}
	for _, f := range []*os.File{os.Stdout, os.Stderr, os.Stdin} {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 && ws.Row > 0 {
			cfg.ConsoleSize = [2]int{int(ws.Col), int(ws.Row)}
			break
		}
	}
}

// stdioKind says what a standard stream of the stub is, for the guest's
// handles to look the same ("pipe", "file", "tty", "char", "nul"). A
// terminal gives the wine userland's guest a console.
func stdioKind(f *os.File) string {
	st, err := f.Stat()
	if err != nil {
		return "pipe"
	}
	switch m := st.Mode(); {
	case m.IsRegular():
		return "file"
	case m&os.ModeCharDevice != 0:
		if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(st, null) {
			return "nul"
		}
		if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			return "tty"
		}
		return "char"
	}
	return "pipe"
}

// logUserland says which userland runs (the first line of the log).
func logUserland(log *slog.Logger, t *ucwin.Target, requested string) {
	if w := t.Wine(); w != nil {
		log.Info("userland wine", "requested", requested, "wine", w.WineVersion(), "dlls", w.WineDLLDir(), "root", w.Root())
		return
	}
	log.Info("userland synth", "requested", requested)
}
