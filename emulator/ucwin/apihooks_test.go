package ucwin

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rspstub/rspstub/debuggee/debuggeetest"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTarget(t *testing.T, cfg Config) *Target {
	t.Helper()
	if cfg.Userland == UserlandWine {
		needWine(t)
		cfg.Root = t.TempDir()
	}
	tg, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { tg.Close() })
	debuggeetest.View(tg) // the monitor's symbols name callers and resolve catch points
	return tg
}

func runToExit(t *testing.T, tg *Target) rsp.Stop {
	t.Helper()
	for i := 0; i < 100; i++ {
		st, err := tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
		require.NoError(t, err)
		if st.Kind == rsp.StopExited {
			return st
		}
		require.True(t, st.Kind == rsp.StopSignal && st.Signal == rsp.SIGTRAP && st.Description == "", "%+v", st)
	}
	t.Fatal("no exit")
	return rsp.Stop{}
}

// parseTrace reads the JSON lines of an API trace.
func parseTrace(t *testing.T, b []byte) []APIRecord {
	t.Helper()
	var out []APIRecord
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r APIRecord
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), sc.Text())
		out = append(out, r)
	}
	return out
}

// find returns the API calls whose function is fn.
func find(recs []APIRecord, kind, fn string) []APIRecord {
	var out []APIRecord
	for _, r := range recs {
		if r.Kind == kind && (r.API == fn || strings.HasSuffix(r.API, "!"+fn)) {
			out = append(out, r)
		}
	}
	return out
}

func ret(r APIRecord) string {
	if r.Ret == nil {
		return "none"
	}
	return *r.Ret
}

// TestTraceAPI: the trace of apitrace.exe has its calls, by the program,
// with their decoded arguments and results: natives (strlen,
// GetCurrentProcessId, GetLastError in the synth userland) as well as
// trap stubs and Wine's DLL code; exit never returns; the Wine userland
// adds the system calls (NtWriteFile with its status).
func TestTraceAPI(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/apitrace.c", testkit.MinGW, "-O0")
	for _, land := range []string{UserlandSynth, UserlandWine} {
		t.Run(land, func(t *testing.T) {
			var trace, out bytes.Buffer
			tg := newTarget(t, Config{Program: exe, Userland: land, TraceAPI: &trace, Stdout: &out, DeliverFaults: true})
			st := runToExit(t, tg)
			assert.Equal(t, 7, st.ExitCode)
			recs := parseTrace(t, trace.Bytes())
			require.NotEmpty(t, recs)
			t.Logf("%d records; first: %+v", len(recs), recs[0])

			w := find(recs, "api", "WriteFile")
			require.Len(t, w, 1, "%s", trace.String())
			assert.Contains(t, w[0].Caller, "!main")
			require.Len(t, w[0].Args, 5)
			assert.Equal(t, "nNumberOfBytesToWrite", w[0].Args[2].Name)
			assert.Equal(t, "12", w[0].Args[2].Value)
			require.NotNil(t, w[0].Args[1].Str)
			assert.Equal(t, "traced line\n", *w[0].Args[1].Str)
			assert.Equal(t, "0x1", ret(w[0]))

			var lens []string
			for _, r := range find(recs, "api", "strlen") {
				if r.Args[0].Str != nil && *r.Args[0].Str == "traced line\n" {
					lens = append(lens, ret(r))
				}
			}
			assert.Equal(t, []string{"0xc"}, lens, "strlen(msg)")
			g := find(recs, "api", "GetLastError")
			require.Len(t, g, 1)
			assert.Equal(t, "0x4d2", ret(g[0]))
			sl := find(recs, "api", "SetLastError")
			require.Len(t, sl, 1)
			assert.Equal(t, "1234", sl[0].Args[0].Value)
			m := find(recs, "api", "malloc")
			require.NotEmpty(t, m)
			f := find(recs, "api", "free")
			require.NotEmpty(t, f)
			assert.Equal(t, ret(m[len(m)-1]), f[len(f)-1].Args[0].Value, "free gets what malloc returned")
			pid := find(recs, "api", "GetCurrentProcessId")
			require.Len(t, pid, 1)
			assert.NotEqual(t, "0x0", ret(pid[0]))
			ex := find(recs, "api", "exit")
			require.Len(t, ex, 1)
			assert.Nil(t, ex[0].Ret, "exit does not return")
			assert.Equal(t, "7", ex[0].Args[0].Value)

			if land == UserlandWine {
				nw := find(recs, "syscall", "NtWriteFile")
				require.NotEmpty(t, nw)
				assert.Equal(t, "STATUS_SUCCESS", nw[0].Status)
			} else {
				assert.Empty(t, find(recs, "syscall", "NtWriteFile"))
			}
		})
	}
}

