package monitor_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/debuggee/debuggeetest"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/monitor"
	"github.com/rspstub/rspstub/unwind"
	"github.com/rspstub/rspstub/unwind/dwarf"
)

// TestUnwinderSetting: a MinGW image has both .pdata and .debug_frame for
// its functions. Under each setting "monitor bt" gives the same frames;
// the trust says which data found each: with "cfi", every frame unwound
// from a function of the image (which has CFI) is "cfi", the ones
// unwound from the synthesized system DLLs (no CFI) are "pdata".
func TestUnwinderSetting(t *testing.T) {
	for _, b := range []struct {
		flags []string
		stops []string
	}{
		// -O2 without -g: the program's functions have no CFI (only the
		// CRT's have), so "cfi" falls back to .pdata for them.
		{[]string{"-O0", "-g"}, []string{"d", "d+4", "c+8"}},
		{[]string{"-O2"}, []string{"d"}},
	} {
		flags := b.flags
		exe := buildDemo(t, testkit.MinGW, flags...)
		file, err := os.ReadFile(exe)
		require.NoError(t, err)
		secs, err := dwarf.PESections(file)
		require.NoError(t, err)
		finder, err := secs.Finder()
		require.NoError(t, err)
		// hasCFI says whether the image's own CFI covers frame f's PC.
		hasCFI := func(f *monitor.Frame) bool {
			if f.Module == nil || f.Module.Name != "demo.exe" {
				return false
			}
			pc := f.PC - f.Module.Base + secs.ImageBase
			if f.Trust != unwind.TrustContext {
				pc--
			}
			_, err := finder.Lookup(pc)
			return err == nil
		}
		for _, stop := range b.stops {
			tg := stopAt(t, exe, stop, true)
			want := wantStack
			if stop[0] == 'c' {
				want = wantStack[1:]
			}
			var ref *monitor.Backtrace
			for _, set := range []string{"auto", "pdata", "cfi"} {
				assert.Equal(t, "unwinder: "+set+"\n", monitorCmd(t, tg, "set unwinder "+set), "set unwinder %s", set)
				show := monitorCmd(t, tg, "show unwinder")
				assert.True(t, strings.HasPrefix(show, "unwinder: "+set+" "), "show unwinder: %q", show)
				bt, err := debuggeetest.View(tg).Commands().Backtrace(monitor.BacktraceOptions{})
				require.NoError(t, err)
				require.Len(t, bt.Frames, len(want), "%v %s, unwinder %s:\n%s", flags, stop, set, monitorCmd(t, tg, "bt"))
				require.Equal(t, unwind.StopZeroReturn, bt.Reason, "%v %s, unwinder %s:\n%s", flags, stop, set, monitorCmd(t, tg, "bt"))
				cfi := 0
				for i, f := range bt.Frames {
					w := want[i].mod + "!" + want[i].sym
					assert.Regexp(t, `^`+regexp.QuoteMeta(w)+`($|[+ ])`, f.Loc.String(), "%v %s, unwinder %s: frame %d", flags, stop, set, i)
					if ref != nil {
						assert.Equal(t, [2]uint64{ref.Frames[i].PC, ref.Frames[i].SP}, [2]uint64{f.PC, f.SP},
							"%v %s, unwinder %s: frame %d pc and sp, against auto's", flags, stop, set, i)
					}
					if i == 0 {
						continue
					}
					wantTrust := unwind.TrustPDATA
					if set == "cfi" && hasCFI(&bt.Frames[i-1]) {
						wantTrust = unwind.TrustCFI
					}
					assert.Equal(t, wantTrust, f.Trust, "%v %s, unwinder %s: frame %d (%s) trust", flags, stop, set, i, f.Loc.Symbol)
					if f.Trust == unwind.TrustCFI {
						cfi++
					}
				}
				t.Logf("%v %s, unwinder %s: %d of %d frames found by CFI", flags, stop, set, cfi, len(bt.Frames))
				if set == "cfi" {
					assert.GreaterOrEqual(t, cfi, 2, "%v %s: frames from CFI", flags, stop)
				}
				if ref == nil {
					ref = bt
				}
			}
			v := monitorCmd(t, tg, "verify-unwind")
			assert.Regexp(t, `^OK:`, v, "verify-unwind with unwinder cfi:\n%s", v)
			var out strings.Builder
			assert.ErrorContains(t, debuggeetest.View(tg).Monitor("set unwinder dwarf", &out), "auto, pdata or cfi", "set unwinder dwarf")
		}
	}
}

// TestUnwinderSettingThroughGDB: the setting from rspstub serve's
// --unwinder flag and from gdb's "monitor set unwinder".
func TestUnwinderSettingThroughGDB(t *testing.T) {
	gdb := testkit.Tool(t, "gdb")
	exe := buildDemo(t, testkit.MinGW, "-O0", "-g")
	stub := testkit.StartStub(t, "--unwinder", "pdata", exe)
	out := testkit.GDB(t, gdb, exe, stub.Addr,
		"break d", "continue",
		"echo @@show\\n", "monitor show unwinder",
		"echo @@set\\n", "monitor set unwinder cfi",
		"echo @@bt\\n", "monitor bt",
		"echo @@set\\n", "monitor set unwinder auto",
		"echo @@bt\\n", "monitor bt",
		"kill")
	t.Logf("gdb:\n%s", out)
	parts := strings.Split(out, "@@")
	require.Len(t, parts, 6, "gdb output's parts")
	assert.True(t, strings.HasPrefix(parts[1], "show\nunwinder: pdata "), "--unwinder pdata: %q", parts[1])
	assert.True(t, strings.HasPrefix(parts[2], "set\nunwinder: cfi"), "monitor set unwinder cfi: %q", parts[2])
	// Trust of frames 1-6 (unwound from demo's functions) and of the
	// two system frames.
	trust := regexp.MustCompile(`(?m)^0([1-8]) .* (cfi \(builtin\)|\S+)\s*$`)
	for k, want := range map[int]string{3: "cfi", 5: "pdata"} {
		checkBTText(t, "gdb", parts[k])
		got := trust.FindAllStringSubmatch(parts[k], -1)
		if !assert.Len(t, got, 8, "frames with a trust in:\n%s", parts[k]) {
			continue
		}
		for _, g := range got {
			w := want
			if g[1] == "8" {
				w = "pdata" // unwound from KERNEL32, which has no CFI
			}
			assert.Equal(t, w, g[2], "frame %s: trust", g[1])
		}
	}
}
