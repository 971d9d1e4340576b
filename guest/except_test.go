package guest

import "testing"

// TestRunCPPExceptions runs a mingw g++ program that throws through frames
// with destructors (cleanup landing pads, _Unwind_Resume) and rethrows.
func TestRunCPPExceptions(t *testing.T) {
	exe := buildC(t, "except", "except.cc", []string{"x86_64-w64-mingw32-g++", "-O1", "-static"})
	r := runUnicorn(t, exe, Config{}, nil)
	want := "~Guard inner\n~Guard inner\n~Guard inner\n~Guard outer\ncaught boom\ninner 7\nrethrown 7\n"
	if r.stdout != want || r.exitCode != 3 || r.unimplemented != "" {
		t.Errorf("exit %d unimplemented %q stderr %q stdout:\n%s\nwant:\n%s", r.exitCode, r.unimplemented, r.stderr, r.stdout, want)
	}
	if len(r.p.conts) != 0 {
		t.Errorf("%d guest callbacks still pending after exit", len(r.p.conts))
	}
}

// TestRunCSEH runs C __try/__except/__finally built by clang's MSVC target
// (msvcrt's __C_specific_handler, implemented in Go).
func TestRunCSEH(t *testing.T) {
	needTool(t, "clang")
	exe := buildC(t, "seh", "seh.c", []string{"clang", "--target=x86_64-pc-windows-msvc", "-fuse-ld=lld", "-nostdlib",
		"-Wl,-entry:start", "-Wl,-subsystem:console", mingwLib + "/libkernel32.a", mingwLib + "/libmsvcrt.a"})
	r := runUnicorn(t, exe, Config{}, nil)
	want := "body\nfinally normal\nfinally during unwind\ncaught 0xE0000001\nconstant filter\n"
	if r.stdout != want || r.exitCode != 5 || r.unimplemented != "" {
		t.Errorf("exit %d unimplemented %q stderr %q stdout:\n%s\nwant:\n%s", r.exitCode, r.unimplemented, r.stderr, r.stdout, want)
	}
}
