package tests

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	require.Contains(t, out, `(currently "i386:x86-64")`, "gdb did not take the description as amd64")
	require.NotContains(t, out, "too long", "gdb did not take the description as amd64")
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
		assert.Equal(t, [3]int{r.Size(), i, r.Offset}, [3]int{size, rnum, off}, "%s: size, remote number and offset, gdb's against the description's", m[1])
		seen[m[1]] = true
	}
	for _, r := range desc.Registers {
		assert.True(t, seen[r.Name], "gdb's remote register map lacks %s", r.Name)
	}
	for _, want := range []string{"fs_base", "gs_base", "st0", "xmm0", "mxcsr"} {
		assert.Regexp(t, `(?m)^`+want+`\s`, out, "info registers does not show %s", want)
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
		assert.Regexp(t, `(?m)^\s+`+r.Name+` = `, out, "lldb's register read --all lacks %s", r.Name)
	}
	if t.Failed() {
		t.Logf("lldb output:\n%s", out)
	}
}
