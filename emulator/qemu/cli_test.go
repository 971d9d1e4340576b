package qemu

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
)

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
	c := testkit.StartQEMUStub(t, "qemu-x86_64", prog)
	cl, err := rsp.Dial(c.Addr, rsp.WithTimeout(10*time.Second))
	require.NoError(t, err)
	rep, err := cl.Request("qProcessInfo")
	if assert.NoError(t, err, "qProcessInfo") {
		assert.Contains(t, rep, "ostype:linux", "qProcessInfo")
	}
	st, err := cl.Continue()
	if assert.NoError(t, err, "continue") {
		assert.Equal(t, rsp.StopExited, st.Kind, "stop %+v", st)
		assert.Equal(t, 7, st.ExitCode, "stop %+v", st)
	}
	cl.Close()
	assert.Zero(t, c.ExitCode(t, 10*time.Second), "exit code")
	assert.Contains(t, c.Stdout(), "counter=6", "program output")
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
		{"system-SIGTERM", syscall.SIGTERM, testkit.QEMUSystemArgs(kernel, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testkit.StartQEMUStub(t, tc.argv...)
			kids := children(c.Pid())
			require.Len(t, kids, 1, "rspstub's children: want one QEMU")
			c.Signal(tc.sig)
			assert.Zero(t, c.ExitCode(t, 10*time.Second), "exit code")
			if alive(kids[0]) {
				syscall.Kill(kids[0], syscall.SIGKILL)
				assert.Failf(t, "QEMU outlived rspstub", "pid %d", kids[0])
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
	argv := append(testkit.QEMUSystemArgs(kernel, 1), "-gdb", "tcp:127.0.0.1:"+strconv.Itoa(port), "-S")
	q := exec.Command(argv[0], argv[1:]...)
	require.NoError(t, q.Start())
	var once sync.Once
	stopQEMU := func() { once.Do(func() { q.Process.Kill(); q.Wait() }) }
	t.Cleanup(stopQEMU)
	gdbAddr := "tcp:127.0.0.1:" + strconv.Itoa(port)
	for i := 0; i < 100; i++ { // until QEMU listens
		if conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			conn.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	c := testkit.StartCommand(t, "qemu", "--connect", gdbAddr, "--listen", "127.0.0.1:0", "--unwinder", "cfi")
	cl, err := rsp.Dial(c.Addr, rsp.WithTimeout(10*time.Second))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, cl.Description().Lookup("efer"), 0, "no efer: not detected as system mode")
	out, err := cl.Monitor("status")
	if assert.NoError(t, err, "monitor status") {
		assert.Contains(t, out, "system mode at "+gdbAddr, "monitor status")
	}
	// --unwinder reaches the target; the monitor changes it.
	out, err = cl.Monitor("show unwinder")
	if assert.NoError(t, err, "monitor show unwinder") {
		assert.True(t, strings.HasPrefix(out, "unwinder: cfi "), "monitor show unwinder = %q", out)
	}
	out, err = cl.Monitor("set unwinder pdata")
	if assert.NoError(t, err, "monitor set unwinder pdata") {
		assert.Equal(t, "unwinder: pdata\n", out, "monitor set unwinder pdata")
	}
	out, err = cl.Monitor("set unwinder dwarf")
	assert.Error(t, err, "monitor set unwinder dwarf = %q, accepted", out)
	assert.NoError(t, cl.Detach(), "detach")
	c.Signal(syscall.SIGTERM)
	assert.Zero(t, c.ExitCode(t, 10*time.Second), "exit code")
	time.Sleep(100 * time.Millisecond)
	assert.True(t, alive(q.Process.Pid), "QEMU ended with the stub that attached to it")
	// QEMU took the detach: its gdbstub accepts a new debugger.
	tg, err := Connect(gdbAddr, Options{})
	require.NoError(t, err, "reconnect to QEMU")
	tg.Close()
}

// TestCLIErrors: clear messages for the bad situations.
func TestCLIErrors(t *testing.T) {
	needTool(t, "qemu-system-x86_64")
	bin := testkit.Stub(t)
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
		c := testkit.Launch(t, append([]string{"qemu"}, tc.args...)...)
		line := "rspstub qemu " + strings.Join(tc.args, " ")
		if !assert.Empty(t, c.Addr, "%s: listens", line) {
			c.Signal(os.Kill)
		}
		code := c.ExitCode(t, 30*time.Second)
		out := c.Stdout() + c.Stderr()
		assert.Equal(t, tc.code, code, "%s: exit code; output:\n%s", line, out)
		assert.Contains(t, out, tc.want, "%s: output", line)
	}
}

// TestCLIQEMUExits: when QEMU dies, a running debugger gets a
// terminated stop and rspstub ends after it leaves; without a debugger
// rspstub ends at once.
func TestCLIQEMUExits(t *testing.T) {
	needTool(t, "qemu-system-x86_64")
	kernel := buildGuest(t)
	for _, attached := range []bool{true, false} {
		c := testkit.StartQEMUStub(t, testkit.QEMUSystemArgs(kernel, 1)...)
		kids := children(c.Pid())
		require.Len(t, kids, 1, "rspstub's children: want one QEMU")
		var cl *rsp.Client
		stops := make(chan rsp.Stop, 1)
		if attached {
			var err error
			cl, err = rsp.Dial(c.Addr, rsp.WithTimeout(10*time.Second))
			require.NoError(t, err)
			go func() {
				st, err := cl.Continue()
				assert.NoError(t, err, "continue")
				stops <- st
			}()
			time.Sleep(200 * time.Millisecond)
		}
		syscall.Kill(kids[0], syscall.SIGKILL)
		if attached {
			select {
			case st := <-stops:
				assert.Equal(t, rsp.StopTerminated, st.Kind, "stop %+v, want terminated", st)
			case <-time.After(5 * time.Second):
				require.Fail(t, "no stop after QEMU died")
			}
			cl.Close()
		}
		assert.Zero(t, c.ExitCode(t, 10*time.Second), "attached=%v: exit code", attached)
		assert.Contains(t, c.Stderr(), "QEMU exited", "attached=%v: no word of QEMU's end", attached)
	}
}

// TestCLIModule: rspstub qemu --module FILE@BASE names the code of a
// guest that has no TEB yet (the Windows guest's first phase).
func TestCLIModule(t *testing.T) {
	g := buildWinGuest(t)
	needTool(t, "qemu-system-x86_64")
	c := testkit.StartCommand(t, append([]string{"qemu", "--listen", "127.0.0.1:0", "--module", g.exe + "@800000", "--"}, testkit.QEMUSystemArgs(g.kernel, 1)...)...)
	cl, err := rsp.Dial(c.Addr, rsp.WithTimeout(10*time.Second))
	require.NoError(t, err)
	defer cl.Close()
	d := peSymbol(t, g.exe, "d")
	require.NoError(t, cl.SetBreakpoint(rsp.BreakSoftware, d, 1))
	st, err := cl.Continue()
	require.NoError(t, err, "continue")
	require.Equal(t, rsp.StopSWBreak, st.Kind, "stop %+v", st)
	out, err := cl.Monitor("modules")
	if assert.NoError(t, err, "monitor modules") {
		assert.Contains(t, out, "chain.exe            "+g.exe, "monitor modules")
	}
	out, err = cl.Monitor("teb")
	assert.Error(t, err, "monitor teb = %q", out)
	assert.Contains(t, out, "gs_base 0x0: is 0", "monitor teb")
}
