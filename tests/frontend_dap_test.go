package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
)

// dapClient speaks the Debug Adapter Protocol (what VS Code speaks to
// lldb-vscode) over the adapter's standard input and output: messages
// framed by a Content-Length header, requests answered by responses
// with the same request_seq, events in between.
type dapClient struct {
	t    *testing.T
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	seq  int
	msgs chan dapMessage
	mu   sync.Mutex
	log  []string // every message, for a failure's report
	// pending holds messages read while waiting for another.
	pending []dapMessage
}

type dapMessage struct {
	Seq        int             `json:"seq"`
	Type       string          `json:"type"`
	Command    string          `json:"command,omitempty"`
	Event      string          `json:"event,omitempty"`
	RequestSeq int             `json:"request_seq,omitempty"`
	Success    bool            `json:"success,omitempty"`
	Message    string          `json:"message,omitempty"`
	Body       json.RawMessage `json:"body,omitempty"`
}

func startDAP(t *testing.T, adapter string) *dapClient {
	t.Helper()
	cmd := exec.Command(adapter)
	cmd.Env = append(os.Environ(), testkit.LLDBEnv()...)
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = io.Discard
	require.NoError(t, cmd.Start())
	c := &dapClient{t: t, cmd: cmd, in: in, out: bufio.NewReader(out), msgs: make(chan dapMessage, 256)}
	go c.read()
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
			c.mu.Lock()
			t.Logf("DAP messages:\n%s", strings.Join(c.log, "\n"))
			c.mu.Unlock()
		}
	})
	return c
}

func (c *dapClient) read() {
	defer close(c.msgs)
	for {
		n := -1
		for {
			line, err := c.out.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSpace(line)
			if line == "" {
				break
			}
			if v, ok := strings.CutPrefix(line, "Content-Length:"); ok {
				n, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if n < 0 || n > 64<<20 {
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(c.out, body); err != nil {
			return
		}
		var m dapMessage
		if json.Unmarshal(body, &m) != nil {
			continue
		}
		c.mu.Lock()
		c.log = append(c.log, "<- "+string(body))
		c.mu.Unlock()
		c.msgs <- m
	}
}

// send writes a request and returns its seq.
func (c *dapClient) send(command string, args any) int {
	c.seq++
	b, err := json.Marshal(map[string]any{"seq": c.seq, "type": "request", "command": command, "arguments": args})
	require.NoError(c.t, err)
	c.mu.Lock()
	c.log = append(c.log, "-> "+string(b))
	c.mu.Unlock()
	_, err = fmt.Fprintf(c.in, "Content-Length: %d\r\n\r\n%s", len(b), b)
	require.NoError(c.t, err)
	return c.seq
}

// next returns the first message (events included) that want accepts.
// The others are kept for later waits: lldb-vscode may send the stopped
// event of a continue before the continue's response.
func (c *dapClient) next(what string, want func(dapMessage) bool) dapMessage {
	c.t.Helper()
	for i, m := range c.pending {
		if want(m) {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return m
		}
	}
	deadline := time.After(time.Minute)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				c.t.Fatalf("the adapter exited while waiting for %s", what)
			}
			if want(m) {
				return m
			}
			if m.Type != "event" || m.Event != "output" {
				c.pending = append(c.pending, m)
			}
		case <-deadline:
			c.t.Fatalf("no %s within a minute", what)
		}
	}
}

// request sends a request and waits for its response, which must be a
// success; its body is decoded into body when not nil.
func (c *dapClient) request(command string, args any, body any) dapMessage {
	c.t.Helper()
	seq := c.send(command, args)
	m := c.next("response to "+command, func(m dapMessage) bool { return m.Type == "response" && m.RequestSeq == seq })
	require.True(c.t, m.Success, "%s failed: %s %s", command, m.Message, m.Body)
	if body != nil {
		require.NoError(c.t, json.Unmarshal(m.Body, body))
	}
	return m
}

// stopped waits for a stopped event and returns its reason and thread.
func (c *dapClient) stopped() (string, int) {
	c.t.Helper()
	m := c.next("stopped event", func(m dapMessage) bool { return m.Type == "event" && m.Event == "stopped" })
	var b struct {
		Reason   string `json:"reason"`
		ThreadID int    `json:"threadId"`
	}
	require.NoError(c.t, json.Unmarshal(m.Body, &b))
	return b.Reason, b.ThreadID
}

type dapFrame struct {
	ID     int    `json:"id"`
	Name   string `json:"name"`
	Line   int    `json:"line"`
	Source struct {
		Path string `json:"path"`
	} `json:"source"`
}

func (c *dapClient) stack(tid int) []dapFrame {
	var st struct {
		StackFrames []dapFrame `json:"stackFrames"`
	}
	c.request("stackTrace", map[string]any{"threadId": tid, "startFrame": 0, "levels": 32}, &st)
	return st.StackFrames
}

