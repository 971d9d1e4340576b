package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
)

// runDemo builds the seed scenario as demo.exe and runs "rspstub run" on
// it in-process.
func runDemo(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	src := testkit.BuildPE(t, "examples/demo/demo.c", testkit.MinGW, "-O0", "-g")
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	exe := filepath.Join(t.TempDir(), "demo.exe")
	require.NoError(t, os.WriteFile(exe, b, 0o755))
	for i, a := range args {
		if a == "PROG" {
			args[i] = exe
		}
	}
	var o, e bytes.Buffer
	code = run(append([]string{"run"}, synthUnlessSaid(args)...), &o, &e)
	return o.String(), e.String(), code
}

// synthUnlessSaid runs the synthesized userland unless the arguments
// choose one: these tests were written for its module names and traps;
// the wine userland has its own tests.
func synthUnlessSaid(args []string) []string {
	for _, a := range args {
		if strings.HasPrefix(a, "--userland") || strings.HasPrefix(a, "-userland") {
			return args
		}
	}
	return append([]string{"--userland", "synth"}, args...)
}

// runJSON is the documented schema of "rspstub run --json"; frames follow
// "monitor bt -json".
type runJSON struct {
	Program     string  `json:"program"`
	Break       string  `json:"break"`
	Address     string  `json:"address"`
	Hit         bool    `json:"hit"`
	Hits        int     `json:"hits"`
	Count       int     `json:"count"`
	Stop        string  `json:"stop"`
	Description *string `json:"description"`
	ExitCode    *int    `json:"exit_code"`
	Frames      []struct {
		Index  int               `json:"index"`
		PC     string            `json:"pc"`
		SP     string            `json:"sp"`
		Module *string           `json:"module"`
		RVA    *string           `json:"rva"`
		Symbol *string           `json:"symbol"`
		Offset *string           `json:"offset"`
		File   *string           `json:"file"`
		Line   *int              `json:"line"`
		Trust  string            `json:"trust"`
		Regs   map[string]string `json:"regs"`
		Saved  map[string]string `json:"saved"`
	} `json:"frames"`
	Regs map[string]string `json:"regs"`
}

func isHex(s string) bool {
	h, ok := strings.CutPrefix(s, "0x")
	_, err := strconv.ParseUint(h, 16, 64)
	return ok && h != "" && err == nil
}

func TestRunJSON(t *testing.T) {
	out, errOut, code := runDemo(t, "PROG", "--break", "d", "--json", "--regs")
	require.Zero(t, code, "exit code\nstdout %s\nstderr %s", out, errOut)
	// Exactly one JSON object on stdout; the guest's output went to stderr.
	dec := json.NewDecoder(strings.NewReader(out))
	var r runJSON
	require.NoError(t, dec.Decode(&r), "stdout is not JSON:\n%s", out)
	require.False(t, dec.More(), "more than one JSON value on stdout:\n%s", out)
	assert.Contains(t, errOut, "c: 3", "guest output must go to stderr")
	assert.NotContains(t, out, "c: 3", "guest output must go to stderr only")
	assert.True(t, r.Hit, "result %+v: hit", r)
	assert.Equal(t, [2]int{1, 1}, [2]int{r.Hits, r.Count}, "result %+v: hits and count", r)
	assert.Equal(t, "breakpoint", r.Stop, "result %+v: stop", r)
	assert.Equal(t, "d", r.Break, "result %+v: break", r)
	assert.True(t, isHex(r.Address), "result %+v: address", r)
	assert.Nil(t, r.ExitCode, "result %+v: exit code", r)
	want := []string{"demo.exe!d", "demo.exe!c", "demo.exe!b", "demo.exe!a", "demo.exe!main",
		"demo.exe!__tmainCRTStartup", "demo.exe!mainCRTStartup", "KERNEL32.dll!BaseThreadInitThunk", "ntdll.dll!RtlUserThreadStart"}
	require.Len(t, r.Frames, len(want), "frames")
	for i, f := range r.Frames {
		assert.Equal(t, i, f.Index, "frame %d: index", i)
		if !assert.NotNil(t, f.Module, "frame %d: module", i) || !assert.NotNil(t, f.Symbol, "frame %d: symbol", i) {
			continue
		}
		assert.Equal(t, want[i], *f.Module+"!"+*f.Symbol, "frame %d", i)
		if assert.NotNil(t, f.RVA, "frame %d: rva", i) {
			assert.True(t, isHex(*f.RVA), "frame %d: rva %q not a hex string", i, *f.RVA)
		}
		if assert.NotNil(t, f.Offset, "frame %d: offset", i) {
			assert.True(t, isHex(*f.Offset), "frame %d: offset %q not a hex string", i, *f.Offset)
		}
		assert.True(t, isHex(f.PC) && isHex(f.SP), "frame %d: pc %q, sp %q not hex strings", i, f.PC, f.SP)
		for k, v := range f.Regs {
			assert.True(t, isHex(v), "frame %d: regs.%s = %q", i, k, v)
		}
		assert.Equal(t, f.PC, f.Regs["rip"], "frame %d: regs.rip against pc", i)
		assert.Equal(t, f.SP, f.Regs["rsp"], "frame %d: regs.rsp against sp", i)
	}
	assert.Equal(t, r.Address, r.Frames[0].PC, "frame 0 pc, against the breakpoint")
	assert.Equal(t, r.Address, r.Regs["rip"], "regs: rip at the breakpoint")
	assert.Equal(t, "0x4", r.Regs["rcx"], "regs: rcx = 4 (d's argument)")
}

