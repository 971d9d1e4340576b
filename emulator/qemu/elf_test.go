package qemu

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
)

// buildDeep builds testdata/deep.c with the given gcc flags, once per
// flag set (name is for the reader: the kit caches by flags).
func buildDeep(t *testing.T, name string, flags ...string) string {
	t.Helper()
	return testkit.BuildELF(t, "emulator/qemu/testdata/deep.c", append([]string{"-g"}, flags...)...)
}

var (
	// GDB: "#0  d (x=6) at deep.c:8" or "#5  0x... in __libc_start_call_main (...".
	gdbFrame = regexp.MustCompile(`^#(\d+)\s+(?:0x[0-9a-f]+ in )?(\S+) \(`)
	// monitor bt: "05 00000040`02805740  00000040`02872305  libc.so.6!__libc_start_call_main+0x7a  cfi".
	monFrame = regexp.MustCompile("^([0-9a-f]{2}) [0-9a-f]{8}`[0-9a-f]{8}  \\S+ +(\\S+)")
)

// TestBacktraceUser: a Linux program under qemu-user, stopped in d()
// of main -> a -> b -> c -> d: `monitor bt` (CFI from the modules' files
// and memory, symbols from DWARF/.symtab/the libc debug file) lists the
// same functions, frame for frame, as GDB's own bt with the files loaded,
// down through libc's start functions and _start.
func TestBacktraceUser(t *testing.T) {
	needTool(t, "gdb", "qemu-x86_64")
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"deep-O0", []string{"-O0"}},
		{"deep-O2", []string{"-O2", "-fomit-frame-pointer"}},
		{"deep-O2-nopie", []string{"-O2", "-fomit-frame-pointer", "-no-pie", "-fno-pie"}},
		{"deep-static", []string{"-O2", "-fomit-frame-pointer", "-static"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog := buildDeep(t, tc.name, tc.flags...)
			s := startStub(t, "qemu-x86_64", prog)
			out := runTool(t, nil, "gdb", "-batch", "-nx",
				"-ex", "set confirm off",
				"-ex", "set pagination off",
				"-ex", "set remotetimeout 30",
				"-ex", "set backtrace past-main on",
				"-ex", "set backtrace past-entry on",
				"-ex", "target remote "+s.Addr,
				"-ex", "break d",
				"-ex", "continue",
				"-ex", "echo ==bt==\\n",
				"-ex", "bt",
				"-ex", "echo ==monitor==\\n",
				"-ex", "monitor bt",
				"-ex", "echo ==args==\\n",
				"-ex", "monitor args",
				"-ex", "echo ==end==\\n",
				"-ex", "kill",
				prog)
			t.Logf("gdb output:\n%s", out)
			gdbNames := frames(t, section(out, "==bt==", "==monitor=="), gdbFrame)
			mon := section(out, "==monitor==", "==args==")
			// d's argument: GDB's "#0  d (x=6)" against monitor args'
			// System V reading of rdi at the breakpoint (exact at d's first byte,
			// the live register after -O0's prologue).
			if m := regexp.MustCompile(`#0  d \(x=(\d+)\)`).FindStringSubmatch(out); assert.NotNil(t, m, "GDB's frame 0 is not d (x=N)") {
				x, _ := strconv.Atoi(m[1])
				assert.Regexp(t, fmt.Sprintf(`arg1 x\s+rdi\s+%#x\s+(exact|register)`, x), section(out, "==args==", "==end=="), "monitor args does not show x = %#x in rdi", x)
			}
			monSites := frames(t, mon, monFrame)
			require.GreaterOrEqual(t, len(gdbNames), 6, "GDB's bt frames: %q", gdbNames)
			assert.Contains(t, mon, "end of stack", "monitor bt did not reach the end of the stack")
			var monNames []string
			for _, site := range monSites {
				_, fn, _ := strings.Cut(site, "!")
				fn, _, _ = strings.Cut(fn, "+")
				monNames = append(monNames, fn)
			}
			assert.Equal(t, gdbNames, monNames, "monitor bt frames against GDB's")
			for _, want := range []string{"d", "c", "b", "a", "main", "_start"} {
				assert.Contains(t, monNames, want, "monitor bt has no frame in %s", want)
			}
			if !strings.Contains(tc.name, "static") {
				assert.Contains(t, mon, "libc.so.6!", "monitor bt has no libc.so.6 frame")
			}
			assert.NotContains(t, mon, "not a PE", "monitor bt reports PE errors for ELF modules")
		})
	}
}

// frames extracts the function (the second submatch of re) of each
// frame line.
func frames(t *testing.T, text string, re *regexp.Regexp) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(text, "\n") {
		m := re.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		out = append(out, m[2])
	}
	return out
}
