package corpus

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/rspstub/rspstub/internal/peimage"
	"github.com/rspstub/rspstub/internal/testkit"
)

// Places Debian and upstream builds put Wine's x86-64 PE DLLs and
// programs.
var wineDirs = []string{
	"/usr/lib/x86_64-linux-gnu/wine/x86_64-windows",
	"/usr/lib/wine/x86_64-windows",
	"/usr/local/lib/wine/x86_64-windows",
	"/opt/wine-stable/lib/wine/x86_64-windows",
}

// WineDir is the folder of Wine's x86-64 PE DLLs and programs, or "" when
// Wine's PE side (Debian package libwine) is not installed.
func WineDir() string {
	for _, d := range wineDirs {
		if _, err := os.Stat(filepath.Join(d, "ntdll.dll")); err == nil {
			return d
		}
	}
	return ""
}

// needWineDir returns WineDir or skips (fails under
// RSPSTUB_REQUIRE_TOOLS=1) when it is missing.
func needWineDir(t testing.TB) string {
	t.Helper()
	d := WineDir()
	if d == "" {
		testkit.Missing(t, "Wine's PE DLLs (Debian package libwine) are not installed; looked in %s",
			strings.Join(wineDirs, ", "))
	}
	return d
}

// CacheDir is where built programs are kept between test runs:
// $RSPSTUB_CORPUS_CACHE, else rspstub-corpus in the user's cache folder,
// else a folder in the system's temporary folder. Each program gets a
// folder named after a hash of everything that goes into it (sources,
// headers, flags, compiler version), so a stale build is never reused and
// old folders are only garbage (safe to delete at any time).
func CacheDir() (string, error) {
	if d := os.Getenv("RSPSTUB_CORPUS_CACHE"); d != "" {
		return d, os.MkdirAll(d, 0o755)
	}
	if base, err := os.UserCacheDir(); err == nil {
		d := filepath.Join(base, "rspstub-corpus")
		if os.MkdirAll(d, 0o755) == nil {
			return d, nil
		}
	}
	d := filepath.Join(os.TempDir(), "rspstub-corpus")
	return d, os.MkdirAll(d, 0o755)
}

// buildSlots bounds concurrent compiler runs: the CI machine has two
// cores, shared.
var buildSlots = make(chan struct{}, 2)

type buildResult struct {
	once sync.Once
	exe  string
	err  error
}

var (
	buildsMu sync.Mutex
	builds   = map[string]*buildResult{}
)

// Build compiles p once per test process (and once per cache, see
// CacheDir) and returns the executable, in a folder of its own with the
// DLLs it needs beside it, and a fresh working folder holding p.Files
// (removed when t ends). A missing tool skips t, or fails it under
// RSPSTUB_REQUIRE_TOOLS=1.
func (p Program) Build(t testing.TB) (exe, dir string) {
	t.Helper()
	tools := p.tools(t)
	buildsMu.Lock()
	r := builds[p.Name]
	if r == nil {
		r = &buildResult{}
		builds[p.Name] = r
	}
	buildsMu.Unlock()
	r.once.Do(func() {
		buildSlots <- struct{}{}
		defer func() { <-buildSlots }()
		r.exe, r.err = p.build(tools)
	})
	if r.err != nil {
		t.Fatalf("build %s: %v", p.Name, r.err)
	}
	dir = t.TempDir()
	for _, f := range p.Files {
		if err := copyFile(filepath.Join(SourceDir(), "files", f), filepath.Join(dir, f)); err != nil {
			t.Fatalf("%s: working folder: %v", p.Name, err)
		}
	}
	return r.exe, dir
}

// toolset is what one build needs, resolved once with the test's skip
// policy applied.
type toolset struct {
	driver  string // compiler driver, go, or Wine's PE folder for Wine
	lookup  string // gcc driver that finds runtime DLLs and libraries (-print-file-name)
	wineDir string // for telling system DLLs from runtime DLLs; may be ""
}

