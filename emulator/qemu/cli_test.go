package qemu

import (
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"

	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rspstub/rspstub/rsp"
)

// buildCLI builds cmd/rspstub once per test run.
func buildCLI(t *testing.T) string {
	t.Helper()
	return testkit.Stub(t)
}

// cli is a running `rspstub qemu`.
type cli struct {
	cmd    *exec.Cmd
	addr   string // where it listens
	stdout *lockedWriter
	stderr *lockedWriter
	done   chan struct{}
	err    error
}

var listeningRE = regexp.MustCompile(`listening on (\S+);`)

// startCLI runs rspstub qemu ARGS and waits for its "listening on" line.
func startCLI(t *testing.T, args ...string) *cli {
	t.Helper()
	bin := buildCLI(t)
	c := &cli{stdout: &lockedWriter{w: &bytes.Buffer{}}, stderr: &lockedWriter{w: &bytes.Buffer{}}, done: make(chan struct{})}
	c.cmd = exec.Command(bin, append([]string{"qemu"}, args...)...)
	c.cmd.Stdout = c.stdout
	pr, pw := io.Pipe()
	c.cmd.Stderr = io.MultiWriter(c.stderr, pw)
	require.NoError(t, c.cmd.Start())
	go func() {
		c.err = c.cmd.Wait()
		pw.Close()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.done
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case c.addr = <-found:
	case <-c.done:
		t.Fatalf("rspstub qemu exited (%v):\n%s", c.err, c.stderr.w.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("rspstub qemu did not start listening:\n%s", c.stderr.w.String())
	}
	return c
}

// wait waits for rspstub to exit and returns its exit code.
func (c *cli) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("rspstub did not exit:\n%s", c.stderr.w.String())
	}
	if ee, ok := c.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if c.err != nil {
		t.Fatal(c.err)
	}
	return 0
}

// children lists the child processes of pid.
func children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}

// TestCLIUser: `rspstub qemu -- qemu-x86_64 PROG` serves the program,
// passes its output through and exits when it has exited and the
// debugger left.
func TestCLIUser(t *testing.T) {
	needTool(t, "qemu-x86_64")
	prog := buildHello(t)
	c := startCLI(t, "--listen", "127.0.0.1:0", "--", "qemu-x86_64", prog)
	cl, err := rsp.Dial(c.addr, rsp.WithTimeout(10*time.Second))
	require.NoError(t, err)
	if rep, err := cl.Request("qProcessInfo"); err != nil || !strings.Contains(rep, "ostype:linux") {
		t.Errorf("qProcessInfo = %q, %v", rep, err)
	}
	st, err := cl.Continue()
	if err != nil || st.Kind != rsp.StopExited || st.ExitCode != 7 {
		t.Errorf("stop %+v %v, want exit 7", st, err)
	}
	cl.Close()
	if code := c.wait(t); code != 0 {
		t.Errorf("exit code %d:\n%s", code, c.stderr.w.String())
	}
	if out := c.stdout.w.String(); !strings.Contains(out, "counter=6") {
		t.Errorf("program output %q", out)
	}
}

// TestCLISignal: SIGTERM (or Ctrl-C) ends rspstub and the QEMU it
// started, also a qemu-user waiting for its debugger (which ignores
// SIGTERM itself).
func TestCLISignal(t *testing.T) {
	needTool(t, "qemu-x86_64", "qemu-system-x86_64")
	prog := buildHello(t)
	kernel := buildGuest(t)
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		argv []string
	}{
		{"user-SIGTERM", syscall.SIGTERM, []string{"qemu-x86_64", prog}},
		{"user-SIGINT", syscall.SIGINT, []string{"qemu-x86_64", prog}},
		{"system-SIGTERM", syscall.SIGTERM, systemArgs(kernel, "1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCLI(t, append([]string{"--listen", "127.0.0.1:0", "--"}, tc.argv...)...)
			kids := children(c.cmd.Process.Pid)
			if len(kids) != 1 {
				t.Fatalf("rspstub has children %v, want one QEMU", kids)
			}
			c.cmd.Process.Signal(tc.sig)
			if code := c.wait(t); code != 0 {
				t.Errorf("exit code %d:\n%s", code, c.stderr.w.String())
			}
			if alive(kids[0]) {
				syscall.Kill(kids[0], syscall.SIGKILL)
				t.Errorf("QEMU (pid %d) outlived rspstub", kids[0])
			}
		})
	}
}

