package guest

import (
	"strings"
	"testing"
)

func TestRunAPIProgram(t *testing.T) {
	exe := buildC(t, "apis", "apis.c", mingwGCC("-O1"))
	r := runUnicorn(t, exe, Config{Args: []string{"x y"}, Env: []string{"GUESTVAR=from host", `PATH=C:\Windows`}}, nil)
	want := []string{
		"valloc ok aligned=1 q=48 base_ok=1 size=0x2000 state=0x1000 prot=0x4",
		"vprotect 1 old=0x4 now=0x2 size=0x1000",
		"vfree 1",
		"exe header type=0x1000000 prot=0x2",
		"tls slot value 0000000000001234 thread var 6",
		"heap size 128 zero 0",
		"Hello, heap 11 1 comma",
		"env GUESTVAR=from host (9) getenv=from host",
		"env NEWVAR=set missing=0 err=203",
		`cmdline C:\rspstub\apis.exe "x y"`,
		`argv 2: C:\rspstub\apis.exe|x y`,
		`module C:\rspstub\apis.exe`,
		"kernel32 from address 1",
		"lasterror 1234 pid 1 tid 1",
		"qpf 10000000 monotonic 1 filetime>2020 1",
		"WriteFile",
		"WriteConsoleW \u263a",
		"mb->wide 5 wide->mb 6 café",
		"sprintf 0003.142|ab    | strtol 31 atoi -17",
		"atexit 2 (order 1)",
		"atexit 1 (order 2)",
	}
	got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	for i := 0; i < len(want) || i < len(got); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("line %d:\n got %q\nwant %q", i+1, g, w)
		}
	}
	if r.exitCode != 42 || r.unimplemented != "" {
		t.Errorf("exit %d unimplemented %q", r.exitCode, r.unimplemented)
	}
}
