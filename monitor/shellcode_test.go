package monitor_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/emulator/ucwin"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/monitor"
	"github.com/rspstub/rspstub/rsp"
	"github.com/rspstub/rspstub/unwind"
)

// shellcodeBuilds are monitor/testdata/shellcode.c at both optimisation
// levels: the C code around the routine changes, the routine does not.
var shellcodeBuilds = []struct {
	name  string
	flags []string
}{
	{"O0", []string{"-O0", "-g"}},
	{"O2", []string{"-O2", "-g"}},
}

// shellcodeRoutines are the two routines the program can copy.
var shellcodeRoutines = []string{"frameless", "rbpframe"}

// buildShellcode builds the shellcode program as shellcode.exe in a fresh
// folder (module names then read "shellcode").
func buildShellcode(t *testing.T, flags ...string) string {
	t.Helper()
	src := testkit.BuildPE(t, "monitor/testdata/shellcode.c", testkit.MinGW, flags...)
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	exe := filepath.Join(t.TempDir(), "shellcode.exe")
	require.NoError(t, os.WriteFile(exe, b, 0o755))
	return exe
}

// wantShellcodeStack is the stack at msvcrt!puts called from the routine;
// "" is the routine, outside every module.
var wantShellcodeStack = []string{
	"msvcrt!puts", "", "shellcode!inner", "shellcode!main", "shellcode!__tmainCRTStartup",
	"shellcode!mainCRTStartup", "KERNEL32!BaseThreadInitThunk", "ntdll!RtlUserThreadStart",
}

// virtualAllocs returns the guest's VirtualAlloc'd regions.
func virtualAllocs(tg *ucwin.Target) []rsp.MemoryRegion {
	var out []rsp.MemoryRegion
	for _, r := range tg.MemoryRegions(nil) {
		if r.Name == "VirtualAlloc" {
			out = append(out, r)
		}
	}
	return out
}

func inRegions(rs []rsp.MemoryRegion, addr uint64) bool {
	for _, r := range rs {
		if addr >= r.Start && addr-r.Start < r.Size {
			return true
		}
	}
	return false
}

// checkShellcodeStack compares a walk with wantShellcodeStack: the
// routine's frame lies in VirtualAlloc'd memory, every other frame is
// named by its function, and the walk reaches the end of the stack.
func checkShellcodeStack(t *testing.T, tg *ucwin.Target, bt *monitor.Backtrace) {
	t.Helper()
	var got []string
	for _, f := range bt.Frames {
		got = append(got, fmt.Sprintf("%s (%s)", f.Loc, f.Trust))
	}
	require.Len(t, bt.Frames, len(wantShellcodeStack), "frames:\n%s\n(%v: %v)", strings.Join(got, "\n"), bt.Reason, bt.Err)
	assert.Equal(t, unwind.StopZeroReturn, bt.Reason, "%v", bt.Err)
	allocs := virtualAllocs(tg)
	require.NotEmpty(t, allocs, "the guest made no VirtualAlloc")
	for i, w := range wantShellcodeStack {
		f := bt.Frames[i]
		if w == "" {
			assert.Nil(t, f.Module, "frame %d: %s", i, got[i])
			assert.True(t, inRegions(allocs, f.PC), "frame %d pc %#x is not in VirtualAlloc'd memory", i, f.PC)
			continue
		}
		name := f.Loc.String()
		assert.True(t, name == w || strings.HasPrefix(name, w+"+") || strings.HasPrefix(name, w+" "),
			"frame %d is %s, want %s\nframes:\n%s", i, got[i], w, strings.Join(got, "\n"))
	}
}

// TestShellcodeBacktrace is issue 14's first case: a breakpoint on
// msvcrt!puts called from a routine in VirtualAlloc'd memory. With the
// shadow call stack, the routine's frame and its caller's are taken from
// it (trust shadow); without it, from validated return addresses (the
// leaf rule, the frame-pointer chain or a scan; never the decoy the
// routine leaves in its frame). Both give the exact stack, frame for
// frame (pc and sp).
func TestShellcodeBacktrace(t *testing.T) {
	for _, b := range shellcodeBuilds {
		exe := buildShellcode(t, b.flags...)
		for _, routine := range shellcodeRoutines {
			t.Run(b.name+"-"+routine, func(t *testing.T) {
				tg, out := runTo(t, ucwin.Config{Program: exe, Args: []string{routine}, ShadowStack: true}, "msvcrt!puts")
				withShadow, err := tg.Commands().Backtrace(monitor.BacktraceOptions{})
				require.NoError(t, err)
				checkShellcodeStack(t, tg, withShadow)
				for _, i := range []int{1, 2} {
					assert.Equal(t, unwind.TrustShadow, withShadow.Frames[i].Trust, "frame %d", i)
				}
				own, err := tg.Commands().Backtrace(monitor.BacktraceOptions{NoShadow: true})
				require.NoError(t, err)
				checkShellcodeStack(t, tg, own)
				for i := range min(len(own.Frames), len(withShadow.Frames)) {
					assert.Equal(t, withShadow.Frames[i].PC, own.Frames[i].PC, "frame %d pc", i)
					assert.Equal(t, withShadow.Frames[i].SP, own.Frames[i].SP, "frame %d sp", i)
				}
				for _, i := range []int{1, 2} {
					assert.Contains(t, []unwind.Trust{unwind.TrustLeaf, unwind.TrustFramePointer, unwind.TrustScan}, own.Frames[i].Trust, "frame %d", i)
				}
				res, err := tg.Commands().VerifyUnwind()
				require.NoError(t, err)
				assert.Empty(t, res.Mismatch)
				assert.Equal(t, len(wantShellcodeStack)-1, res.Checked)

				// Without a shadow stack at all (the default run).
				plain, _ := runTo(t, ucwin.Config{Program: exe, Args: []string{routine}}, "msvcrt!puts")
				bt, err := plain.Commands().Backtrace(monitor.BacktraceOptions{})
				require.NoError(t, err)
				checkShellcodeStack(t, plain, bt)
				_ = out

				// rspstub run --bt prints the same frames.
				text := testkit.Run(t, time.Minute, nil, testkit.Stub(t), "run", "--userland", "synth", exe, "--break", "msvcrt!puts", "--bt", "--", routine)
				for i, w := range wantShellcodeStack {
					if w == "" {
						w = "0x40"
					}
					assert.Regexp(t, regexp.MustCompile(fmt.Sprintf("(?m)^%02x .*  %s", i, regexp.QuoteMeta(w))), text, "rspstub run frame %d", i)
				}
			})
		}
	}
}

