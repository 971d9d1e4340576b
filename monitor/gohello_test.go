package monitor_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/emulator/ucwin"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/monitor"
	"github.com/rspstub/rspstub/rsp"
	"github.com/rspstub/rspstub/unwind"
)

// buildGoHello builds monitor/testdata/gohello for windows/amd64 with the
// Go toolchain running the tests.
func buildGoHello(t *testing.T) string {
	t.Helper()
	goTool := testkit.Tool(t, "go")
	exe := filepath.Join(t.TempDir(), "gohello.exe")
	cmd := exec.Command(goTool, "build", "-o", exe, "./monitor/testdata/gohello")
	cmd.Dir = testkit.Root()
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build:\n%s", out)
	return exe
}

// TestGoRT0Backtrace is issue 14's second case: below runtime.rt0_go
// the walk reached a bogus 0x10100c frame (the low 32 bits of the return
// address, which rt0_go stores as argc where Go's CFI says the return
// address is), then BaseThreadInitThunk by a scan, at the wrong slot.
// rt0_go's frame is now unwound from what its prologue saves.
func TestGoRT0Backtrace(t *testing.T) {
	exe := buildGoHello(t)
	for _, shadow := range []bool{false, true} {
		t.Run(fmt.Sprintf("shadow=%v", shadow), func(t *testing.T) {
			tg, _ := runTo(t, ucwin.Config{Program: exe, ShadowStack: shadow}, "runtime.osinit")
			bt, err := tg.Commands().Backtrace(monitor.BacktraceOptions{})
			require.NoError(t, err)
			var got []string
			for _, f := range bt.Frames {
				got = append(got, fmt.Sprintf("%s (%s)", f.Loc, f.Trust))
			}
			want := []string{"gohello!runtime.osinit", "gohello!runtime.rt0_go", "KERNEL32!BaseThreadInitThunk", "ntdll!RtlUserThreadStart"}
			require.Len(t, bt.Frames, len(want), "%s", strings.Join(got, "\n"))
			for i, w := range want {
				assert.True(t, strings.HasPrefix(bt.Frames[i].Loc.String(), w), "frame %d is %s, want %s", i, got[i], w)
			}
			assert.Equal(t, unwind.StopZeroReturn, bt.Reason)
			assert.Equal(t, unwind.TrustCFIBuiltin, bt.Frames[2].Trust, "BaseThreadInitThunk is found by rt0_go's built-in rule")
			if shadow {
				res, err := tg.Commands().VerifyUnwind()
				require.NoError(t, err)
				assert.Empty(t, res.Mismatch)
			}
		})
	}
}

// TestGoVerifyEveryInstruction single-steps the Go hello as far as the
// synthesized userland runs it and checks the unwinder against the shadow
// call stack before every instruction.
func TestGoVerifyEveryInstruction(t *testing.T) {
	if testing.Short() {
		t.Skip("single-steps a program")
	}
	exe := buildGoHello(t)
	tg, err := ucwin.New(ucwin.Config{Program: exe, ShadowStack: true, Stdout: os.Stderr, Stderr: os.Stderr})
	require.NoError(t, err)
	defer tg.Close()
	mon := tg.Commands()
	step := []rsp.ResumeAction{{Thread: rsp.AllThreads, Step: true}}
	var steps, mismatches int
	var first []string
	var last rsp.Stop
	for ; steps < 3_000_000; steps++ {
		st, err := tg.Resume(step)
		require.NoError(t, err)
		last = st
		if st.Kind != rsp.StopSignal || st.Signal != rsp.SIGTRAP || st.Description != "" {
			break // the end, or as far as the userland goes
		}
		res, err := mon.VerifyUnwind()
		require.NoError(t, err)
		if res.Mismatch != "" {
			mismatches++
			if len(first) < 5 {
				pc, _ := tg.Machine().Reg(arch.RIP)
				first = append(first, fmt.Sprintf("pc %#x: %s", pc, res.Mismatch))
			}
		}
	}
	t.Logf("%d instructions stepped and verified; then %+v", steps, last)
	assert.Greater(t, steps, 1000)
	assert.Zero(t, mismatches, "first mismatches:\n%s", strings.Join(first, "\n"))
}
