package ucwin

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rspstub/rspstub/guest/minidump"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/monitor"
	"github.com/rspstub/rspstub/rsp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stopAt starts exe in a userland and runs it to symbol's first hit.
func stopAt(t *testing.T, exe, land, symbol string) *Target {
	t.Helper()
	cfg := Config{Program: exe, Userland: land}
	if land == UserlandWine {
		needWine(t)
		cfg.Root = t.TempDir()
	}
	tg, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { tg.Close() })
	addr, err := tg.Commands().Resolve(symbol)
	require.NoError(t, err)
	require.NoError(t, tg.InsertBreakpoint(rsp.BreakSoftware, addr, 1))
	st, err := tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
	require.NoError(t, err)
	require.Equal(t, rsp.StopSWBreak, st.Kind, "%+v", st)
	return tg
}

// symbolsOf lists a backtrace's function names, outermost last.
func symbolsOf(bt *monitor.Backtrace) []string {
	var out []string
	for _, f := range bt.JSON() {
		out = append(out, f.Symbol)
	}
	return out
}

var lldbFrameRE = regexp.MustCompile("(?m)^\\s+\\*?\\s*frame #\\d+: 0x[0-9a-f]+ [^`]+`([A-Za-z_][A-Za-z0-9_]*)")

// TestMinidumpInLLDB: a minidump written at a breakpoint in d loads in
// LLDB 14 (target create --core) and LLDB's bt lists the functions
// monitor bt lists, from d down to RtlUserThreadStart, in both userlands
// (issue 16). LLDB finds the modules by base name in
// target.exec-search-paths: the program's folder, Wine's DLL folder, or
// for the synthesized DLLs a folder the test writes their images to.
func TestMinidumpInLLDB(t *testing.T) {
	lldb := testkit.Tool(t, "lldb")
	exe := testkit.BuildPE(t, "examples/demo/demo.c", testkit.MinGW, "-O0", "-g")
	for _, land := range []string{UserlandSynth, UserlandWine} {
		t.Run(land, func(t *testing.T) {
			tg := stopAt(t, exe, land, "d")
			bt, err := tg.Commands().Backtrace(monitor.BacktraceOptions{})
			require.NoError(t, err)
			want := symbolsOf(bt)
			require.Equal(t, "RtlUserThreadStart", want[len(want)-1])

			dir := t.TempDir()
			dump := filepath.Join(dir, "d.dmp")
			var out bytes.Buffer
			require.NoError(t, tg.Monitor("minidump "+dump, &out))
			assert.Regexp(t, `^wrote .*d\.dmp: 1 thread\(s\), \d+ module\(s\)`, out.String())
			full := filepath.Join(dir, "full.dmp")
			out.Reset()
			require.NoError(t, tg.Monitor("minidump -full "+full, &out))
			t.Logf("%s", out.String())

			var search []string
			if land == UserlandWine {
				search = []string{filepath.Dir(exe), tg.Wine().WineDLLDir()}
			} else {
				mods := filepath.Join(dir, "modules")
				require.NoError(t, os.Mkdir(mods, 0o755))
				for _, m := range tg.modules() {
					if m.Synthetic {
						img, err := tg.ModuleImage(m.Name)
						require.NoError(t, err)
						require.NoError(t, os.WriteFile(filepath.Join(mods, m.Name), img, 0o644))
					}
				}
				search = []string{filepath.Dir(exe), mods}
			}
			for _, f := range []string{dump, full} {
				got := lldbCore(t, lldb, search, f)
				assert.Equal(t, want, lldbFrames(got), f)
				assert.Contains(t, got, "Exception 0x80000003")
			}
		})
	}
}

// lldbCore loads a minidump in LLDB with the modules searched for in
// search and returns what thread list and bt print.
func lldbCore(t *testing.T, lldb string, search []string, dump string) string {
	t.Helper()
	got := testkit.Run(t, time.Minute, testkit.LLDBEnv(), lldb, "--no-lldbinit", "--batch",
		"-o", "settings set target.exec-search-paths "+strings.Join(search, " "),
		"-o", "target create --core "+dump, "-o", "thread list", "-o", "bt")
	t.Logf("lldb %s:\n%s", filepath.Base(dump), got)
	return got
}

// lldbFrames lists the function names of LLDB's bt, innermost first.
func lldbFrames(got string) []string {
	var frames []string
	for _, m := range lldbFrameRE.FindAllStringSubmatch(got, -1) {
		frames = append(frames, m[1])
	}
	return frames
}

// TestMinidumpFault: a dump at an access violation carries it in the
// exception stream (code, address, access kind and address).
func TestMinidumpFault(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/nullwrite.c", testkit.MinGW, "-O0")
	for _, land := range []string{UserlandSynth, UserlandWine} {
		t.Run(land, func(t *testing.T) {
			cfg := Config{Program: exe, Userland: land}
			if land == UserlandWine {
				needWine(t)
				cfg.Root = t.TempDir()
			}
			tg, err := New(cfg)
			require.NoError(t, err)
			defer tg.Close()
			st, err := tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
			require.NoError(t, err)
			require.Equal(t, rsp.SIGSEGV, st.Signal, "%+v", st)
			d, err := tg.Minidump(false)
			require.NoError(t, err)
			require.NotNil(t, d.Exception)
			assert.Equal(t, uint32(0xC0000005), d.Exception.Code)
			assert.Equal(t, []uint64{1, 0}, d.Exception.Params) // a write to address 0
			assert.Equal(t, d.Threads[0].Context.RIP, d.Exception.Address)
			_, err = minidump.Encode(d)
			require.NoError(t, err)

			// LLDB shows the fault and the stack through it.
			lldb, err := exec.LookPath("lldb")
			if err != nil {
				return
			}
			dump := filepath.Join(t.TempDir(), "fault.dmp")
			var out bytes.Buffer
			require.NoError(t, tg.Monitor("minidump "+dump, &out))
			got := lldbCore(t, lldb, []string{filepath.Dir(exe)}, dump)
			assert.Contains(t, got, "Exception 0xc0000005")
			frames := lldbFrames(got)
			require.GreaterOrEqual(t, len(frames), 2, got)
			assert.Equal(t, []string{"poke", "main"}, frames[:2])
		})
	}
}

// TestMinidumpRefusesDevices: the monitor command writes only regular
// files: /dev/null and a folder are refused, the device is untouched.
func TestMinidumpRefusesDevices(t *testing.T) {
	exe := testkit.BuildPE(t, "examples/demo/demo.c", testkit.MinGW, "-O0", "-g")
	tg := stopAt(t, exe, UserlandSynth, "d")
	for _, p := range []string{os.DevNull, t.TempDir(), "/proc/self/minidump", ""} {
		var out bytes.Buffer
		err := tg.Monitor("minidump '"+p+"'", &out)
		assert.Error(t, err, p)
	}
	st, err := os.Stat(os.DevNull)
	require.NoError(t, err)
	assert.NotZero(t, st.Mode()&os.ModeDevice, "/dev/null is still a device")
	var out bytes.Buffer
	err = tg.Monitor("minidump "+filepath.Join(t.TempDir(), "missing", "x.dmp"), &out)
	assert.ErrorContains(t, err, "no such file")
}