func (p Program) tools(t testing.TB) toolset {
	t.Helper()
	var ts toolset
	switch p.Toolchain {
	case Wine:
		ts.driver = needWineDir(t)
	case MinGW:
		ts.driver = testkit.Tool(t, "x86_64-w64-mingw32-gcc")
		ts.lookup = ts.driver
	case MinGWCxx:
		ts.driver = testkit.Tool(t, "x86_64-w64-mingw32-g++-posix")
		ts.lookup = ts.driver
	case ClangMinGW:
		ts.driver = testkit.Tool(t, "clang")
		testkit.Tool(t, "ld.lld")
		ts.lookup = testkit.Tool(t, "x86_64-w64-mingw32-gcc")
	case ClangMinGWCxx:
		ts.driver = testkit.Tool(t, "clang++")
		testkit.Tool(t, "ld.lld")
		ts.lookup = testkit.Tool(t, "x86_64-w64-mingw32-g++-posix")
	case ClangMSVC:
		ts.driver = testkit.Tool(t, "clang")
		testkit.Tool(t, "lld-link")
		ts.lookup = testkit.Tool(t, "x86_64-w64-mingw32-gcc")
	case Go:
		// go test puts its own GOROOT/bin first on PATH.
		ts.driver = testkit.Tool(t, "go")
	default:
		t.Fatalf("%s: unknown toolchain %q", p.Name, p.Toolchain)
	}
	ts.wineDir = WineDir()
	return ts
}

var (
	versionsMu sync.Mutex
	versions   = map[string]string{}
)

// toolVersion is the first line of `tool --version` (`go version`),
// part of the cache key so an upgraded compiler rebuilds everything.
func toolVersion(tool string) (string, error) {
	versionsMu.Lock()
	defer versionsMu.Unlock()
	if v, ok := versions[tool]; ok {
		return v, nil
	}
	arg := "--version"
	if filepath.Base(tool) == "go" {
		arg = "version"
	}
	out, err := exec.Command(tool, arg).Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v", tool, arg, err)
	}
	v, _, _ := strings.Cut(string(out), "\n")
	versions[tool] = v
	return v, nil
}

// builderVersion changes whenever this file changes what a build puts
// in its folder, so the cache never serves an older builder's result.
const builderVersion = 3

// key hashes everything the build of p depends on.
func (p Program) key(ts toolset) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "builder %d\x00", builderVersion)
	fmt.Fprintf(h, "%s\x00%q\x00%q\x00%q\x00", p.Toolchain, p.Flags, p.Libs, p.DLLs)
	var files []string
	switch p.Toolchain {
	case Wine:
		files = []string{filepath.Join(ts.driver, p.Sources[0])}
	case Go:
		ents, err := os.ReadDir(filepath.Join(SourceDir(), p.Sources[0]))
		if err != nil {
			return "", err
		}
		for _, e := range ents {
			files = append(files, filepath.Join(SourceDir(), p.Sources[0], e.Name()))
		}
	default:
		for _, s := range append(append([]string{}, p.Sources...), p.DLLs...) {
			files = append(files, filepath.Join(SourceDir(), s))
		}
		// Any local header may be included: hash them all.
		hdrs, _ := filepath.Glob(filepath.Join(SourceDir(), "*.h"))
		sort.Strings(hdrs)
		files = append(files, hdrs...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(f), len(b))
		h.Write(b)
	}
	if p.Toolchain != Wine {
		for _, tool := range []string{ts.driver, ts.lookup} {
			if tool == "" {
				continue
			}
			v, err := toolVersion(tool)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "%s\x00", v)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}

// exeName is the executable's file name: Wine's programs keep theirs
// (cmd.exe), ours are named after the program.
func (p Program) exeName() string {
	if p.Toolchain == Wine {
		return p.Sources[0]
	}
	return p.Name + ".exe"
}

