package monitor_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/monitor"
)

// TestGDBScriptEndsAndNames: with the unwinder script sourced after
// `target remote` (Debian's gdb then already failed to load the Windows
// DLLs), bt stops at the thread's first frame (RtlUserThreadStart) with
// no blank "0x0 in ()" frame after it, and `frame N` names every frame
// the way bt does (the script makes GDB read the DLLs from the stub).
func TestGDBScriptEndsAndNames(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := testkit.BuildPE(t, "tests/testdata/conf.c", testkit.MinGW, "-O0", "-g")
	script := writeScript(t, "rspstub-gdb.py", monitor.GDBScript)
	for _, userland := range []string{"synth", "wine"} {
		t.Run(userland, func(t *testing.T) {
			var stub *testkit.StubProc
			if userland == "wine" {
				stub = testkit.StartWineStub(t, exe)
			} else {
				stub = testkit.StartStub(t, exe)
			}
			cmds := []string{"source " + script, "break count", "continue", "echo @@bt\\n", "bt", "echo @@frames\\n"}
			for i := 0; i < 6; i++ {
				cmds = append(cmds, fmt.Sprintf("echo @@frame %d\\n", i), fmt.Sprintf("frame %d", i))
			}
			cmds = append(cmds, "echo @@end\\n", "kill")
			out := testkit.GDB(t, gdb, exe, stub.Addr, cmds...)
			bt := between(out, "@@bt", "@@frames")
			rows := regexp.MustCompile(`(?m)^#(\d+)\s+(?:0x[0-9a-f]+ in )?(\S+) \(`).FindAllStringSubmatch(bt, -1)
			assert.Len(t, rows, 6, "count, main, __tmainCRTStartup, mainCRTStartup, BaseThreadInitThunk, RtlUserThreadStart")
			assert.NotContains(t, bt, "0x0000000000000000 in")
			if len(rows) > 0 {
				assert.Contains(t, rows[len(rows)-1][2], "RtlUserThreadStart")
			}
			for _, r := range rows {
				i := r[1]
				fr := between(out, "@@frame "+i+"\n", "@@")
				// bt may decorate a name with its module (KERNEL32!...);
				// frame N shows GDB's own symbol.
				name := r[2]
				if j := strings.IndexByte(name, '!'); j >= 0 {
					name = name[j+1:]
				}
				assert.Regexp(t, `(?m)^#`+i+`\s+(0x[0-9a-f]+ in )?\S*`+regexp.QuoteMeta(name)+` \(`, fr, "frame %s", i)
				assert.NotContains(t, fr, "?? ()", "frame %s", i)
			}
			if t.Failed() {
				t.Logf("gdb output:\n%s", out)
			}
		})
	}
}