func TestRunText(t *testing.T) {
	out, errOut, code := runDemo(t, "--count", "2", "PROG", "--break", "msvcrt!fputc", "--bt", "--regs")
	require.Zero(t, code, "exit code\nstdout %s\nstderr %s", out, errOut)
	for _, want := range []string{"breakpoint msvcrt!fputc", "hit 2 times", "msvcrt!fputc", "demo!main+", "ntdll!RtlUserThreadStart+", "-- end of stack", "rip    00007ffb"} {
		assert.Contains(t, out, want, "no %q in\n%s", want, out)
	}
}

func TestRunExitCodes(t *testing.T) {
	// The program ends before the second hit of d: exit 1, in JSON too.
	out, _, code := runDemo(t, "PROG", "--break", "d", "--count", "2", "--json")
	var r runJSON
	assert.Equal(t, 1, code, "exit code")
	if assert.NoError(t, json.Unmarshal([]byte(out), &r), "result %s", out) {
		assert.False(t, r.Hit, "result %s: hit", out)
		assert.Equal(t, 1, r.Hits, "result %s: hits", out)
		assert.Equal(t, "exited", r.Stop, "result %s: stop", out)
		if assert.NotNil(t, r.ExitCode, "result %s: exit code", out) {
			assert.Equal(t, 11, *r.ExitCode, "result %s: exit code", out)
		}
		assert.Nil(t, r.Frames, "result %s: frames", out)
	}
	for _, args := range [][]string{
		{"PROG", "--break", "nosuch"},            // unknown symbol
		{"PROG", "--break", "zz!d"},              // unknown module
		{"PROG", "--break", "d", "--count", "0"}, // bad count
		{"/nonexistent/x.exe", "--break", "d"},   // no program
		{"--break", "d"},                         // no program
		{"PROG", "--bogus"},                      // bad flag
	} {
		_, errOut, code := runDemo(t, args...)
		assert.Equal(t, 2, code, "run %v: exit code", args)
		assert.NotEmpty(t, errOut, "run %v: stderr", args)
	}
}