func (p Program) build(ts toolset) (string, error) {
	if len(p.Sources) == 0 {
		return "", errors.New("no sources")
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	k, err := p.key(ts)
	if err != nil {
		return "", err
	}
	final := filepath.Join(cache, p.Name+"-"+k)
	exe := filepath.Join(final, p.exeName())
	if _, err := os.Stat(exe); err == nil {
		return exe, nil
	}
	// Build in a private folder and rename it into place, so other test
	// processes sharing the cache never see half a build.
	tmp, err := os.MkdirTemp(cache, p.Name+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := p.compile(ts, tmp); err != nil {
		return "", err
	}
	if p.Toolchain != Wine && p.Toolchain != Go {
		if err := copyRuntimeDLLs(ts, tmp, filepath.Join(tmp, p.exeName())); err != nil {
			return "", err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		if _, serr := os.Stat(exe); serr != nil {
			return "", err
		}
		// Another process finished the same build first.
	}
	return exe, nil
}

// compile runs the toolchain, writing the executable (and p's own DLLs)
// into out.
func (p Program) compile(ts toolset, out string) error {
	exe := filepath.Join(out, p.exeName())
	src := func(names []string) []string {
		var s []string
		for _, n := range names {
			s = append(s, filepath.Join(SourceDir(), n))
		}
		return s
	}
	switch p.Toolchain {
	case Wine:
		return copyFile(filepath.Join(ts.driver, p.Sources[0]), exe)
	case Go:
		cmd := exec.Command(ts.driver, append(append([]string{"build", "-trimpath"}, p.Flags...),
			"-o", exe, "./"+filepath.ToSlash(filepath.Join("tests", "corpus", "src", p.Sources[0])))...)
		cmd.Dir = testkit.Root()
		cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
		return run(cmd)
	}
	base, err := p.driverArgs(ts)
	if err != nil {
		return err
	}
	var linkDLLs []string
	for _, d := range p.DLLs {
		if p.Toolchain == ClangMSVC {
			return errors.New("DLLs of our own are built for the mingw toolchains only")
		}
		name := strings.TrimSuffix(filepath.Base(d), filepath.Ext(d)) + ".dll"
		dll := filepath.Join(out, name)
		args := append(append(append([]string{}, base...), p.Flags...), "-shared", "-o", dll, filepath.Join(SourceDir(), d))
		if err := run(exec.Command(ts.driver, args...)); err != nil {
			return err
		}
		linkDLLs = append(linkDLLs, dll)
	}
	args := append(append([]string{}, base...), p.Flags...)
	args = append(append(append(args, "-o", exe), src(p.Sources)...), linkDLLs...)
	args = append(args, p.linkLibs(ts)...)
	cmd := exec.Command(ts.driver, args...)
	cmd.Dir = SourceDir()
	return run(cmd)
}

// driverArgs are the toolchain's own arguments, before p.Flags.
func (p Program) driverArgs(ts toolset) ([]string, error) {
	switch p.Toolchain {
	case MinGW, MinGWCxx:
		return nil, nil
	case ClangMinGW, ClangMinGWCxx:
		gccDir, err := gccLibDir(ts.lookup)
		if err != nil {
			return nil, err
		}
		args := []string{"--target=x86_64-w64-mingw32", "-fuse-ld=lld", "-L" + gccDir}
		if p.Toolchain == ClangMinGWCxx {
			// clang 14 does not find the C++ headers of Debian's
			// mingw-w64 g++: they are in the gcc installation.
			inc := filepath.Join(gccDir, "include", "c++")
			args = append(args, "-isystem", inc, "-isystem", filepath.Join(inc, "x86_64-w64-mingw32"),
				"-isystem", filepath.Join(inc, "backward"))
		}
		return args, nil
	case ClangMSVC:
		return []string{"--target=x86_64-pc-windows-msvc", "-fuse-ld=lld", "-nostdlib",
			"-Wl,-entry:mainCRTStartup", "-Wl,-subsystem:console"}, nil
	}
	return nil, fmt.Errorf("toolchain %q does not compile", p.Toolchain)
}

// linkLibs come after the sources: p.Libs, which for the -nostdlib
// msvc target are mingw-w64 import libraries (by file name, msvcrt and
// kernel32 when none are given) located through the gcc driver.
func (p Program) linkLibs(ts toolset) []string {
	if p.Toolchain != ClangMSVC {
		return p.Libs
	}
	names := p.Libs
	if len(names) == 0 {
		names = []string{"libmsvcrt.a", "libkernel32.a"}
	}
	var libs []string
	for _, l := range names {
		libs = append(libs, printFileName(ts.lookup, l))
	}
	return libs
}

// gccLibDir is the folder of the gcc installation's libgcc (and, for
// Debian's mingw-w64, of libstdc++'s headers and DLLs).
func gccLibDir(gcc string) (string, error) {
	out, err := exec.Command(gcc, "-print-libgcc-file-name").Output()
	if err != nil {
		return "", fmt.Errorf("%s -print-libgcc-file-name: %v", gcc, err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// printFileName asks a gcc driver where a library file is; gcc echoes
// the bare name when it has none.
func printFileName(gcc, name string) string {
	out, err := exec.Command(gcc, "-print-file-name="+name).Output()
	if err != nil {
		return name
	}
	return filepath.Clean(strings.TrimSpace(string(out)))
}

// copyRuntimeDLLs copies beside exe every DLL it needs (transitively)
// that is not a Windows system DLL: libstdc++, libgcc, winpthreads,
// zlib. They are found where the toolchain's gcc finds libraries.
func copyRuntimeDLLs(ts toolset, dir, exe string) error {
	queue := []string{exe}
	seen := map[string]bool{}
	for len(queue) > 0 {
		img := queue[0]
		queue = queue[1:]
		names, err := importedDLLs(img)
		if err != nil {
			return err
		}
		for _, n := range names {
			key := strings.ToLower(n)
			if seen[key] {
				continue
			}
			seen[key] = true
			local := filepath.Join(dir, n)
			if _, err := os.Stat(local); err == nil {
				queue = append(queue, local) // one of ours
				continue
			}
			// The toolchain's own DLLs first: Wine ships some of the same
			// names (zlib1.dll), and the program must get the one it was
			// built against, from its own folder.
			found := printFileName(ts.lookup, n)
			if !filepath.IsAbs(found) {
				if isSystemDLL(ts.wineDir, key) {
					continue
				}
				return fmt.Errorf("%s needs %s, which is neither a system DLL nor found by %s -print-file-name",
					filepath.Base(img), n, ts.lookup)
			}
			if err := copyFile(found, local); err != nil {
				return err
			}
			queue = append(queue, local)
		}
	}
	return nil
}

// systemDLLs are DLLs every Windows has, for when Wine's folder (the
// better authority) is not installed.
var systemDLLs = map[string]bool{
	"kernel32.dll": true, "kernelbase.dll": true, "ntdll.dll": true, "msvcrt.dll": true,
	"ucrtbase.dll": true, "user32.dll": true, "advapi32.dll": true, "shell32.dll": true,
	"ws2_32.dll": true, "bcrypt.dll": true, "ole32.dll": true,
}

func isSystemDLL(wineDir, lower string) bool {
	if strings.HasPrefix(lower, "api-ms-win-") {
		return true
	}
	if wineDir != "" {
		if _, err := os.Stat(filepath.Join(wineDir, lower)); err == nil {
			return true
		}
	}
	return systemDLLs[lower]
}

// importedDLLs lists the DLLs an image imports by name.
func importedDLLs(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := peimage.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	img, err := f.Layout()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	imps, err := f.Imports(img)
	if err != nil {
		return nil, fmt.Errorf("%s: imports: %w", path, err)
	}
	var names []string
	seen := map[string]bool{}
	for _, imp := range imps {
		if !seen[strings.ToLower(imp.Name)] {
			seen[strings.ToLower(imp.Name)] = true
			names = append(names, imp.Name)
		}
	}
	return names, nil
}

func run(cmd *exec.Cmd) error {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out.Bytes())
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, st.Mode().Perm()|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