// localValue is the value of variable name in the locals of frame.
func (c *dapClient) localValue(frame int, name string) string {
	var sc struct {
		Scopes []struct {
			Name string `json:"name"`
			Ref  int    `json:"variablesReference"`
		} `json:"scopes"`
	}
	c.request("scopes", map[string]any{"frameId": frame}, &sc)
	for _, s := range sc.Scopes {
		if !strings.HasPrefix(s.Name, "Locals") && !strings.HasPrefix(s.Name, "Arguments") {
			continue
		}
		var vs struct {
			Variables []struct {
				Name  string `json:"name"`
				Value string `json:"value"`
			} `json:"variables"`
		}
		c.request("variables", map[string]any{"variablesReference": s.Ref}, &vs)
		for _, v := range vs.Variables {
			if v.Name == name {
				return v.Value
			}
		}
	}
	return ""
}

// TestDAPLLDBVSCode: VS Code's way into rspstub, scripted: lldb-vscode
// (Debian's lldb-14) attaches to the stub with attach commands, a source
// breakpoint is verified and hit, the stack trace runs from count through
// main and the C runtime to RtlUserThreadStart, the locals show the
// argument, next steps a line, continue hits the next iteration, and
// disconnect ends the adapter. LLDB loads only the program from the
// library list (it does not read DLLs over vFile), so the attach commands
// give it Wine's DLLs, which load at their preferred bases. The program
// is built with DWARF 4: LLDB 14 cannot read the line tables of mingw gcc
// 12's default DWARF 5 ("DW_AT_ranges ... range extraction failed"), and
// no file:line breakpoint resolves.
func TestDAPLLDBVSCode(t *testing.T) {
	adapter := testkit.ToolAny(t, "lldb-vscode", "lldb-vscode-14")
	testkit.NeedWine(t)
	exe := testkit.BuildPE(t, confSrc, testkit.MinGW, "-O0", "-g", "-gdwarf-4")
	line := confLine(t, "LINE_LOOP")
	src := filepath.Join(testkit.Root(), confSrc)
	stub := testkit.StartWineStub(t, exe)
	const dlls = "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows"

	c := startDAP(t, adapter)
	c.request("initialize", map[string]any{"clientID": "rspstub-test", "adapterID": "lldb-vscode",
		"linesStartAt1": true, "columnsStartAt1": true, "pathFormat": "path"}, nil)
	attach := []string{
		"target modules add " + dlls + "/ntdll.dll",
		"target modules add " + dlls + "/kernel32.dll",
		"gdb-remote " + stub.Addr,
		"target modules load --file ntdll.dll --slide 0",
		"target modules load --file kernel32.dll --slide 0",
	}
	c.request("attach", map[string]any{"program": exe, "attachCommands": attach}, nil)
	c.next("initialized event", func(m dapMessage) bool { return m.Type == "event" && m.Event == "initialized" })
	// The stub's first stop (the SIGTRAP of the attach) is reported too.
	if reason, _ := c.stopped(); reason != "exception" && reason != "signal" {
		t.Logf("first stop: %s", reason)
	}

	var bp struct {
		Breakpoints []struct {
			Verified bool `json:"verified"`
			Line     int  `json:"line"`
		} `json:"breakpoints"`
	}
	c.request("setBreakpoints", map[string]any{"source": map[string]any{"path": src},
		"breakpoints": []map[string]any{{"line": line}}}, &bp)
	require.Len(t, bp.Breakpoints, 1)
	assert.True(t, bp.Breakpoints[0].Verified, "the breakpoint on conf.c:%d is not verified", line)
	c.request("configurationDone", map[string]any{}, nil)

	var th struct {
		Threads []struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		} `json:"threads"`
	}
	c.request("threads", map[string]any{}, &th)
	require.NotEmpty(t, th.Threads)
	c.request("continue", map[string]any{"threadId": th.Threads[0].ID}, nil)
	reason, tid := c.stopped()
	require.Equal(t, "breakpoint", reason)

	frames := c.stack(tid)
	var names []string
	for _, f := range frames {
		names = append(names, f.Name)
	}
	t.Logf("stack: %s", strings.Join(names, " <- "))
	require.NotEmpty(t, frames)
	assert.Contains(t, frames[0].Name, "count")
	assert.Equal(t, line, frames[0].Line)
	assert.Equal(t, src, frames[0].Source.Path)
	joined := strings.Join(names, " ")
	for _, want := range []string{"main", "mainCRTStartup", "BaseThreadInitThunk", "RtlUserThreadStart"} {
		assert.Contains(t, joined, want)
	}
	assert.Contains(t, names[len(names)-1], "RtlUserThreadStart", "the stack ends at the thread's start")
	assert.Equal(t, "0", c.localValue(frames[0].ID, "i"))

	c.request("next", map[string]any{"threadId": tid}, nil)
	reason, tid = c.stopped()
	assert.Equal(t, "step", reason)
	if f := c.stack(tid); assert.NotEmpty(t, f) {
		assert.Equal(t, line+1, f[0].Line, "next goes to the following line")
	}

	c.request("continue", map[string]any{"threadId": tid}, nil)
	reason, tid = c.stopped()
	assert.Equal(t, "breakpoint", reason)
	if f := c.stack(tid); assert.NotEmpty(t, f) {
		assert.Equal(t, "1", c.localValue(f[0].ID, "i"), "the second iteration")
	}

	c.request("disconnect", map[string]any{"terminateDebuggee": false}, nil)
}
