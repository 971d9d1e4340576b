package monitor_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/rspstub/rspstub/tests/harness"
)

// checkBTText checks that out holds the seed stack as "monitor bt" prints it.
func checkBTText(t *testing.T, client, out string) {
	t.Helper()
	for i, w := range wantStack {
		re := regexp.MustCompile(fmt.Sprintf(`(?m)^%02x [0-9a-f]{8}`+"`"+`[0-9a-f]{8}  [0-9a-f]{8}`+"`"+`[0-9a-f]{8}  %s!%s[+ ]`, i, w.mod, w.sym))
		if !re.MatchString(out) {
			t.Errorf("%s: frame %d %s!%s missing", client, i, w.mod, w.sym)
		}
	}
	if !strings.Contains(out, "-- end of stack (zero return address)") {
		t.Errorf("%s: no end-of-stack line", client)
	}
}

// TestMonitorBTThroughGDB: Debian's gdb 13 sends qRcmd and prints the
// streamed O packets.
func TestMonitorBTThroughGDB(t *testing.T) {
	gdb := harness.Tool(t, "gdb")
	exe := buildDemo(t, harness.MinGW, "-O0", "-g")
	stub := harness.StartStub(t, "--shadow-stack", exe)
	out := harness.GDB(t, gdb, exe, stub.Addr,
		"break d", "continue",
		"echo @@bt\\n", "monitor bt",
		"echo @@verify\\n", "monitor verify-unwind",
		"echo @@bad\\n", "monitor frobnicate",
		"echo @@after\\n", "monitor bt -n 1",
		"kill")
	t.Logf("gdb:\n%s", out)
	bt, _, _ := strings.Cut(out[strings.Index(out, "@@bt")+1:], "@@verify")
	checkBTText(t, "gdb", bt)
	if !strings.Contains(out, "OK: the unwinder agrees with the shadow call stack on all 8 calls") {
		t.Errorf("gdb: monitor verify-unwind did not agree")
	}
	if !strings.Contains(out, `unknown monitor command "frobnicate"`) {
		t.Errorf("gdb: no clear error for an unknown command")
	}
	if _, after, _ := strings.Cut(out, "@@after"); !strings.Contains(after, "demo!d") {
		t.Errorf("gdb: the stub did not survive a bad command")
	}
}

// TestMonitorBTThroughLLDB: lldb 14's "process plugin packet monitor".
func TestMonitorBTThroughLLDB(t *testing.T) {
	exe := buildDemo(t, harness.MinGW, "-O2", "-g")
	d := mustResolve(t, exe, "d")
	stub := harness.StartStub(t, exe)
	out := harness.LLDB(t, exe, stub.Addr,
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
	a, err := tg.Commands().Resolve(sym)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