// TestCatchAPI: catch api stops at WriteFile's entry with the arguments
// decoded in the stop's text; the run goes on to the exit; catch syscall
// stops after NtWriteFile (Wine); delete removes them.
func TestCatchAPI(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/apitrace.c", testkit.MinGW, "-O0")
	for _, land := range []string{UserlandSynth, UserlandWine} {
		t.Run(land, func(t *testing.T) {
			tg := newTarget(t, Config{Program: exe, Userland: land})
			var out bytes.Buffer
			require.NoError(t, debuggeetest.View(tg).Monitor("catch api kernel32!WriteFile", &out))
			assert.Contains(t, out.String(), "catch 1: api kernel32!WriteFile")
			out.Reset()
			require.NoError(t, debuggeetest.View(tg).Monitor("catch api GetLastError", &out))
			st, err := tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
			require.NoError(t, err)
			assert.Equal(t, rsp.SIGTRAP, st.Signal)
			assert.Regexp(t, `^catch 1: api (KERNEL32\.dll|kernel32)!WriteFile\(hFile=0x[0-9a-f]+, lpBuffer=0x[0-9a-f]+ "traced line\\n", nNumberOfBytesToWrite=12, .*\) from apitrace-[0-9a-f]+!main\+0x`, st.Description)
			// Then GetLastError (in Wine, printf's own WriteFile calls
			// come first: a catch point is hit from any caller).
			for i := 0; i < 10 && !strings.HasPrefix(st.Description, "catch 2:"); i++ {
				st, err = tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
				require.NoError(t, err)
				require.Equal(t, rsp.SIGTRAP, st.Signal, "%+v", st)
			}
			assert.Regexp(t, `^catch 2: api .*GetLastError\(\) from apitrace-[0-9a-f]+!main\+0x`, st.Description)
			out.Reset()
			require.NoError(t, debuggeetest.View(tg).Monitor("catch", &out))
			assert.Contains(t, out.String(), "catch 1: api kernel32!WriteFile at 0x")
			assert.Regexp(t, `catch 2: api GetLastError at 0x.*, 1 hit\(s\); last: .*GetLastError\(\) from`, out.String())
			if land == UserlandWine {
				out.Reset()
				require.NoError(t, debuggeetest.View(tg).Monitor("catch syscall NtTerminateProcess", &out))
			} else {
				assert.ErrorContains(t, debuggeetest.View(tg).Monitor("catch syscall NtWriteFile", &out), "synth userland makes no system calls")
			}
			require.NoError(t, debuggeetest.View(tg).Monitor("catch delete 1", &out))
			require.NoError(t, debuggeetest.View(tg).Monitor("catch delete 2", &out))
			st, err = tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
			require.NoError(t, err)
			if land == UserlandWine {
				assert.Contains(t, st.Description, "catch 3: syscall NtTerminateProcess(")
				st, err = tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
				require.NoError(t, err)
			}
			assert.Equal(t, rsp.StopExited, st.Kind, "%+v", st)
			assert.Equal(t, 7, st.ExitCode)

			// A restart keeps the catch points: set again in the new
			// guest, counted on.
			out.Reset()
			require.NoError(t, debuggeetest.View(tg).Monitor("catch api strlen", &out))
			_, err = tg.Restart(nil)
			require.NoError(t, err)
			for i := 0; i < 10 && !strings.Contains(st.Description, "strlen(str="); i++ {
				st, err = tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
				require.NoError(t, err)
			}
			assert.Contains(t, st.Description, `strlen(str=0x`)
			out.Reset()
			require.NoError(t, debuggeetest.View(tg).Monitor("catch", &out))
			assert.Regexp(t, `catch \d+: api strlen at 0x.*, [1-9]\d* hit\(s\)`, out.String())
		})
	}
}

// TestTraceWhileStepping: calls the debugger single-steps into and out
// of are traced as in a run (a step that ends on a hooked entry or
// return address must not lose the call).
func TestTraceWhileStepping(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/apitrace.c", testkit.MinGW, "-O0")
	for _, land := range []string{UserlandSynth, UserlandWine} {
		t.Run(land, func(t *testing.T) {
			var trace bytes.Buffer
			tg := newTarget(t, Config{Program: exe, Userland: land, TraceAPI: &trace, DeliverFaults: true})
			addr, err := debuggeetest.View(tg).Commands().Resolve("main")
			require.NoError(t, err)
			require.NoError(t, tg.InsertBreakpoint(rsp.BreakSoftware, addr, 1))
			st, err := tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads}})
			require.NoError(t, err)
			require.Equal(t, rsp.StopSWBreak, st.Kind, "%+v", st)
			require.NoError(t, tg.RemoveBreakpoint(rsp.BreakSoftware, addr, 1))
			// Step through main's calls (into WriteFile and strlen and out
			// again) for a while, then run to the end.
			for i := 0; i < 3000 && st.Kind != rsp.StopExited; i++ {
				st, err = tg.Resume([]rsp.ResumeAction{{Thread: int(tg.curThread()), Step: true}})
				require.NoError(t, err)
			}
			if st.Kind != rsp.StopExited {
				runToExit(t, tg)
			}
			recs := parseTrace(t, trace.Bytes())
			w := find(recs, "api", "WriteFile")
			require.Len(t, w, 1, "%s", trace.String())
			assert.Equal(t, "0x1", ret(w[0]))
			g := find(recs, "api", "GetLastError")
			require.Len(t, g, 1)
			assert.Equal(t, "0x4d2", ret(g[0]))
		})
	}
}

// TestParamsOf: a function the prototype table lacks shows as many
// arguments as the export tables give it (guest.Arity); one they lack
// too shows the four register arguments.
func TestParamsOf(t *testing.T) {
	assert.Len(t, paramsOf("WriteFile"), 5, "from the prototype table")
	assert.Equal(t, []param{{"a0", 'x'}, {"a1", 'x'}}, paramsOf("GetProcessHeaps"), "arity 2 from the export tables")
	assert.Empty(t, paramsOf("GetACP"), "arity 0 from the export tables")
	assert.Equal(t, genericParams, paramsOf("NoSuchFunction"))
}