// TestRunFault: a guest that faults before the breakpoint's second hit
// ends the run with exit 1, the fault described, and the backtrace of
// the faulting frame.
func TestRunFault(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/nullwrite.c", testkit.MinGW, "-O0")
	var o, e bytes.Buffer
	code := run([]string{"run", "--userland", "synth", exe, "--break", "main", "--count", "2", "--json"}, &o, &e)
	var r runJSON
	require.Equal(t, 1, code, "exit code\n%s\n%s", o.String(), e.String())
	require.NoError(t, json.Unmarshal(o.Bytes(), &r), "result\n%s\n%s", o.String(), e.String())
	assert.Equal(t, "signal", r.Stop, "result %s: stop", o.String())
	if assert.NotNil(t, r.Description, "result %s: description", o.String()) {
		assert.Contains(t, *r.Description, "access violation", "result: description")
	}
	if assert.GreaterOrEqual(t, len(r.Frames), 2, "result %s: frames", o.String()) && assert.NotNil(t, r.Frames[1].Symbol, "result %s: frame 1", o.String()) {
		assert.Equal(t, "main", *r.Frames[1].Symbol, "result %s: frame 1", o.String())
	}
}

// TestRunBreakInCallback: a breakpoint on the first instruction of a
// comparator that the emulated qsort calls back is hit.
func TestRunBreakInCallback(t *testing.T) {
	exe := testkit.BuildPE(t, "guest/testdata/chain.c", testkit.MinGW, "-O0", "-g")
	var o, e bytes.Buffer
	code := run([]string{"run", "--userland", "synth", exe, "--break", "cmp", "--count", "2", "--json"}, &o, &e)
	var r runJSON
	require.Zero(t, code, "exit code\n%s\n%s", o.String(), e.String())
	require.NoError(t, json.Unmarshal(o.Bytes(), &r), "result\n%s\n%s", o.String(), e.String())
	require.True(t, r.Hit, "result %s: hit", o.String())
	require.Equal(t, 2, r.Hits, "result %s: hits", o.String())
	require.GreaterOrEqual(t, len(r.Frames), 3, "frames %s", o.String())
	var syms []string
	for _, f := range r.Frames[:3] {
		require.NotNil(t, f.Symbol, "frames %s", o.String())
		syms = append(syms, *f.Symbol)
	}
	assert.Equal(t, []string{"cmp", "qsort", "main"}, syms, "the first frames")
}

// TestRunUnwinder: --unwinder reaches the monitor's walk: with cfi the
// frames unwound from demo's functions (which have DWARF CFI) say "cfi",
// with pdata none does, and the frames are the same.
func TestRunUnwinder(t *testing.T) {
	var pcs [2][]string
	for k, set := range []string{"pdata", "cfi"} {
		stdout, stderr, code := runDemo(t, "--break", "d", "--json", "--unwinder", set, "PROG")
		require.Zero(t, code, "--unwinder %s: exit code\n%s", set, stderr)
		var res runJSON
		require.NoError(t, json.Unmarshal([]byte(stdout), &res))
		n := 0
		for _, f := range res.Frames {
			pcs[k] = append(pcs[k], f.PC+"/"+f.SP)
			if f.Trust == "cfi" {
				n++
			}
		}
		if set == "cfi" {
			assert.GreaterOrEqual(t, n, 6, "--unwinder cfi: frames found by CFI of %d", len(res.Frames))
		} else {
			assert.Zero(t, n, "--unwinder pdata: frames found by CFI of %d", len(res.Frames))
		}
	}
	assert.Len(t, pcs[0], 9, "frames with pdata")
	assert.Equal(t, pcs[0], pcs[1], "frames with pdata and with cfi")
	_, stderr, code := runDemo(t, "--break", "d", "--unwinder", "dwarf", "PROG")
	assert.Equal(t, runUsage, code, "--unwinder dwarf: exit code")
	assert.Contains(t, stderr, "auto, pdata or cfi", "--unwinder dwarf")
}

