package tests

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
)

// TestRegistersGDB: against the real Unicorn backend, gdb 13 takes our
// description as i386:x86-64 and its remote register map (number and
// g/G offset of every register) matches the description exactly.
func TestRegistersGDB(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := testkit.BuildPE(t, demoSrc, testkit.MinGW, "-O0", "-g")
	stub := testkit.StartStub(t, exe)
	out := testkit.GDB(t, gdb, exe, stub.Addr, "show architecture", "maint print remote-registers",
		"info registers fs_base gs_base st0 xmm0 mxcsr", "kill")
	if !strings.Contains(out, `(currently "i386:x86-64")`) || strings.Contains(out, "too long") {
		t.Fatalf("gdb did not take the description as amd64:\n%s", out)
	}
	desc := rsp.AMD64(rsp.AMD64Options{})
	row := regexp.MustCompile(`(?m)^ (\w+)\s+(\d+)\s+\d+\s+\d+\s+(\d+)\s+\S+\s+(\d+)\s+(\d+)\s*$`)
	seen := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(out, -1) {
		i := desc.Lookup(m[1])
		if i < 0 {
			continue // gdb's pseudo registers have no remote number
		}
		r := desc.Registers[i]
		size, _ := strconv.Atoi(m[3])
		rnum, _ := strconv.Atoi(m[4])
		off, _ := strconv.Atoi(m[5])
		if size != r.Size() || rnum != i || off != r.Offset {
			t.Errorf("%s: gdb has size %d remote %d offset %d; description %d %d %d",
				m[1], size, rnum, off, r.Size(), i, r.Offset)
		}
		seen[m[1]] = true
	}
	for _, r := range desc.Registers {
		if !seen[r.Name] {
			t.Errorf("gdb's remote register map lacks %s", r.Name)
		}
	}
	for _, want := range []string{"fs_base", "gs_base", "st0", "xmm0", "mxcsr"} {
		if !regexp.MustCompile(`(?m)^` + want + `\s`).MatchString(out) {
			t.Errorf("info registers does not show %s", want)
		}
	}
	if t.Failed() {
		t.Logf("gdb output:\n%s", out)
	}
}

// TestRegistersLLDB: lldb 14 lists every register of the real backend,
// including the segment bases, x87 and SSE registers.
func TestRegistersLLDB(t *testing.T) {
	exe := testkit.BuildPE(t, demoSrc, testkit.MinGW, "-O0", "-g")
	stub := testkit.StartStub(t, exe)
	out := testkit.LLDB(t, exe, stub.Addr, "register read --all", "kill")
	for _, r := range rsp.AMD64(rsp.AMD64Options{}).Registers {
		if !regexp.MustCompile(`(?m)^\s+` + r.Name + ` = `).MatchString(out) {
			t.Errorf("lldb's register read --all lacks %s", r.Name)
		}
	}
	if t.Failed() {
		t.Logf("lldb output:\n%s", out)
	}
}
