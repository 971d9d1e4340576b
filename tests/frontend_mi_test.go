package tests

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/monitor"
)

// miClient drives `gdb -i=mi`, the machine interface IDEs and Ghidra's
// GDB connector use: numbered commands, each answered by a result record
// with its number (123^done, 123^running, 123^error), and async records
// (*stopped, =library-loaded, ...) in between.
type miClient struct {
	t     *testing.T
	in    io.WriteCloser
	lines chan string
	token int
	log   []string
}

func startMI(t *testing.T, gdb string) *miClient {
	t.Helper()
	cmd := exec.Command(gdb, "-i=mi", "-nx", "-q")
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	c := &miClient{t: t, in: in, lines: make(chan string, 1024)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("MI transcript:\n%s", strings.Join(c.log, "\n"))
		}
	})
	return c
}

// wait returns the first line that match accepts.
func (c *miClient) wait(what string, match func(string) bool) string {
	c.t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("gdb exited while waiting for %s", what)
			}
			c.log = append(c.log, "<- "+l)
			if match(l) {
				return l
			}
		case <-deadline:
			c.t.Fatalf("no %s within a minute", what)
		}
	}
}

// cmd sends a command and returns its result record, which must have
// the class want (done, running, connected, exit).
func (c *miClient) cmd(want, command string) string {
	c.t.Helper()
	c.token++
	tok := fmt.Sprint(c.token)
	c.log = append(c.log, "-> "+tok+command)
	_, err := io.WriteString(c.in, tok+command+"\n")
	require.NoError(c.t, err)
	r := c.wait("result of "+command, func(l string) bool { return strings.HasPrefix(l, tok+"^") })
	require.True(c.t, strings.HasPrefix(r, tok+"^"+want), "%s: %s", command, r)
	return r
}

// stopped waits for the next *stopped record.
func (c *miClient) stopped() string {
	c.t.Helper()
	return c.wait("*stopped", func(l string) bool { return strings.HasPrefix(l, "*stopped") })
}

// TestGDBMI: a scripted IDE session over GDB/MI against the stub: connect,
// a breakpoint (inserted and hit, with its frame and argument in the
// stop record), the stack through RtlUserThreadStart (with the unwinder
// script, frame filters on), the frame's variables, next, continue to the
// next hit, and detach, on both userlands.
func TestGDBMI(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := testkit.BuildPE(t, confSrc, testkit.MinGW, "-O0", "-g")
	script := filepath.Join(t.TempDir(), "rspstub-gdb.py")
	require.NoError(t, os.WriteFile(script, []byte(monitor.GDBScript), 0o644))
	line := confLine(t, "LINE_LOOP")
	for _, userland := range []string{"synth", "wine"} {
		t.Run(userland, func(t *testing.T) {
			stub := testkit.Start(t, testkit.UnicornBackend(userland), exe)
			c := startMI(t, gdb)
			c.cmd("done", "-gdb-set confirm off")
			c.cmd("done", "-enable-frame-filters")
			c.cmd("done", "-file-exec-and-symbols "+exe)
			c.cmd("done", `-interpreter-exec console "source `+script+`"`)
			c.cmd("connected", "-target-select extended-remote "+stub.Addr)
			bp := c.cmd("done", "-break-insert count")
			assert.Regexp(t, `bkpt=\{number="1",type="breakpoint".*func="count".*line="`+fmt.Sprint(line)+`"`, bp)
			c.cmd("running", "-exec-continue")
			st := c.stopped()
			assert.Regexp(t, `reason="breakpoint-hit".*bkptno="1".*frame=\{.*func="count",args=\[\{name="i",value="0"\}\]`, st)

			stack := c.cmd("done", "-stack-list-frames")
			funcs := regexp.MustCompile(`func="([^"]+)"`).FindAllStringSubmatch(stack, -1)
			var names []string
			for _, f := range funcs {
				names = append(names, f[1])
			}
			t.Logf("stack: %s", strings.Join(names, " <- "))
			if assert.Len(t, names, 6) {
				assert.Equal(t, []string{"count", "main", "__tmainCRTStartup", "mainCRTStartup"}, names[:4])
				assert.Contains(t, names[4], "BaseThreadInitThunk")
				assert.Contains(t, names[5], "RtlUserThreadStart")
			}
			assert.NotContains(t, stack, `addr="0x0000000000000000"`)

			vars := c.cmd("done", "-stack-list-variables --all-values")
			assert.Contains(t, vars, `{name="i",arg="1",value="0"}`)
			c.cmd("running", "-exec-next")
			assert.Regexp(t, `reason="end-stepping-range".*line="`+fmt.Sprint(line+1)+`"`, c.stopped())
			c.cmd("running", "-exec-continue")
			assert.Regexp(t, `reason="breakpoint-hit".*args=\[\{name="i",value="1"\}\]`, c.stopped())
			c.cmd("done", "-target-detach")
			c.cmd("exit", "-gdb-exit")
		})
	}
}