// TestCLIConnect: --connect attaches to a QEMU started by hand with a
// TCP gdbstub on 127.0.0.1, and leaves it running when it exits.
func TestCLIConnect(t *testing.T) {
	needTool(t, "qemu-system-x86_64")
	kernel := buildGuest(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	argv := append(systemArgs(kernel, "1"), "-gdb", "tcp:127.0.0.1:"+strconv.Itoa(port), "-S")
	q := exec.Command(argv[0], argv[1:]...)
	require.NoError(t, q.Start())
	var once sync.Once
	stopQEMU := func() { once.Do(func() { q.Process.Kill(); q.Wait() }) }
	t.Cleanup(stopQEMU)
	gdbAddr := "tcp:127.0.0.1:" + strconv.Itoa(port)
	var c *cli
	for i := 0; i < 100; i++ { // until QEMU listens
		if conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			conn.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	c = startCLI(t, "--connect", gdbAddr, "--listen", "127.0.0.1:0", "--unwinder", "cfi")
	cl, err := rsp.Dial(c.addr, rsp.WithTimeout(10*time.Second))
	require.NoError(t, err)
	if cl.Description().Lookup("efer") < 0 {
		t.Errorf("no efer: not detected as system mode")
	}
	out, err := cl.Monitor("status")
	if err != nil || !strings.Contains(out, "system mode at "+gdbAddr) {
		t.Errorf("monitor status = %q, %v", out, err)
	}
	// --unwinder reaches the target; the monitor changes it.
	if out, err := cl.Monitor("show unwinder"); err != nil || !strings.HasPrefix(out, "unwinder: cfi ") {
		t.Errorf("monitor show unwinder = %q, %v", out, err)
	}
	if out, err := cl.Monitor("set unwinder pdata"); err != nil || out != "unwinder: pdata\n" {
		t.Errorf("monitor set unwinder pdata = %q, %v", out, err)
	}
	if out, err := cl.Monitor("set unwinder dwarf"); err == nil {
		t.Errorf("monitor set unwinder dwarf = %q, accepted", out)
	}
	if err := cl.Detach(); err != nil {
		t.Error(err)
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.wait(t); code != 0 {
		t.Errorf("exit code %d:\n%s", code, c.stderr.w.String())
	}
	time.Sleep(100 * time.Millisecond)
	if !alive(q.Process.Pid) {
		t.Errorf("QEMU ended with the stub that attached to it")
	}
	// QEMU took the detach: its gdbstub accepts a new debugger.
	tg, err := Connect(gdbAddr, Options{})
	require.NoError(t, err, "reconnect to QEMU")
	tg.Close()
}

// TestCLIErrors: clear messages for the bad situations.
func TestCLIErrors(t *testing.T) {
	needTool(t, "qemu-system-x86_64")
	bin := buildCLI(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.Addr().String()
	l.Close()
	text := filepath.Join(t.TempDir(), "notes.txt")
	require.NoError(t, os.WriteFile(text, []byte("not an image\n"), 0o644))
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--connect", "tcp:" + closed, "--listen", "127.0.0.1:0"}, 1, "is QEMU running with -gdb"},
		{[]string{"--listen", "127.0.0.1:0", "--", "qemu-system-x86_64", "-s"}, 2, "remove -s"},
		{[]string{"--listen", "127.0.0.1:0", "--", "true"}, 2, "not a QEMU binary"},
		{[]string{"--listen", "127.0.0.1:0"}, 2, "give --connect ADDR"},
		{[]string{"--listen", "127.0.0.1:0", "--", "qemu-system-x86_64", "-no-such-option"}, 2, "exited before its gdbstub was ready"},
		{[]string{"--listen", "127.0.0.1:0", "--module", text, "--", "qemu-system-x86_64"}, 2, "want FILE@BASE"},
		{[]string{"--listen", "127.0.0.1:0", "--module", text + "@0x800000", "--", "qemu-system-x86_64"}, 2, "not a PE or ELF image"},
		// rspstub itself is an ELF64 x86-64 executable, linked elsewhere.
		{[]string{"--listen", "127.0.0.1:0", "--module", bin + "@0x800000", "--", "qemu-system-x86_64"}, 2, "runs where it was linked"},
		{[]string{"--listen", "127.0.0.1:0", "--module", "/no/such.dll@0x800000", "--", "qemu-system-x86_64"}, 2, "no such file"},
	}
	if _, err := exec.LookPath("qemu-system-i386"); err == nil {
		cases = append(cases, struct {
			args []string
			code int
			want string
		}{[]string{"--listen", "127.0.0.1:0", "--", "qemu-system-i386", "-display", "none", "-monitor", "none", "-serial", "none", "-m", "32"}, 1, "not x86-64"})
	}
	for _, tc := range cases {
		cmd := exec.Command(bin, append([]string{"qemu"}, tc.args...)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != tc.code || !strings.Contains(string(out), tc.want) {
			t.Errorf("rspstub qemu %s: exit %d, output:\n%s\nwant exit %d and %q", strings.Join(tc.args, " "), code, out, tc.code, tc.want)
		}
	}
}

// TestCLIQEMUExits: when QEMU dies, a running debugger gets a
// terminated stop and rspstub ends after it leaves; without a debugger
// rspstub ends at once.
func TestCLIQEMUExits(t *testing.T) {
	needTool(t, "qemu-system-x86_64")
	kernel := buildGuest(t)
	for _, attached := range []bool{true, false} {
		c := startCLI(t, append([]string{"--listen", "127.0.0.1:0", "--"}, systemArgs(kernel, "1")...)...)
		kids := children(c.cmd.Process.Pid)
		if len(kids) != 1 {
			t.Fatalf("rspstub has children %v, want one QEMU", kids)
		}
		var cl *rsp.Client
		stops := make(chan rsp.Stop, 1)
		if attached {
			var err error
			if cl, err = rsp.Dial(c.addr, rsp.WithTimeout(10*time.Second)); err != nil {
				t.Fatal(err)
			}
			go func() {
				st, err := cl.Continue()
				if err != nil {
					t.Error(err)
				}
				stops <- st
			}()
			time.Sleep(200 * time.Millisecond)
		}
		syscall.Kill(kids[0], syscall.SIGKILL)
		if attached {
			select {
			case st := <-stops:
				if st.Kind != rsp.StopTerminated {
					t.Errorf("stop %+v, want terminated", st)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no stop after QEMU died")
			}
			cl.Close()
		}
		if code := c.wait(t); code != 0 {
			t.Errorf("attached=%v: exit code %d:\n%s", attached, code, c.stderr.w.String())
		}
		if !strings.Contains(c.stderr.w.String(), "QEMU exited") {
			t.Errorf("attached=%v: no word of QEMU's end:\n%s", attached, c.stderr.w.String())
		}
	}
}

// TestCLIModule: rspstub qemu --module FILE@BASE names the code of a
// guest that has no TEB yet (the Windows guest's first phase).
func TestCLIModule(t *testing.T) {
	g := buildWinGuest(t)
	needTool(t, "qemu-system-x86_64")
	c := startCLI(t, append([]string{"--listen", "127.0.0.1:0", "--module", g.exe + "@800000", "--"}, systemArgs(g.kernel, "1")...)...)
	cl, err := rsp.Dial(c.addr, rsp.WithTimeout(10*time.Second))
	require.NoError(t, err)
	defer cl.Close()
	d := peSymbol(t, g.exe, "d")
	require.NoError(t, cl.SetBreakpoint(rsp.BreakSoftware, d, 1))
	if st, err := cl.Continue(); err != nil || st.Kind != rsp.StopSWBreak {
		t.Fatalf("stop %+v, %v", st, err)
	}
	out, err := cl.Monitor("modules")
	if err != nil || !strings.Contains(out, "chain.exe            "+g.exe) {
		t.Errorf("monitor modules = %q, %v", out, err)
	}
	if out, err := cl.Monitor("teb"); err == nil || !strings.Contains(out, "gs_base 0x0: is 0") {
		t.Errorf("monitor teb = %q, %v", out, err)
	}
}
