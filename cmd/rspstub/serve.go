package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/rspstub/rspstub/debuggee"
	"github.com/rspstub/rspstub/emulator/ucwin"
	"github.com/rspstub/rspstub/rsp"
	"github.com/rspstub/rspstub/unwind"
)

func serveCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen      = fs.String("listen", "127.0.0.1:1234", "address to listen on: HOST:PORT, or unix:PATH (a port of 0 picks a free one)")
		stopAt      = fs.String("stop-at", "start", "first stop: start (the thread's first instruction) or entry (the image entry point)")
		shadow      = fs.Bool("shadow-stack", false, "keep a shadow call stack in the emulator (ground truth for unwinding)")
		logPackets  = fs.Bool("log-packets", false, "log every RSP packet (at debug level; implies -v)")
		verbose     = fs.Bool("v", false, "verbose logging")
		returnsZero = fs.Bool("unimplemented-returns-zero", false, "let calls to unimplemented APIs return 0 instead of stopping the guest (synth userland)")
		unwinder    = unwinderFlag(fs)
		dllPaths    multiFlag
		gf          = addGuestFlags(fs)
	)
	fs.Var(&dllPaths, "dll-path", "a folder to search for the program's DLLs (repeatable)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: rspstub serve [flags] PROGRAM.exe [ARGS...]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() < 1 {
		fmt.Fprintln(stderr, "rspstub serve: no program given")
		fs.Usage()
		return exitUsage
	}
	if *stopAt != "start" && *stopAt != "entry" {
		fmt.Fprintf(stderr, "rspstub serve: --stop-at must be start or entry, not %q\n", *stopAt)
		return exitUsage
	}
	land, err := gf.check()
	if err != nil {
		fmt.Fprintf(stderr, "rspstub serve: %s\n", oneLine(err))
		return exitUsage
	}
	log := newLogger(stderr, *verbose || *logPackets)
	prog := fs.Arg(0)
	if _, err := os.Stat(prog); err != nil {
		fmt.Fprintf(stderr, "rspstub: %v\n", err)
		return exitUsage
	}
	cfg := ucwin.Config{
		Program:                  prog,
		Args:                     fs.Args()[1:],
		DLLPaths:                 dllPaths,
		StopAtEntry:              *stopAt == "entry",
		ShadowStack:              *shadow,
		UnimplementedReturnsZero: *returnsZero,
		Stdout:                   stdout,
		Stderr:                   stderr,
		Logger:                   log,
	}
	gf.apply(&cfg, land)
	target, stop, ok := gf.startUnicorn("serve", "rspstub", cfg, log, stderr)
	if !ok {
		return exitUsage
	}
	defer stop()
	view := debuggee.New(target)
	view.SetCFIPreference(*unwinder)

	l, err := rsp.Listen(*listen, log)
	if err != nil {
		fmt.Fprintf(stderr, "rspstub: %s\n", oneLine(err))
		return exitUsage
	}
	addr := l.Addr().String()
	if l.Addr().Network() == "unix" {
		addr = "unix:" + addr
	}
	fmt.Fprintf(stderr, "rspstub: %s (%s userland): listening on %s; connect with: %s\n",
		filepath.Base(prog), land, addr, connectHint(prog, addr))

	srv := rsp.NewServer(view, rsp.WithLogger(log), rsp.WithPacketLog(*logPackets))
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		srv.Close()
	}()
	err = srv.Serve(l)
	switch {
	case errors.Is(err, rsp.ErrKilled):
		log.Info("the debugger killed the guest; exiting")
	case errors.Is(err, rsp.ErrExited):
		log.Info("the guest exited and its debugger left; exiting")
	case err != nil && !errors.Is(err, rsp.ErrServerClosed):
		fmt.Fprintf(stderr, "rspstub: %s\n", oneLine(err))
		return exitError
	}
	return exitOK
}

// unwinderFlag defines --unwinder: which unwind data "monitor bt" uses
// for PE code that has both .pdata and DWARF CFI.
func unwinderFlag(fs *flag.FlagSet) *unwind.CFIPreference {
	p := new(unwind.CFIPreference)
	fs.Func("unwinder", "auto, pdata or cfi: unwind data for PE code that has both .pdata and DWARF CFI (default auto; \"monitor set unwinder\" changes it)", func(s string) error {
		v, err := unwind.ParseCFIPreference(s)
		*p = v
		return err
	})
	return p
}

// connectHint is the gdb and lldb commands that reach addr.
func connectHint(prog, addr string) string {
	gdbAddr, lldbAddr := addr, addr
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		gdbAddr = p
		lldbAddr = "unix-connect://" + p
		return fmt.Sprintf("gdb %s -ex 'target remote %s'  |  lldb %s -o 'process connect --plugin gdb-remote %s'",
			prog, gdbAddr, prog, lldbAddr)
	}
	return fmt.Sprintf("gdb %s -ex 'target remote %s'  |  lldb %s -o 'gdb-remote %s'", prog, gdbAddr, prog, lldbAddr)
}

// oneLine flattens an error onto one line. Error text can carry bytes
// from the guest's files (a section or import name), so control
// characters are escaped: they never reach the terminal as commands.
func oneLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
