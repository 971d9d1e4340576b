package guest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func buildDLLSet(t *testing.T) string {
	t.Helper()
	needTool(t, "x86_64-w64-mingw32-gcc")
	if d, ok := buildCache.Load("dllset/x"); ok {
		return filepath.Dir(d.(string))
	}
	dir, err := os.MkdirTemp("", "guestdll")
	if err != nil {
		t.Fatal(err)
	}
	src := func(n string) string { p, _ := filepath.Abs(filepath.Join("testdata", n)); return p }
	steps := [][]string{
		{"-shared", "-Wl,--image-base=0x180000000", "-o", "dllb.dll", src("dllb.c")},
		{"-shared", "-Wl,--image-base=0x180000000", "-o", "dlla.dll", src("dlla.c"), "dllb.dll"},
		{"-shared", "-o", filepath.Join("sub", "dllc.dll"), src("dllc.c")},
		{"-o", "usedll.exe", src("usedll.c"), "dlla.dll"},
	}
	if err := exec.Command("mkdir", "-p", filepath.Join(dir, "sub")).Run(); err != nil {
		t.Fatal(err)
	}
	run := func(s []string) error {
		cmd := exec.Command("x86_64-w64-mingw32-gcc", s...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("gcc %v: %v\n%s", s, err, out)
		}
		return nil
	}
	// dllc is independent of the chain dllb <- dlla <- usedll.exe.
	errc := make(chan error, 1)
	go func() { errc <- run(steps[2]) }()
	for _, i := range []int{0, 1, 3} {
		if err := run(steps[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	buildCache.Store("dllset/x", filepath.Join(dir, "x"))
	return dir
}

func TestRealDLLs(t *testing.T) {
	dir := buildDLLSet(t)
	r := runUnicorn(t, filepath.Join(dir, "usedll.exe"), Config{DLLPaths: []string{filepath.Join(dir, "sub")}}, nil)
	want := "dllb attach\n" +
		"dlla attach (static=1)\n" +
		"add_mul(2,5)=21\n" +
		"dllc attach (static=0)\n" +
		"twice(21)=42 missing=0000000000000000 by-ordinal=1\n" +
		"kernel32 ok\n"
	if r.stdout != want || r.exitCode != 0 {
		t.Errorf("exit %d stdout:\n%s\nwant:\n%s", r.exitCode, r.stdout, want)
	}
	var order []string
	for _, m := range r.p.Modules() {
		order = append(order, m.Name)
	}
	t.Logf("modules %v", order)
	a, b := r.p.findModule("dlla.dll"), r.p.findModule("dllb.dll")
	if a == nil || b == nil || r.p.findModule("dllc.dll") == nil {
		t.Fatalf("modules %v", order)
	}
	if (a.Base == 0x180000000) == (b.Base == 0x180000000) {
		t.Errorf("exactly one of dlla (%#x) and dllb (%#x) should be at its preferred base", a.Base, b.Base)
	}
	if !strings.HasSuffix(strings.Join(order, ","), "dllc.dll") {
		t.Errorf("dllc not loaded last: %v", order)
	}
}

func TestMissingDLL(t *testing.T) {
	dir := buildDLLSet(t)
	// Without the folder holding dllc.dll LoadLibrary fails (returns NULL),
	// which the program survives; without dlla.dll loading fails.
	tmp := t.TempDir()
	exe := filepath.Join(tmp, "usedll.exe")
	if err := exec.Command("cp", filepath.Join(dir, "usedll.exe"), exe).Run(); err != nil {
		t.Fatal(err)
	}
	_, err := Load(newFakeMachine(), Config{Program: exe})
	if err == nil || !strings.Contains(err.Error(), "dlla.dll") {
		t.Fatalf("err = %v", err)
	}
}
