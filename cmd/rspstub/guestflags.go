package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/rspstub/rspstub/emulator/ucwin"
	"github.com/rspstub/rspstub/guest/wine"
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
	registry      *string
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
		clock:         fs.String("clock", "virtual", "guest time: virtual (the same on every run) or real (the host's wall clock) (wine userland)"),
		registry:      fs.String("registry", "", "a .reg file merged into the guest's registry at start (wine userland)"),
		record:        fs.Bool("record", false, "record the execution for time travel: monitor when/snapshot/reverse-stepi/reverse-continue and GDB's reverse commands (bs, bc); guest clocks become virtual, driven by the instruction count"),
	}
	fs.Var(&g.env, "env", "set a guest environment variable, NAME=VALUE (repeatable)")
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
		}{{"root", *g.root}, {"cwd", *g.cwd}, {"registry", *g.registry}} {
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
	cfg.Registry = *g.registry
	cfg.Record = *g.record
	cfg.Stdin = os.Stdin
	cfg.StdioKinds = [3]string{stdioKind(os.Stdin), stdioKind(os.Stdout), stdioKind(os.Stderr)}
}

// stdioKind says what a standard stream of the stub is, for the guest's
// handles to look the same ("pipe", "file", "char", "nul").
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
