package rsp

import (
	"bytes"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/rspstub/rspstub/internal/testkit"
)

// End-to-end tests against the real GDB and LLDB. Each writes the
// connection sequence it saw (the ordered set of packet kinds the client
// sent) to testdata/*.golden; run with -update to regenerate.

// needTool finds a client binary (testkit's tool policy).
func needTool(t *testing.T, name string) string {
	t.Helper()
	return testkit.RequireTool(t, name)
}

// recordingListener keeps a copy of every byte clients send.
type recordingListener struct {
	net.Listener
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c, l: l}, nil
}

func (l *recordingListener) bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.buf.Bytes()...)
}

type recordingConn struct {
	net.Conn
	l *recordingListener
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.l.mu.Lock()
	c.l.buf.Write(p[:n])
	c.l.mu.Unlock()
	return n, err
}

// packetKinds splits a recorded client stream into packets and names
// each one's kind: the letter (plus H's operation), or the name up to
// the first ':', ',' or ';' (qXfer keeps object and annex, vFile its
// operation). It returns the kinds in order of first appearance: stable
// across runs, yet a new, missing or reordered request shows.
func packetKinds(stream []byte) []string {
	var kinds []string
	seen := map[string]bool{}
	for len(stream) > 0 {
		i := bytes.IndexByte(stream, '$')
		if i < 0 {
			break
		}
		stream = stream[i+1:]
		j := bytes.IndexByte(stream, '#')
		if j < 0 {
			break
		}
		kind := packetKind(stream[:j])
		stream = stream[j+1:]
		if kind != "" && !seen[kind] {
			seen[kind] = true
			kinds = append(kinds, kind)
		}
	}
	return kinds
}

func packetKind(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	switch p[0] {
	case 'q', 'Q', 'v', 'j':
		s := string(p)
		switch {
		case strings.HasPrefix(s, "qXfer:"):
			parts := strings.SplitN(s, ":", 5)
			if len(parts) == 5 {
				return strings.Join(parts[:4], ":")
			}
		case strings.HasPrefix(s, "vFile:"):
			op, _, _ := strings.Cut(s[len("vFile:"):], ":")
			return "vFile:" + op
		case strings.HasPrefix(s, "qRegisterInfo"):
			return "qRegisterInfo"
		case strings.HasPrefix(s, "vCont;"):
			return "vCont;" + s[6:7]
		}
		end := strings.IndexAny(s, ":,;")
		if end < 0 {
			end = len(s)
		}
		return s[:end]
	case 'H':
		if len(p) >= 2 {
			return string(p[:2])
		}
	}
	return string(p[:1])
}

// checkGolden compares the connection sequence with testdata/name.
func checkGolden(t *testing.T, name string, kinds []string) {
	t.Helper()
	testkit.GoldenString(t, filepath.Join("testdata", name), strings.Join(kinds, "\n")+"\n")
}

func TestGDBEndToEnd(t *testing.T) {
	gdb := needTool(t, "gdb")
	for _, tc := range []struct {
		name   string
		opt    AMD64Options
		golden string
	}{
		{"base", AMD64Options{}, "gdb13.golden"},
		{"avx+system", AMD64Options{AVX: true, System: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := newTestTargetWith(tc.opt)
			srv := serveTCP(t, tt)
			addr, rec := srv.addr, srv.rec
			out := testkit.Run(t, 60*time.Second, nil, gdb, "-batch", "-nx",
				"-ex", "set architecture i386:x86-64",
				"-ex", "target remote "+addr,
				"-ex", "maint print remote-registers",
				"-ex", "info registers rip fs_base gs_base xmm0",
				"-ex", "x/4xb 0x140001000",
				"-ex", "info threads",
				"-ex", "set $rax = 0x4242",
				"-ex", "p/x $rax",
				"-ex", "stepi",
				"-ex", "p/x $pc",
				"-ex", "break *0x140001100",
				"-ex", "continue",
				"-ex", "p/x $pc",
				"-ex", "detach")
			t.Logf("gdb output:\n%s", out)
			for _, bad := range []string{"too long", "i386 architecture", "Truncated register", "Could not load XML", "unknown register"} {
				assert.NotContains(t, out, bad, "gdb output")
			}
			checkRemoteRegisters(t, out, tt.desc)
			for _, want := range []string{"0x140001010", "0x7ffde000", "0x00\t0x01\t0x02\t0x03", "v4_int32", `Thread 42.1 "main" (vCPU 0)`,
				"= 0x4242", "= 0x140001011", "Breakpoint 1, 0x0000000140001100", "= 0x140001100", "guest says hi"} {
				assert.Contains(t, out, want, "gdb output")
			}
			if tc.golden != "" {
				checkGolden(t, tc.golden, packetKinds(rec.bytes()))
			}
		})
	}
}

