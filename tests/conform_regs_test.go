package tests

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/rspstub/rspstub/internal/testkit"
)

// windowsSelectors are the segment selectors of 64-bit Windows user code.
var windowsSelectors = map[string]string{"cs": "0x33", "ss": "0x2b", "ds": "0x2b", "es": "0x2b", "fs": "0x53", "gs": "0x2b"}

// TestSegmentSelectors: GDB and LLDB read the selectors Windows x64 user
// code runs with (they read 0 before), and LLDB knows eflags by its own
// name, rflags; GDB still calls it eflags.
func TestSegmentSelectors(t *testing.T) {
	exe := testkit.BuildPE(t, confSrc, testkit.MinGW, "-O0", "-g")
	for _, userland := range []string{"synth", "wine"} {
		t.Run(userland+"/gdb", func(t *testing.T) {
			gdb := testkit.Tool(t, "gdb")
			stub := testkit.Start(t, testkit.UnicornBackend(userland), exe)
			out := testkit.GDB(t, gdb, exe, stub.Addr, "break square", "continue",
				"info registers cs ss ds es fs gs eflags", "kill")
			for reg, want := range windowsSelectors {
				assert.Regexp(t, `(?m)^`+reg+`\s+`+want+`\s`, out)
			}
			assert.Regexp(t, `(?m)^eflags\s+0x[0-9a-f]+\s+\[`, out)
			if t.Failed() {
				t.Logf("gdb output:\n%s", out)
			}
		})
		t.Run(userland+"/lldb", func(t *testing.T) {
			testkit.Tool(t, "lldb")
			stub := testkit.Start(t, testkit.UnicornBackend(userland), exe)
			out := testkit.LLDB(t, exe, stub.Addr, "breakpoint set -n square", "continue",
				"register read cs ss ds es fs gs", "register read rflags", "kill")
			for reg, want := range windowsSelectors {
				assert.Regexp(t, `(?m)^\s+`+reg+` = 0x000000`+want[2:]+`$`, out)
			}
			assert.Regexp(t, regexp.MustCompile(`register read rflags\n\s+eflags = 0x[0-9a-f]{8}\n`), out)
			if t.Failed() {
				t.Logf("lldb output:\n%s", out)
			}
		})
	}
}
