package testkit

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Toolchain is a way to build Windows x64 programs.
type Toolchain string

const (
	MinGW      Toolchain = "mingw-gcc"   // x86_64-w64-mingw32-gcc
	MinGWCXX   Toolchain = "mingw-g++"   // x86_64-w64-mingw32-g++ (C++ sources)
	ClangMinGW Toolchain = "clang-mingw" // clang --target=x86_64-w64-mingw32 -fuse-ld=lld
	ClangMSVC  Toolchain = "clang-msvc"  // clang --target=x86_64-pc-windows-msvc -fuse-ld=lld
)

var (
	buildMu  sync.Mutex
	fixtures = map[string]string{}
)

// Fixture builds a fixture of several steps once per test process: the
// first call runs build in a folder of its own, later calls with the same
// name return that folder. A build that fails (t.Fatal) is tried again by
// the next caller.
func Fixture(t testing.TB, name string, build func(t testing.TB, dir string)) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if d, ok := fixtures[name]; ok {
		return d
	}
	d, err := os.MkdirTemp(dir(t), name+"-")
	if err != nil {
		t.Fatal(err)
	}
	build(t, d)
	fixtures[name] = d
	return d
}

// BuildPE compiles a C (or, with MinGWCXX, C++) source (a path relative to the repository root)
// into a Windows x64 executable with the given toolchain and flags, and
// returns the executable's path. Results are cached per test process.
func BuildPE(t testing.TB, src string, tc Toolchain, flags ...string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	h := sha256.Sum256([]byte(src + "\x00" + string(tc) + "\x00" + strings.Join(flags, "\x00")))
	base := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(src), ".c"), ".cc")
	out := filepath.Join(dir(t), base+"-"+hex.EncodeToString(h[:6])+".exe")
	if _, err := os.Stat(out); err == nil {
		return out
	}
	in := filepath.Join(Root(), src)
	var cmd *exec.Cmd
	switch tc {
	case MinGW:
		gcc := Tool(t, "x86_64-w64-mingw32-gcc")
		cmd = exec.Command(gcc, append(append([]string{}, flags...), "-o", out, in)...)
	case MinGWCXX:
		gxx := Tool(t, "x86_64-w64-mingw32-g++")
		cmd = exec.Command(gxx, append(append([]string{}, flags...), "-o", out, in)...)
	case ClangMinGW:
		clang := Tool(t, "clang")
		gcc := Tool(t, "x86_64-w64-mingw32-gcc")
		libgcc, err := exec.Command(gcc, "-print-libgcc-file-name").Output()
		if err != nil {
			t.Fatalf("%s -print-libgcc-file-name: %v", gcc, err)
		}
		args := []string{"--target=x86_64-w64-mingw32", "-fuse-ld=lld",
			"-L" + filepath.Dir(strings.TrimSpace(string(libgcc)))}
		cmd = exec.Command(clang, append(append(args, flags...), "-o", out, in)...)
	case ClangMSVC:
		clang := Tool(t, "clang")
		args := []string{"--target=x86_64-pc-windows-msvc", "-fuse-ld=lld"}
		cmd = exec.Command(clang, append(append(args, flags...), "-o", out, in)...)
	default:
		t.Fatalf("unknown toolchain %q", tc)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s with %s: %v\n%s", src, tc, err, b)
	}
	return out
}

// BuildELF compiles a C or assembler source (a path relative to the
// repository root) with the host's gcc and flags into a Linux x86-64
// program or object, cached per test process like BuildPE.
func BuildELF(t testing.TB, src string, flags ...string) string {
	t.Helper()
	return BuildWith(t, src, ".elf", append([]string{"gcc"}, flags...)...)
}

// BuildWith compiles src (relative to the repository root) with the
// command line cmd (a compiler and its flags; "-o OUT SRC" is appended)
// and returns the output's path, ending in ext. The compiler is a tool:
// missing, it skips or fails as RequireTool does. Cached per test
// process on (src, cmd).
func BuildWith(t testing.TB, src, ext string, cmd ...string) string {
	t.Helper()
	cc := RequireTool(t, cmd[0])
	buildMu.Lock()
	defer buildMu.Unlock()
	h := sha256.Sum256([]byte(src + "\x00" + strings.Join(cmd, "\x00")))
	base := strings.TrimSuffix(filepath.Base(src), filepath.Ext(src))
	out := filepath.Join(dir(t), base+"-"+hex.EncodeToString(h[:6])+ext)
	if _, err := os.Stat(out); err == nil {
		return out
	}
	in := src
	if !filepath.IsAbs(in) {
		in = filepath.Join(Root(), src)
	}
	c := exec.Command(cc, append(append([]string{}, cmd[1:]...), "-o", out, in)...)
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("build %s with %s: %v\n%s", src, strings.Join(cmd, " "), err, b)
	}
	return out
}
