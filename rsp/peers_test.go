package rsp

import (
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"

	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// The Client against other stubs: gdbserver and QEMU's gdbstub (user
// mode), each serving /bin/true stopped at its entry.

func exerciseClient(t *testing.T, c *Client) {
	t.Helper()
	d := c.Description()
	for _, name := range []string{"rax", "rip", "rsp", "eflags", "fs_base", "xmm0", "st0", "mxcsr"} {
		if d.Lookup(name) < 0 {
			t.Errorf("description has no %s", name)
		}
	}
	if d.PC < 0 || d.Registers[d.PC].Name != "rip" {
		t.Fatalf("pc is %d", d.PC)
	}
	rip, err := c.ReadRegisterUint("rip")
	if err != nil || rip == 0 {
		t.Fatalf("rip: %#x %v", rip, err)
	}
	regs, err := c.ReadRegisters()
	if err != nil || len(regs) != d.Size() {
		t.Fatalf("g: %d bytes (want %d), %v", len(regs), d.Size(), err)
	}
	var code [64]byte
	if n, err := c.ReadMemory(rip, code[:]); err != nil || n != len(code) {
		t.Fatalf("read code at %#x: %d %v", rip, n, err)
	}
	require.NoError(t, c.WriteRegisterUint("rax", 0x1234), "write rax")
	if v, err := c.ReadRegisterUint("rax"); err != nil || v != 0x1234 {
		t.Fatalf("rax: %#x %v", v, err)
	}
	rsp, _ := c.ReadRegisterUint("rsp")
	var word [8]byte
	require.NoError(t, c.WriteMemory(rsp-64, []byte{1, 2, 3, 4, 5, 6, 7, 8}), "write stack")
	if n, err := c.ReadMemory(rsp-64, word[:]); err != nil || n != 8 || word[7] != 8 {
		t.Fatalf("read back stack: %d %v %v", n, err, word)
	}
	if _, err := c.ReadMemory(0, word[:]); err == nil {
		t.Errorf("reading address 0 succeeded")
	}
	st, err := c.Step()
	if err != nil || st.Signal != SIGTRAP {
		t.Fatalf("step: %+v %v", st, err)
	}
	if rip2, _ := c.ReadRegisterUint("rip"); rip2 == rip {
		t.Fatalf("step did not move rip from %#x", rip)
	}
	if st, err := c.StopReason(); err != nil || st.Signal != SIGTRAP {
		t.Fatalf("?: %+v %v", st, err)
	}
	st, err = c.Continue()
	if err != nil || st.Kind != StopExited || st.ExitCode != 0 {
		t.Fatalf("continue to exit: %+v %v", st, err)
	}
}

// startGDBServer runs gdbserver on /bin/true and returns its address.
func startGDBServer(t testing.TB) string {
	t.Helper()
	gs := testkit.RequireTool(t, "gdbserver")
	cmd := exec.Command(gs, "--once", "127.0.0.1:0", "/bin/true")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	port := ""
	sc := bufio.NewScanner(stderr)
	re := regexp.MustCompile(`Listening on port (\d+)`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			port = m[1]
			break
		}
	}
	if port == "" {
		t.Fatal("gdbserver did not say its port")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	return "127.0.0.1:" + port
}

func TestClientAgainstGDBServer(t *testing.T) {
	addr := startGDBServer(t)
	c, err := Dial(addr, WithClientLogger(quietLogger()), WithTimeout(10*time.Second))
	require.NoError(t, err)
	defer c.Close()
	exerciseClient(t, c)
}

func TestClientAgainstQEMU(t *testing.T) {
	qemu := needTool(t, "qemu-x86_64")
	sock := filepath.Join(t.TempDir(), "qemu.sock")
	cmd := exec.Command(qemu, "-g", sock, "/bin/true")
	require.NoError(t, cmd.Start())
	// qemu-user waiting for a debugger ignores SIGTERM: only SIGKILL.
	defer func() { cmd.Process.Signal(syscall.SIGKILL); cmd.Wait() }()
	// The socket file appears at bind(), before QEMU listens: retry
	// refused connections for a while.
	var c *Client
	var err error
	for i := 0; i < 500; i++ {
		if _, serr := os.Stat(sock); serr == nil {
			if c, err = Dial("unix:"+sock, WithClientLogger(quietLogger()), WithTimeout(10*time.Second)); err == nil {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c == nil {
		t.Fatalf("could not connect to qemu-x86_64's gdbstub: %v", err)
	}
	defer c.Close()
	if c.Features()["QStartNoAckMode"] == "+" {
		t.Logf("this QEMU offers no-ack mode")
	}
	exerciseClient(t, c)
}

// wholeReadTarget rejects any read that is not entirely readable, as
// QEMU does.
type wholeReadTarget struct{ *testTarget }

func (w wholeReadTarget) ReadMemory(addr uint64, p []byte) (int, error) {
	n, err := w.testTarget.ReadMemory(addr, p)
	if n < len(p) {
		return 0, errUnmapped
	}
	return n, err
}

func TestClientFindsReadablePrefix(t *testing.T) {
	tt := newTestTarget()
	srv := NewServer(wholeReadTarget{tt}, WithLogger(quietLogger()))
	a, b := tcpPair(t)
	go srv.ServeConn(a)
	c, err := NewClient(b)
	require.NoError(t, err)
	defer c.Close()
	buf := make([]byte, 0x100)
	n, err := c.ReadMemory(testCodeBase+0x2000-0x13, buf)
	if err != nil || n != 0x13 {
		t.Fatalf("prefix: %#x %v", n, err)
	}
}
