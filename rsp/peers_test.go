package rsp

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
)

// The Client against other stubs: gdbserver and QEMU's gdbstub (user
// mode), each serving /bin/true stopped at its entry.

func exerciseClient(t *testing.T, c *Client) {
	t.Helper()
	d := c.Description()
	for _, name := range []string{"rax", "rip", "rsp", "eflags", "fs_base", "xmm0", "st0", "mxcsr"} {
		assert.GreaterOrEqual(t, d.Lookup(name), 0, "description has no %s", name)
	}
	require.GreaterOrEqual(t, d.PC, 0, "pc")
	require.Equal(t, "rip", d.Registers[d.PC].Name, "pc")
	rip, err := c.ReadRegisterUint("rip")
	require.NoError(t, err, "rip")
	require.NotZero(t, rip, "rip")
	regs, err := c.ReadRegisters()
	require.NoError(t, err, "g")
	require.Len(t, regs, d.Size(), "g")
	var code [64]byte
	n, err := c.ReadMemory(rip, code[:])
	require.NoError(t, err, "read code at %#x", rip)
	require.Equal(t, len(code), n, "read code at %#x", rip)
	require.NoError(t, c.WriteRegisterUint("rax", 0x1234), "write rax")
	v, err := c.ReadRegisterUint("rax")
	require.NoError(t, err, "rax")
	require.Equal(t, uint64(0x1234), v, "rax")
	rsp, _ := c.ReadRegisterUint("rsp")
	var word [8]byte
	require.NoError(t, c.WriteMemory(rsp-64, []byte{1, 2, 3, 4, 5, 6, 7, 8}), "write stack")
	n, err = c.ReadMemory(rsp-64, word[:])
	require.NoError(t, err, "read back stack")
	require.Equal(t, 8, n, "read back stack")
	require.Equal(t, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, word, "read back stack")
	_, err = c.ReadMemory(0, word[:])
	assert.Error(t, err, "reading address 0 succeeded")
	st, err := c.Step()
	require.NoError(t, err, "step")
	require.Equal(t, SIGTRAP, st.Signal, "step: %+v", st)
	rip2, _ := c.ReadRegisterUint("rip")
	require.NotEqual(t, rip, rip2, "step did not move rip")
	st, err = c.StopReason()
	require.NoError(t, err, "?")
	require.Equal(t, SIGTRAP, st.Signal, "?: %+v", st)
	st, err = c.Continue()
	require.NoError(t, err, "continue to exit")
	require.Equal(t, StopExited, st.Kind, "continue to exit: %+v", st)
	require.Equal(t, 0, st.ExitCode, "continue to exit: %+v", st)
}

func TestClientAgainstGDBServer(t *testing.T) {
	addr := testkit.StartPeer(t, "gdbserver", "--once", testkit.PeerAddr, "/bin/true")
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
	require.NotNil(t, c, "connect to qemu-x86_64's gdbstub: %v", err)
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
	b, _, _ := startPipe(t, wholeReadTarget{tt})
	c, err := NewClient(b)
	require.NoError(t, err)
	defer c.Close()
	buf := make([]byte, 0x100)
	n, err := c.ReadMemory(testCodeBase+0x2000-0x13, buf)
	require.NoError(t, err, "prefix")
	assert.Equal(t, 0x13, n, "prefix")
}