// TestShellcodeVerifyEveryInstruction: at every instruction the program
// executes (the C runtime, main, inner, the routine in VirtualAlloc'd
// memory, the API stubs), the unwinder's own walk agrees with the
// shadow call stack.
func TestShellcodeVerifyEveryInstruction(t *testing.T) {
	if testing.Short() {
		t.Skip("single-steps whole programs")
	}
	for _, b := range shellcodeBuilds {
		exe := buildShellcode(t, b.flags...)
		for _, routine := range shellcodeRoutines {
			t.Run(b.name+"-"+routine, func(t *testing.T) {
				tg, err := ucwin.New(ucwin.Config{Program: exe, Args: []string{routine}, ShadowStack: true})
				require.NoError(t, err)
				defer tg.Close()
				mon := tg.Commands()
				step := []rsp.ResumeAction{{Thread: rsp.AllThreads, Step: true}}
				var steps, inRoutine, mismatches int
				var first []string
				var allocs []rsp.MemoryRegion
				for ; steps < 2_000_000; steps++ {
					st, err := tg.Resume(step)
					require.NoError(t, err)
					if st.Kind == rsp.StopExited {
						break
					}
					require.Equal(t, rsp.StopSignal, st.Kind, "step %d: %+v", steps, st)
					pc, _ := tg.Machine().Reg(arch.RIP)
					if allocs == nil {
						allocs = virtualAllocs(tg)
					}
					if inRegions(allocs, pc) {
						inRoutine++
					}
					res, err := mon.VerifyUnwind()
					require.NoError(t, err)
					if res.Mismatch != "" {
						mismatches++
						if len(first) < 5 {
							first = append(first, fmt.Sprintf("pc %#x: %s", pc, res.Mismatch))
						}
					}
				}
				t.Logf("%d instructions stepped and verified, %d in the routine", steps, inRoutine)
				assert.Greater(t, inRoutine, 5, "the routine was not stepped through")
				assert.Zero(t, mismatches, "first mismatches:\n%s", strings.Join(first, "\n"))
			})
		}
	}
}

// TestShellcodeGDBScript: Debian's gdb with the shipped unwinder script
// shows the same stack in its own bt, with and without the shadow stack.
func TestShellcodeGDBScript(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	script := writeScript(t, "rspstub-gdb.py", monitor.GDBScript)
	for _, b := range shellcodeBuilds {
		exe := buildShellcode(t, b.flags...)
		puts := mustResolve(t, exe, "msvcrt!puts")
		for _, routine := range shellcodeRoutines {
			for _, shadow := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s-%s-shadow=%v", b.name, routine, shadow), func(t *testing.T) {
					args := []string{exe, routine}
					if shadow {
						args = append([]string{"--shadow-stack"}, args...)
					}
					stub := testkit.StartStub(t, args...)
					out := testkit.GDB(t, gdb, exe, stub.Addr,
						"source "+script,
						fmt.Sprintf("break *%#x", puts), "continue",
						"echo @@bt\\n", "bt",
						"echo @@end\\n", "kill")
					bt := between(out, "@@bt", "@@end")
					for i, w := range wantShellcodeStack {
						name := strings.TrimPrefix(w, "shellcode!")
						if w == "" {
							name = "??"
						}
						re := regexp.MustCompile(fmt.Sprintf(`(?m)^#%d\s+(0x[0-9a-f]+ in )?%s \(`, i, regexp.QuoteMeta(name)))
						assert.Regexp(t, re, bt, "frame #%d %s", i, name)
					}
					assert.NotRegexp(t, `(?m)^#8\s+0x0*[1-9a-f]`, bt, "a frame past RtlUserThreadStart")
					if t.Failed() {
						t.Logf("gdb:\n%s", out)
					}
				})
			}
		}
	}
}
