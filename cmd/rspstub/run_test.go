package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	// Exactly one JSON object on stdout; the guest's output went to stderr.
	dec := json.NewDecoder(strings.NewReader(out))
	var r runJSON
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value on stdout:\n%s", out)
	}
	if !strings.Contains(errOut, "c: 3") || strings.Contains(out, "c: 3") {
		t.Errorf("guest output must go to stderr only: stdout %q stderr %q", out, errOut)
	}
	if !r.Hit || r.Hits != 1 || r.Count != 1 || r.Stop != "breakpoint" || r.Break != "d" || !isHex(r.Address) || r.ExitCode != nil {
		t.Errorf("result %+v", r)
	}
	want := []string{"demo.exe!d", "demo.exe!c", "demo.exe!b", "demo.exe!a", "demo.exe!main",
		"demo.exe!__tmainCRTStartup", "demo.exe!mainCRTStartup", "KERNEL32.dll!BaseThreadInitThunk", "ntdll.dll!RtlUserThreadStart"}
	if len(r.Frames) != len(want) {
		t.Fatalf("%d frames, want %d", len(r.Frames), len(want))
	}
	for i, f := range r.Frames {
		if f.Index != i || f.Module == nil || f.Symbol == nil || *f.Module+"!"+*f.Symbol != want[i] {
			t.Errorf("frame %d: %+v, want %s", i, f, want[i])
			continue
		}
		if !isHex(f.PC) || !isHex(f.SP) || f.RVA == nil || !isHex(*f.RVA) || f.Offset == nil || !isHex(*f.Offset) {
			t.Errorf("frame %d: values not hex strings: %+v", i, f)
		}
		for k, v := range f.Regs {
			if !isHex(v) {
				t.Errorf("frame %d: regs.%s = %q", i, k, v)
			}
		}
		if f.Regs["rip"] != f.PC || f.Regs["rsp"] != f.SP {
			t.Errorf("frame %d: regs.rip/rsp %q/%q, pc/sp %q/%q", i, f.Regs["rip"], f.Regs["rsp"], f.PC, f.SP)
		}
	}
	if r.Frames[0].PC != r.Address {
		t.Errorf("frame 0 pc %s, breakpoint %s", r.Frames[0].PC, r.Address)
	}
	if r.Regs["rip"] != r.Address || r.Regs["rcx"] != "0x4" {
		t.Errorf("regs %v: want rip at the breakpoint and rcx = 4 (d's argument)", r.Regs)
	}
}

func TestRunText(t *testing.T) {
	out, errOut, code := runDemo(t, "--count", "2", "PROG", "--break", "msvcrt!fputc", "--bt", "--regs")
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	for _, want := range []string{"breakpoint msvcrt!fputc", "hit 2 times", "msvcrt!fputc", "demo!main+", "ntdll!RtlUserThreadStart+", "-- end of stack", "rip    00007ffb"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}

func TestRunExitCodes(t *testing.T) {
	// The program ends before the second hit of d: exit 1, in JSON too.
	out, _, code := runDemo(t, "PROG", "--break", "d", "--count", "2", "--json")
	var r runJSON
	if code != 1 || json.Unmarshal([]byte(out), &r) != nil || r.Hit || r.Hits != 1 || r.Stop != "exited" || r.ExitCode == nil || *r.ExitCode != 11 || r.Frames != nil {
		t.Errorf("exit %d, result %s", code, out)
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
		if code != 2 || errOut == "" {
			t.Errorf("run %v: exit %d (want 2), stderr %q", args, code, errOut)
		}
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
	if err := json.Unmarshal(o.Bytes(), &r); err != nil || code != 1 {
		t.Fatalf("exit %d, %v\n%s\n%s", code, err, o.String(), e.String())
	}
	if r.Stop != "signal" || r.Description == nil || !strings.Contains(*r.Description, "access violation") || len(r.Frames) < 2 ||
		r.Frames[1].Symbol == nil || *r.Frames[1].Symbol != "main" {
		t.Errorf("result %s", o.String())
	}
}

// TestRunBreakInCallback: a breakpoint on the first instruction of a
// comparator that the emulated qsort calls back is hit.
func TestRunBreakInCallback(t *testing.T) {
	exe := testkit.BuildPE(t, "guest/testdata/chain.c", testkit.MinGW, "-O0", "-g")
	var o, e bytes.Buffer
	code := run([]string{"run", "--userland", "synth", exe, "--break", "cmp", "--count", "2", "--json"}, &o, &e)
	var r runJSON
	if err := json.Unmarshal(o.Bytes(), &r); err != nil || code != 0 || !r.Hit || r.Hits != 2 {
		t.Fatalf("exit %d, %v\n%s\n%s", code, err, o.String(), e.String())
	}
	if len(r.Frames) < 3 || *r.Frames[0].Symbol != "cmp" || *r.Frames[1].Symbol != "qsort" || *r.Frames[2].Symbol != "main" {
		t.Errorf("frames %s", o.String())
	}
}

// TestRunUnwinder: --unwinder reaches the monitor's walk: with cfi the
// frames unwound from demo's functions (which have DWARF CFI) say "cfi",
// with pdata none does, and the frames are the same.
func TestRunUnwinder(t *testing.T) {
	var pcs [2][]string
	for k, set := range []string{"pdata", "cfi"} {
		stdout, stderr, code := runDemo(t, "--break", "d", "--json", "--unwinder", set, "PROG")
		if code != 0 {
			t.Fatalf("--unwinder %s: exit %d\n%s", set, code, stderr)
		}
		var res runJSON
		require.NoError(t, json.Unmarshal([]byte(stdout), &res))
		n := 0
		for _, f := range res.Frames {
			pcs[k] = append(pcs[k], f.PC+"/"+f.SP)
			if f.Trust == "cfi" {
				n++
			}
		}
		if (set == "cfi") != (n >= 6) || (set == "pdata" && n != 0) {
			t.Errorf("--unwinder %s: %d frames found by CFI of %d", set, n, len(res.Frames))
		}
	}
	if strings.Join(pcs[0], " ") != strings.Join(pcs[1], " ") || len(pcs[0]) != 9 {
		t.Errorf("frames differ: pdata %v, cfi %v", pcs[0], pcs[1])
	}
	if _, stderr, code := runDemo(t, "--break", "d", "--unwinder", "dwarf", "PROG"); code != runUsage || !strings.Contains(stderr, "auto, pdata or cfi") {
		t.Errorf("--unwinder dwarf: exit %d, %s", code, stderr)
	}
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
