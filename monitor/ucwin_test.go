package monitor_test

import (
	"bytes"
	"testing"

	"github.com/rspstub/rspstub/emulator/ucwin"
	"github.com/rspstub/rspstub/rsp"
	"github.com/rspstub/rspstub/tests/harness"
)

// demoBuilds are the seed scenario built by each toolchain.
var demoBuilds = []struct {
	name  string
	tc    harness.Toolchain
	flags []string
}{
	{"gcc-O0", harness.MinGW, []string{"-O0", "-g"}},
	{"gcc-O2", harness.MinGW, []string{"-O2", "-g"}},
	{"clang-O0", harness.ClangMinGW, []string{"-O0", "-g"}},
	{"clang-O2", harness.ClangMinGW, []string{"-O2", "-g"}},
}

// stopAt starts exe in Unicorn and runs it to the first hit of sym.
func stopAt(t *testing.T, exe, sym string, shadow bool) *ucwin.Target {
	t.Helper()
	var out bytes.Buffer
	tg, err := ucwin.New(ucwin.Config{Program: exe, ShadowStack: shadow, Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	addr, err := tg.Commands().Resolve(sym)
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.InsertBreakpoint(rsp.BreakSoftware, addr, 1); err != nil {
		t.Fatal(err)
	}
	st, err := tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Kind != rsp.StopSWBreak {
		t.Fatalf("stop %+v, want the breakpoint at %s (%#x); output %q", st, sym, addr, out.String())
	}
	return tg
}

func monitorCmd(t *testing.T, tg *ucwin.Target, cmd string) string {
	t.Helper()
	var out bytes.Buffer
	if err := tg.Monitor(cmd, &out); err != nil {
		t.Fatalf("monitor %s: %v\n%s", cmd, err, out.String())
	}
	return out.String()
}

var wantStack = []struct{ mod, sym string }{
	{"demo", "d"}, {"demo", "c"}, {"demo", "b"}, {"demo", "a"}, {"demo", "main"},
	{"demo", "__tmainCRTStartup"}, {"demo", "mainCRTStartup"},
	{"KERNEL32", "BaseThreadInitThunk"}, {"ntdll", "RtlUserThreadStart"},
}

func TestBacktraceAtD(t *testing.T) {
	for _, b := range demoBuilds {
		t.Run(b.name, func(t *testing.T) {
			exe := harness.BuildPE(t, "examples/demo/demo.c", b.tc, b.flags...)
			tg := stopAt(t, exe, "d", true)
			out := monitorCmd(t, tg, "bt")
			t.Logf("monitor bt:\n%s", out)
		})
	}
}

func TestShowAll(t *testing.T) {
	exe := harness.BuildPE(t, "examples/demo/demo.c", harness.MinGW, "-O2", "-g")
	tg := stopAt(t, exe, "d", true)
	for _, c := range []string{"help", "bt -full -n 3", "bt -json -n 2", "frame 2", "args 0", "args 1", "modules", "modules -json", "teb", "peb", "memmap", "unwind-info d", "unwind-info c+3", "unwind-info KERNEL32!BaseThreadInitThunk", "verify-unwind", "unwind-info msvcrt!printf", "bogus", "bt -x", "frame 99", "unwind-info 0x10", "unwind-info nosuch"} {
		var out bytes.Buffer
		err := tg.Monitor(c, &out)
		t.Logf("monitor %s:\n%s(err %v)", c, out.String(), err)
	}
}
