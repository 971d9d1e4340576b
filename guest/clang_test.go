package guest

import (
	"github.com/rspstub/rspstub/internal/testkit"

	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const mingwLib = "/usr/x86_64-w64-mingw32/lib"

// TestRunClangMSVCTarget runs a program built by clang's MSVC target that
// uses KERNEL32 directly and the UCRT through api-ms-win-crt-* forwarders.
func TestRunClangMSVCTarget(t *testing.T) {
	needTool(t, "clang")
	testkit.RequireFile(t, filepath.Join(mingwLib, "libucrt.a"), "mingw-w64's libucrt.a")
	exe := buildC(t, "msvc", "msvc.c", []string{"clang", "--target=x86_64-pc-windows-msvc", "-fuse-ld=lld", "-nostdlib",
		"-fasynchronous-unwind-tables", "-Wl,-entry:start", "-Wl,-subsystem:console",
		filepath.Join(mingwLib, "libkernel32.a"), filepath.Join(mingwLib, "libucrt.a")})
	r := runUnicorn(t, exe, Config{}, nil)
	want := "WriteFile works\n" +
		"malloc ok\n" +
		"snprintf gave 22: \"truncated text-\"\n" +
		"1.234568e+04 1e-05 0000000000001234\n"
	if r.stdout != want || r.exitCode != 42 || r.unimplemented != "" {
		t.Errorf("exit %d unimplemented %q stdout:\n%s\nwant:\n%s", r.exitCode, r.unimplemented, r.stdout, want)
	}
	var names []string
	for _, m := range r.p.Modules() {
		names = append(names, m.Name)
	}
	joined := strings.Join(names, " ")
	if !strings.Contains(joined, "api-ms-win-crt-stdio-l1-1-0.dll") || !strings.Contains(joined, "ucrtbase.dll") {
		t.Errorf("modules: %s", joined)
	}
}

// TestRunClangMinGWTarget runs the chain program built by clang's mingw
// target.
func TestRunClangMinGWTarget(t *testing.T) {
	needTool(t, "clang")
	gcc := needTool(t, "x86_64-w64-mingw32-gcc")
	lib, err := exec.Command(gcc, "-print-libgcc-file-name").Output()
	if err != nil {
		t.Fatal(err)
	}
	exe := buildC(t, "chain-clang", "chain.c", []string{"clang", "--target=x86_64-w64-mingw32", "-fuse-ld=lld",
		"-O2", "-L" + filepath.Dir(strings.TrimSpace(string(lib)))})
	r := runUnicorn(t, exe, Config{}, nil)
	if r.stdout != "in a\nin b\nin c\nin d\n..\n1 2 3\n" && !strings.HasSuffix(r.stdout, "\n1 2 3\n") {
		t.Errorf("stdout %q", r.stdout)
	}
	if r.exitCode != 0 || r.unimplemented != "" {
		t.Errorf("exit %d unimplemented %q", r.exitCode, r.unimplemented)
	}
}
