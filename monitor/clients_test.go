package monitor_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/debuggee/debuggeetest"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/monitor"
)

// checkBTText checks that out holds the seed stack as "monitor bt" prints it.
func checkBTText(t *testing.T, client, out string) {
	t.Helper()
	for i, w := range wantStack {
		re := fmt.Sprintf(`(?m)^%02x [0-9a-f]{8}`+"`"+`[0-9a-f]{8}  [0-9a-f]{8}`+"`"+`[0-9a-f]{8}  %s!%s[+ ]`, i, w.mod, w.sym)
		assert.Regexp(t, re, out, "%s: frame %d %s!%s missing", client, i, w.mod, w.sym)
	}
	assert.Contains(t, out, "-- end of stack (zero return address)", "%s: no end-of-stack line", client)
}

// TestMonitorBTThroughGDB: Debian's gdb 13 sends qRcmd and prints the
// streamed O packets.
func TestMonitorBTThroughGDB(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := buildDemo(t, testkit.MinGW, "-O0", "-g")
	stub := testkit.StartStub(t, "--shadow-stack", exe)
	out := testkit.GDB(t, gdb, exe, stub.Addr,
		"break d", "continue",
		"echo @@bt\\n", "monitor bt",
		"echo @@verify\\n", "monitor verify-unwind",
		"echo @@bad\\n", "monitor frobnicate",
		"echo @@after\\n", "monitor bt -n 1",
		"kill")
	t.Logf("gdb:\n%s", out)
	bt, _, _ := strings.Cut(out[strings.Index(out, "@@bt")+1:], "@@verify")
	checkBTText(t, "gdb", bt)
	assert.Contains(t, out, "OK: the unwinder agrees with the shadow call stack on all 8 calls", "gdb: monitor verify-unwind did not agree")
	assert.Contains(t, out, `unknown monitor command "frobnicate"`, "gdb: no clear error for an unknown command")
	_, after, _ := strings.Cut(out, "@@after")
	assert.Contains(t, after, "demo!d", "gdb: the stub did not survive a bad command")
}

// TestMonitorBTThroughLLDB: lldb 14's "process plugin packet monitor".
func TestMonitorBTThroughLLDB(t *testing.T) {
	exe := buildDemo(t, testkit.MinGW, "-O2", "-g")
	d := mustResolve(t, exe, "d")
	stub := testkit.StartStub(t, exe)
	out := testkit.LLDB(t, exe, stub.Addr,
		fmt.Sprintf("breakpoint set --address %#x", d),
		"continue",
		"process plugin packet monitor bt",
		"kill")
	t.Logf("lldb:\n%s", out)
	checkBTText(t, "lldb", out)
}

// mustResolve finds a symbol's address the way the stub does.
func mustResolve(t *testing.T, exe, sym string) uint64 {
	t.Helper()
	tg := stopAtStart(t, exe)
	a, err := debuggeetest.View(tg).Commands().Resolve(sym)
	require.NoError(t, err)
	return a
}

// TestMingwGDBNativeBTEqualsMonitorBT: the Windows-ABI gdb given no local
// files (qXfer:exec-file:read names the program by its guest path, and
// every module comes through vFile) uses its own .pdata unwinder; its
// native bt must list the same frames as monitor bt: the same pcs and
// functions, in order.
func TestMingwGDBNativeBTEqualsMonitorBT(t *testing.T) {
	gdb := testkit.Tool(t, "x86_64-w64-mingw32-gdb")
	exe := buildDemo(t, testkit.MinGW, "-O2", "-g")
	d := mustResolve(t, exe, "d")
	stub := testkit.StartStub(t, exe)
	out := testkit.GDB(t, gdb, "", stub.Addr,
		"set backtrace past-main on", "set backtrace past-entry on",
		fmt.Sprintf("break *%#x", d), "continue",
		"echo @@native\\n", "bt",
		"echo @@monitor\\n", "monitor bt",
		"echo @@end\\n", "kill")
	t.Logf("gdb:\n%s", out)
	native := between(out, "@@native", "@@monitor")
	mon := between(out, "@@monitor", "@@end")
	// Native frames: "#1  0x00000001400015cd in c ()"; frame 0 has no pc.
	nativeRE := regexp.MustCompile(`(?m)^#(\d+)\s+(?:0x([0-9a-f]+) in )?(\S+)`)
	monRE := regexp.MustCompile("(?m)^([0-9a-f]{2}) [0-9a-f]{8}`[0-9a-f]{8}  [0-9a-f]{8}`[0-9a-f]{8}  (\\S+)")
	var nf [][]string
	for _, f := range nativeRE.FindAllStringSubmatch(native, -1) {
		if strings.Trim(f[2], "0") == "" && f[1] != "0" {
			continue // gdb shows the zero return address as one more frame
		}
		nf = append(nf, f)
	}
	mf := monRE.FindAllStringSubmatch(mon, -1)
	require.Len(t, mf, len(wantStack), "monitor bt's frames")
	// RetAddr of monitor frame i is the pc of native frame i+1.
	monRet := regexp.MustCompile("(?m)^[0-9a-f]{2} [0-9a-f]{8}`[0-9a-f]{8}  ([0-9a-f]{8})`([0-9a-f]{8})")
	rets := monRet.FindAllStringSubmatch(mon, -1)
	assert.Len(t, nf, len(mf), "native bt's frames, against monitor bt's")
	for i := 1; i < min(len(nf), len(rets)+1, len(mf)); i++ {
		want := strings.TrimLeft(rets[i-1][1]+rets[i-1][2], "0")
		assert.Equal(t, want, strings.TrimLeft(nf[i][2], "0"), "frame %d: native pc, against monitor's", i)
		sym := mf[i][2]
		if _, fn, ok := strings.Cut(sym, "!"); ok {
			fn, _, _ = strings.Cut(fn, "+")
			assert.Contains(t, nf[i][3], fn, "frame %d: native %s, monitor %s", i, nf[i][3], sym)
		}
	}
}

