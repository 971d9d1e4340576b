package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// RequireToolsEnv is the environment variable that turns a missing tool
// from a skip into a failure.
const RequireToolsEnv = "RSPSTUB_REQUIRE_TOOLS"

// RequireTools reports whether missing tools must fail tests
// (RSPSTUB_REQUIRE_TOOLS=1, as CI sets).
func RequireTools() bool { return os.Getenv(RequireToolsEnv) == "1" }

// Missing ends the test because something it needs from outside the repo
// is not there: it skips with the reason, or fails under
// RSPSTUB_REQUIRE_TOOLS=1. Every "tool or file not installed" path of
// every test goes through here.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if RequireTools() {
		t.Fatalf("%s (%s=1: required)", msg, RequireToolsEnv)
	}
	t.Skip("skipping: " + msg)
}

// RequireTool returns the path of an external tool found in PATH (or an
// absolute path that exists); without it the test skips, or fails under
// RSPSTUB_REQUIRE_TOOLS=1.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	return RequireToolAny(t, name)
}

// RequireToolAny is RequireTool for a tool known by several names (Debian
// installs lldb-vscode as lldb-vscode-14): the first one found.
func RequireToolAny(t testing.TB, names ...string) string {
	t.Helper()
	if p, ok := LookTool(names...); ok {
		return p
	}
	if len(names) == 1 {
		Missing(t, "%s is not installed", names[0])
	}
	Missing(t, "none of %s is installed", strings.Join(names, ", "))
	return ""
}

// RequireAllTools checks several tools at once (all are needed).
func RequireAllTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		RequireTool(t, n)
	}
}

// LookTool finds the first of names in PATH (absolute names are checked
// as files), without any policy: for tests that choose between tools.
func LookTool(names ...string) (string, bool) {
	for _, n := range names {
		if filepath.IsAbs(n) {
			if _, err := os.Stat(n); err == nil {
				return n, true
			}
			continue
		}
		if p, err := exec.LookPath(n); err == nil {
			return p, true
		}
	}
	return "", false
}

// Tool is RequireTool (the name the end-to-end tests grew up with).
func Tool(t testing.TB, name string) string {
	t.Helper()
	return RequireToolAny(t, name)
}

// ToolAny is RequireToolAny.
func ToolAny(t testing.TB, names ...string) string {
	t.Helper()
	return RequireToolAny(t, names...)
}

// RequireFile checks that a file installed by a package exists (libc,
// libc6-dbg's debug files, mingw's import libraries); what names the
// package for the message ("libc6-dbg").
func RequireFile(t testing.TB, path, what string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, "%s is not installed: %v", what, err)
	}
	return path
}

// RequireGlob returns the files matching pattern, sorted; none is a
// missing tool (what names the package).
func RequireGlob(t testing.TB, pattern, what string) []string {
	t.Helper()
	files, _ := filepath.Glob(pattern)
	if len(files) == 0 {
		Missing(t, "%s is not installed: nothing matches %s", what, pattern)
	}
	return files
}

// WineDLLDir is where Debian's libwine installs Wine 8's x86-64 PE DLLs.
const WineDLLDir = "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows"

// LibcPath is the host's x86-64 glibc, an ELF oracle for several tests.
const LibcPath = "/lib/x86_64-linux-gnu/libc.so.6"

// NeedWine skips (or fails under RSPSTUB_REQUIRE_TOOLS=1) when Wine 8's
// PE DLLs (Debian package libwine) are missing.
func NeedWine(t testing.TB) {
	t.Helper()
	RequireFile(t, filepath.Join(WineDLLDir, "ntdll.dll"), "Wine 8's PE DLLs (package libwine)")
}
