package corpus

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rspstub/rspstub/internal/testkit"
)

// Result is how a run of a program ended: its standard output exactly as
// written (no CRLF translation: Windows programs write CRLF and so does
// the expected output), its exit code, and its standard error (for
// logs; never compared).
type Result struct {
	Stdout   []byte
	ExitCode int
	Stderr   []byte
}

// Oracle runs programs under the `wine` command in a prefix of its own.
type Oracle struct {
	wine   string
	prefix string
	env    []string
}

// RunTimeout bounds one program's run under Wine.
const RunTimeout = 2 * time.Minute

// StartWine creates a Wine prefix in a temporary folder (about 690 MB and
// 5-12 s) with a persistent wineserver, for t and its subtests; both go
// when t ends. Call it once in a parent test and Run from parallel
// subtests. Skips (fails under RSPSTUB_REQUIRE_TOOLS=1) without wine.
func StartWine(t testing.TB) *Oracle {
	t.Helper()
	w := &Oracle{wine: testkit.Tool(t, "wine")}
	server := testkit.Tool(t, "wineserver")
	needWineDir(t)
	removeStalePrefixes()
	prefix, err := os.MkdirTemp("", prefixPattern)
	if err != nil {
		t.Fatal(err)
	}
	w.prefix = prefix
	w.env = wineEnv(prefix)
	t.Cleanup(func() {
		// -k kills the server, which still writes the registry files on
		// its way out: wait for it (-w) before removing the prefix, and
		// retry the removal a little, or 690 MB stay behind.
		for _, arg := range []string{"-k", "-w"} {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			cmd := exec.CommandContext(ctx, server, arg)
			cmd.Env = w.env
			cmd.Run() // fails harmlessly when no server runs
			cancel()
		}
		var err error
		for i := 0; i < 50; i++ {
			if err = os.RemoveAll(prefix); err == nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Errorf("remove the Wine prefix %s: %v", prefix, err)
	})
	// A persistent server keeps each run at about 0.2 s instead of 1.4 s
	// (Debian's wrapper starts it with -p0: gone with the last client).
	start := exec.Command(server, "-p")
	start.Env = w.env
	if _, err := runDetached(t, start); err != nil {
		t.Fatalf("start wineserver: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	boot := exec.CommandContext(ctx, w.wine, "wineboot", "--init")
	boot.Env = w.env
	if out, err := runDetached(t, boot); err != nil {
		t.Fatalf("create the Wine prefix: %v\n%s", err, out.Stderr)
	}
	return w
}

// runDetached runs cmd with its output going to files, not pipes: Wine
// leaves processes behind (the wineserver daemon; services.exe,
// explorer.exe and others that live as long as the server) which inherit
// the standard handles, and a pipe would stay open until they end. A
// nil error means exit code 0.
func runDetached(t testing.TB, cmd *exec.Cmd) (Result, error) {
	t.Helper()
	dir := t.TempDir()
	stdout, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		return Result{}, err
	}
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		return Result{}, err
	}
	defer stderr.Close()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err = cmd.Run()
	var r Result
	r.Stdout, _ = os.ReadFile(stdout.Name())
	r.Stderr, _ = os.ReadFile(stderr.Name())
	if cmd.ProcessState != nil {
		r.ExitCode = cmd.ProcessState.ExitCode()
	}
	return r, err
}

// prefixPattern names the prefixes StartWine makes in the temporary
// folder.
const prefixPattern = "rspstub-wineprefix-"

// removeStalePrefixes removes prefixes left by test processes that were
// killed before their cleanup ran (a timeout, ^C). Only old ones: a
// prefix a test is using now is younger than any test run.
func removeStalePrefixes() {
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), prefixPattern+"*"))
	for _, d := range old {
		if st, err := os.Stat(d); err == nil && time.Since(st.ModTime()) > 3*time.Hour {
			os.RemoveAll(d)
		}
	}
}

// wineEnv is the host environment without what would change how Wine
// runs (a display, debug channels, another prefix), plus the prefix.
// mscoree and mshtml are disabled so no Mono or Gecko installer starts;
// winedbg is disabled because on an unhandled exception it would print
// its crash report to the program's standard output (and take seconds):
// without it Wine prints one line to stderr and the process exits.
func wineEnv(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "DISPLAY", "WAYLAND_DISPLAY", "WINEDEBUG", "WINEPREFIX", "WINEDLLOVERRIDES",
			"WINEARCH", "WINESERVER", "WINELOADER", "WINEDLLPATH":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "WINEPREFIX="+prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=;winedbg.exe=d")
}

// Run builds p and runs it under wine in a fresh working folder, with
// p.Args and p.Stdin.
func (w *Oracle) Run(t testing.TB, p Program) Result {
	t.Helper()
	exe, dir := p.Build(t)
	ctx, cancel := context.WithTimeout(context.Background(), RunTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.wine, append([]string{exe}, p.Args...)...)
	cmd.Dir = dir
	cmd.Env = w.env
	in, err := os.Create(filepath.Join(t.TempDir(), "stdin"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, err := in.Write(p.Input(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = in
	cmd.WaitDelay = 5 * time.Second
	r, err := runDetached(t, cmd)
	if ctx.Err() != nil {
		t.Fatalf("%s under wine timed out after %v; stdout so far:\n%s", p.Name, RunTimeout, r.Stdout)
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run %s under wine: %v", p.Name, err)
	}
	return r
}