// checkRemoteRegisters checks GDB's "maint print remote-registers"
// table ("Name Nr Rel Offset Size Type Rmt-Nr g/G-Offset") against d:
// every register has its regnum as remote number, its size and its g
// offset.
func checkRemoteRegisters(t *testing.T, out string, d *Description) {
	t.Helper()
	rows := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		// The type column may hold spaces ("long long").
		f := strings.Fields(line)
		if _, seen := rows[f0(f)]; seen {
			continue
		}
		if _, err := strconv.Atoi(f1(f)); err == nil && len(f) >= 8 {
			rows[f[0]] = []string{f[0], f[1], f[2], f[3], f[4], "", f[len(f)-2], f[len(f)-1]}
		}
	}
	for i, r := range d.Registers {
		f, ok := rows[r.Name]
		if !assert.True(t, ok, "gdb lists no remote register %s", r.Name) {
			continue
		}
		assert.Equal(t, []string{strconv.Itoa(r.Size()), strconv.Itoa(i), strconv.Itoa(r.Offset)}, []string{f[4], f[6], f[7]},
			"gdb: register %s: size, remote number, g offset", r.Name)
	}
}

func f0(f []string) string {
	if len(f) > 0 {
		return f[0]
	}
	return ""
}

func f1(f []string) string {
	if len(f) > 1 {
		return f[1]
	}
	return ""
}

func TestLLDBEndToEnd(t *testing.T) {
	lldb := needTool(t, "lldb")
	srv := serveTCP(t, newTestTarget())
	addr, rec := srv.addr, srv.rec
	env := testkit.LLDBEnv()
	out := testkit.Run(t, 60*time.Second, env, lldb, "--batch", "--no-lldbinit",
		"-o", "gdb-remote "+addr,
		"-o", "register read --all",
		"-o", "memory read -c 4 0x140001000",
		"-o", "register write rax 0x4242",
		"-o", "register read rax",
		"-o", "thread step-inst",
		"-o", "breakpoint set -a 0x140001100",
		"-o", "process continue",
		"-o", "register read rip",
		"-o", "process detach")
	t.Logf("lldb output:\n%s", out)
	for _, want := range []string{"fs_base = 0x0000000000000000", "gs_base = 0x000000007ffde000", "xmm0 = {0xa0 0xa1", "st0 = {", "rip = 0x0000000140001010", "mxcsr = 0x00001f80", "00 01 02 03",
		"rax = 0x0000000000004242", "stop reason = breakpoint 1.1", "rip = 0x0000000140001100"} {
		assert.Contains(t, out, want, "lldb output")
	}
	checkGolden(t, "lldb14.golden", packetKinds(rec.bytes()))
}

func TestMinGWGDBEndToEnd(t *testing.T) {
	gdb := needTool(t, "x86_64-w64-mingw32-gdb")
	tt := newTestTargetWith(AMD64Options{OSABI: "Windows"})
	srv := serveTCP(t, tt)
	addr, rec := srv.addr, srv.rec
	out := testkit.Run(t, 60*time.Second, nil, gdb, "-batch", "-nx",
		"-ex", "target remote "+addr,
		"-ex", "maint print remote-registers",
		"-ex", "show osabi",
		"-ex", "info sharedlibrary",
		"-ex", "info w32 thread-information-block",
		"-ex", "info registers rip gs_base",
		"-ex", "monitor help",
		"-ex", "detach")
	t.Logf("gdb output:\n%s", out)
	for _, bad := range []string{"too long", "Could not load XML"} {
		assert.NotContains(t, out, bad, "gdb output")
	}
	checkRemoteRegisters(t, out, tt.desc)
	for _, want := range []string{"Windows", `KERNEL32.dll`, "0x7ffde000", "commands: help, big, fail"} {
		assert.Contains(t, out, want, "gdb output")
	}
	checkGolden(t, "mingw-gdb13.golden", packetKinds(rec.bytes()))
}