// TestRunBreakExitProcess: a mingw program that returns from main ends
// through KERNEL32!ExitProcess in both userlands, called by the C
// runtime's exit, so a breakpoint there is hit (issue 16 item 9).
func TestRunBreakExitProcess(t *testing.T) {
	for _, land := range []string{"synth", "wine"} {
		t.Run(land, func(t *testing.T) {
			if land == "wine" {
				testkit.NeedWine(t)
			}
			stdout, stderr, code := runDemo(t, "--userland", land, "--break", "KERNEL32!ExitProcess", "--json", "PROG")
			require.Equal(t, runHit, code, stderr)
			var res runJSON
			require.NoError(t, json.Unmarshal([]byte(stdout), &res))
			require.True(t, res.Hit)
			require.GreaterOrEqual(t, len(res.Frames), 3)
			var names []string
			for _, f := range res.Frames {
				if f.Symbol != nil {
					names = append(names, *f.Symbol)
				}
			}
			assert.Equal(t, "ExitProcess", names[0])
			assert.Equal(t, "exit", names[1], "called by msvcrt!exit: %v", names)
			assert.Contains(t, names, "__tmainCRTStartup")
		})
	}
}

// TestRunMinidump: --minidump writes the dump at the breakpoint, and on
// a fault no handler took (the exit status stays the program's); a
// device path is refused before the program runs; a program that exits
// gets no dump.
func TestRunMinidump(t *testing.T) {
	dir := t.TempDir()
	at := filepath.Join(dir, "at-d.dmp")
	_, stderr, code := runDemo(t, "--break", "d", "--minidump", at, "PROG")
	require.Equal(t, runHit, code, stderr)
	assert.Contains(t, stderr, "wrote "+at+": 1 thread(s)")
	b, err := os.ReadFile(at)
	require.NoError(t, err)
	assert.Equal(t, "MDMP", string(b[:4]))

	_, stderr, code = runDemo(t, "--minidump", os.DevNull, "PROG")
	assert.Equal(t, runUsage, code)
	assert.Contains(t, stderr, "not a regular file")

	exited := filepath.Join(dir, "exited.dmp")
	_, stderr, code = runDemo(t, "--minidump", exited, "PROG")
	assert.Equal(t, 11, code, stderr)
	assert.Contains(t, stderr, "not written: the program ended")
	assert.NoFileExists(t, exited)

	testkit.NeedWine(t)
	exe := testkit.BuildPE(t, "tests/testdata/nullwrite.c", testkit.MinGW, "-O0")
	var o, e bytes.Buffer
	plain := run([]string{"run", "--userland", "wine", exe}, &o, &e)
	fault := filepath.Join(dir, "fault.dmp")
	o.Reset()
	e.Reset()
	code = run([]string{"run", "--userland", "wine", "--minidump", fault, exe}, &o, &e)
	assert.Equal(t, plain, code, "the exit status is the program's: %s", e.String())
	assert.Contains(t, e.String(), "wrote "+fault)
	b, err = os.ReadFile(fault)
	require.NoError(t, err)
	assert.Contains(t, string(b), "\x05\x00\x00\xc0", "EXCEPTION_ACCESS_VIOLATION in the exception stream")
}

// TestRunExitReport: run without --break on a program that dies of an
// access violation in the wine userland (Wine's top-level filter ends
// it with the exception's code) says so on stderr, with the exit status
// Windows gives (0xc0000005, low byte 5); a plain nonzero exit says
// nothing more (issue 16 item 9).
func TestRunExitReport(t *testing.T) {
	testkit.NeedWine(t)
	exe := testkit.BuildPE(t, "tests/testdata/nullwrite.c", testkit.MinGW, "-O0")
	var o, e bytes.Buffer
	code := run([]string{"run", "--userland", "wine", exe}, &o, &e)
	assert.Equal(t, 5, code)
	assert.Contains(t, e.String(), "rspstub run: the program exited with code 3221225477 (0xc0000005): no handler took access violation (0xc0000005): write to 0x0 at 0x")
	o.Reset()
	e.Reset()
	exe = testkit.BuildPE(t, "tests/testdata/apitrace.c", testkit.MinGW, "-O0")
	code = run([]string{"run", "--userland", "wine", exe}, &o, &e)
	assert.Equal(t, 7, code)
	assert.NotContains(t, e.String(), "rspstub run:")
}
