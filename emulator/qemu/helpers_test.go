package qemu

import (
	"bytes"
	"debug/elf"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/debuggee"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
	"github.com/rspstub/rspstub/rsp/rsptest"
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
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s\n%s", name, strings.Join(args, " "), out)
}

// buildHello builds testdata/hello.c as a static Linux program (the
// kit caches it per test process).
func buildHello(t testing.TB) string {
	t.Helper()
	return testkit.BuildELF(t, "emulator/qemu/testdata/hello.c", "-static", "-O0", "-g", "-fno-pie", "-no-pie")
}

// buildGuest builds the multiboot long-mode guest of testdata/guest.S and
// returns the bootable file; guestSymbols is its ELF64 twin.
func buildGuest(t testing.TB) string {
	t.Helper()
	boot, _ := testkit.BuildQEMUKernel(t)
	return boot
}

// guestSymbols is the ELF64 file of testdata/guest.S, with its symbols.
func guestSymbols(t testing.TB) string {
	t.Helper()
	_, syms := testkit.BuildQEMUKernel(t)
	return syms
}

func TestMain(m *testing.M) {
	code := m.Run()
	testkit.Cleanup()
	os.Exit(code)
}

// symbol finds a symbol's address in an ELF file.
func symbol(t testing.TB, path, name string) uint64 {
	t.Helper()
	f, err := elf.Open(path)
	require.NoError(t, err)
	defer f.Close()
	syms, err := f.Symbols()
	require.NoError(t, err)
	for _, s := range syms {
		if s.Name == name {
			return s.Value
		}
	}
	require.FailNow(t, "no symbol", "%s: %s", path, name)
	return 0
}

// stub is QEMU with rspstub's server in front of it, in this process,
// serving on a loopback port (the kit's rsptest.Start).
type stub struct {
	proc   *Process
	target *Target
	*rsptest.Served
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
	require.NoError(t, err)
	t.Cleanup(func() { p.Stop(0) })
	opt.Logger, opt.Mode, opt.Retry = log, p.Mode, 5*time.Second
	tg, err := Connect(p.Addr, opt)
	require.NoError(t, err)
	t.Cleanup(func() { tg.Close() }) // after the server's cleanup
	return &stub{proc: p, target: tg, qemuErr: &qerr,
		Served: rsptest.Start(t, debuggee.New(tg), rsp.WithLogger(log))}
}

// dial connects our Go client to the stub.
func (s *stub) dial(t testing.TB) *rsp.Client {
	t.Helper()
	c, err := rsp.Dial(s.Addr, rsp.WithTimeout(10*time.Second))
	require.NoError(t, err)
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
		require.NoError(t, err, "read %s", n)
		m[n] = v
	}
	return m
}

// waitServed waits for the server to end with want.
func (s *stub) waitServed(t testing.TB, want error) {
	t.Helper()
	assert.ErrorIs(t, s.Wait(t, 10*time.Second), want, "Serve")
}
