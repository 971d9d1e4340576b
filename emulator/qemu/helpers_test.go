package qemu

import (
	"github.com/rspstub/rspstub/internal/testkit"

	"bytes"
	"debug/elf"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rspstub/rspstub/rsp"
)

// needTool skips (or, with RSPSTUB_REQUIRE_TOOLS=1, fails) when a tool
// is missing: testkit's tool policy.
func needTool(t testing.TB, names ...string) {
	t.Helper()
	testkit.RequireAllTools(t, names...)
}

func run(t testing.TB, dir string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// buildHello builds testdata/hello.c as a static Linux program, once per
// test binary run.
func buildHello(t testing.TB) string {
	t.Helper()
	needTool(t, "gcc")
	buildMu.Lock()
	defer buildMu.Unlock()
	if p := built["hello"]; p != "" {
		return p
	}
	src, _ := filepath.Abs("testdata/hello.c")
	out := filepath.Join(sharedTemp(t), "hello")
	run(t, ".", "gcc", "-static", "-O0", "-g", "-fno-pie", "-no-pie", "-o", out, src)
	built["hello"] = out
	return out
}

// buildGuest builds the multiboot long-mode guest of testdata/guest.S.
func buildGuest(t testing.TB) string {
	t.Helper()
	needTool(t, "gcc", "ld", "objcopy")
	buildMu.Lock()
	defer buildMu.Unlock()
	if p := built["guest"]; p != "" {
		return p
	}
	dir := sharedTemp(t)
	src, _ := filepath.Abs("testdata/guest.S")
	lds, _ := filepath.Abs("testdata/guest.ld")
	run(t, dir, "gcc", "-c", "-o", "guest.o", src)
	run(t, dir, "ld", "-m", "elf_x86_64", "-T", lds, "-o", "guest64.elf", "guest.o")
	run(t, dir, "objcopy", "-O", "elf32-i386", "guest64.elf", "guest.elf")
	built["guest"] = filepath.Join(dir, "guest.elf")
	built["guest64"] = filepath.Join(dir, "guest64.elf")
	return built["guest"]
}

var (
	tempOnce sync.Once
	tempDir  string
)

// sharedTemp is a folder for the fixtures, removed by TestMain.
func sharedTemp(t testing.TB) string {
	tempOnce.Do(func() {
		d, err := os.MkdirTemp("", "rspstub-qemu-test-")
		if err != nil {
			t.Fatal(err)
		}
		tempDir = d
	})
	return tempDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if tempDir != "" {
		os.RemoveAll(tempDir)
	}
	os.Exit(code)
}

// symbol finds a symbol's address in an ELF file.
func symbol(t testing.TB, path, name string) uint64 {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		if s.Name == name {
			return s.Value
		}
	}
	t.Fatalf("%s: no symbol %s", path, name)
	return 0
}

// stub is QEMU with rspstub in front of it, serving on a loopback port.
type stub struct {
	proc    *Process
	target  *Target
	srv     *rsp.Server
	addr    string // HOST:PORT of our server
	served  chan error
	qemuErr *bytes.Buffer
}

// startStub launches argv under QEMU and serves it in-process. Cleanup
// kills QEMU.
func startStub(t testing.TB, argv ...string) *stub {
	t.Helper()
	return startStubWith(t, Options{}, argv...)
}

// startStubWith is startStub with target options (Modules...).
func startStubWith(t testing.TB, opt Options, argv ...string) *stub {
	t.Helper()
	needTool(t, argv[0])
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var qerr bytes.Buffer
	p, err := Launch(argv, LaunchOptions{Stderr: &lockedWriter{w: &qerr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(0) })
	opt.Logger, opt.Mode, opt.Retry = log, p.Mode, 5*time.Second
	tg, err := Connect(p.Addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &stub{proc: p, target: tg, addr: l.Addr().String(), served: make(chan error, 1), qemuErr: &qerr}
	s.srv = rsp.NewServer(tg, rsp.WithLogger(log))
	go func() { s.served <- s.srv.Serve(l) }()
	t.Cleanup(func() {
		s.srv.Close()
		tg.Close()
	})
	return s
}

// dial connects our Go client to the stub.
func (s *stub) dial(t testing.TB) *rsp.Client {
	t.Helper()
	c, err := rsp.Dial(s.addr, rsp.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// regs reads registers by name.
func regs(t testing.TB, c *rsp.Client, names ...string) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	for _, n := range names {
		v, err := c.ReadRegisterUint(n)
		if err != nil {
			t.Fatalf("read %s: %v", n, err)
		}
		m[n] = v
	}
	return m
}

// waitServed waits for the server to end.
func (s *stub) waitServed(t testing.TB, want error) {
	t.Helper()
	select {
	case err := <-s.served:
		if !errors.Is(err, want) {
			t.Errorf("Serve = %v, want %v", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("the server did not end")
	}
}