func between(s, from, to string) string {
	_, after, _ := strings.Cut(s, from)
	before, _, _ := strings.Cut(after, to)
	return before
}

func writeScript(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

// TestGDBPythonUnwinder: Debian's gdb 13 (no Windows ABI) with the
// shipped unwinder script: its native bt lists the whole Windows stack,
// and frame 2's rbx is the value frame 2's code expects (the one monitor
// frame 2 reports, read back from its save slot).
func TestGDBPythonUnwinder(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	for _, b := range demoBuilds[:2] {
		t.Run(b.name, func(t *testing.T) {
			exe := buildDemo(t, b.tc, b.flags...)
			script := writeScript(t, "rspstub-gdb.py", monitor.GDBScript)
			stub := testkit.StartStub(t, exe)
			out := testkit.GDB(t, gdb, exe, stub.Addr,
				"source "+script, // sets backtrace past-main/past-entry itself
				"break d", "continue",
				"echo @@bt\\n", "bt",
				"echo @@rbx\\n", "frame 2", "info registers rbx",
				"echo @@monitor\\n", "monitor frame 2",
				"echo @@end\\n", "kill")
			t.Logf("gdb:\n%s", out)
			bt := between(out, "@@bt", "@@rbx")
			for i, w := range wantStack {
				name := w.sym
				if w.mod != "demo" {
					name = w.mod + "!" + w.sym
				}
				re := fmt.Sprintf(`(?m)^#%d\s+(0x[0-9a-f]+ in )?%s \(`, i, regexp.QuoteMeta(name))
				assert.Regexp(t, re, bt, "native bt: no frame #%d %s", i, name)
			}
			m := regexp.MustCompile(`(?m)^rbx\s+(0x[0-9a-f]+)`).FindStringSubmatch(between(out, "@@rbx", "@@monitor"))
			want := regexp.MustCompile(`(?m)^\s+rbx\s+([0-9a-f]{16})`).FindStringSubmatch(between(out, "@@monitor", "@@end"))
			require.NotNil(t, m, "no rbx in gdb's frame 2")
			require.NotNil(t, want, "no rbx in monitor frame 2")
			got, _ := strconv.ParseUint(strings.TrimPrefix(m[1], "0x"), 16, 64)
			exp, _ := strconv.ParseUint(want[1], 16, 64)
			assert.Equal(t, exp, got, "frame 2 rbx: gdb's, against monitor's")
		})
	}
}

// TestLLDBCommandScript: the shipped LLDB command prints monitor bt.
func TestLLDBCommandScript(t *testing.T) {
	exe := buildDemo(t, testkit.ClangMinGW, "-O0", "-g")
	d := mustResolve(t, exe, "d")
	script := writeScript(t, "rspstub_lldb.py", monitor.LLDBScript)
	stub := testkit.StartStub(t, exe)
	out := testkit.LLDB(t, exe, stub.Addr,
		"command script import "+script,
		fmt.Sprintf("breakpoint set --address %#x", d),
		"continue",
		"rspstub-bt",
		"kill")
	t.Logf("lldb:\n%s", out)
	checkBTText(t, "lldb rspstub-bt", out)
	assert.NotContains(t, out, "packet: qRcmd", "rspstub-bt echoes the packet")
}
