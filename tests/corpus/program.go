package corpus

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rspstub/rspstub/internal/testkit"
)

// Toolchain is how a program of the corpus is made.
type Toolchain string

const (
	// Wine: one of Wine's own console programs, copied from Wine's PE
	// folder (WineDir). Sources[0] is its file name there.
	Wine Toolchain = "wine"
	// MinGW: x86_64-w64-mingw32-gcc (win32 thread model), C.
	MinGW Toolchain = "mingw-gcc"
	// MinGWCxx: x86_64-w64-mingw32-g++-posix, C++ with libstdc++ and
	// winpthreads (the win32 thread model of GCC 12 has no std::thread).
	MinGWCxx Toolchain = "mingw-g++"
	// ClangMinGW: clang --target=x86_64-w64-mingw32 -fuse-ld=lld, C,
	// against mingw-w64's CRT and libgcc.
	ClangMinGW Toolchain = "clang-mingw"
	// ClangMinGWCxx: clang++ for the same target, with the libstdc++
	// headers and libraries of MinGWCxx's installation.
	ClangMinGWCxx Toolchain = "clang++-mingw"
	// ClangMSVC: clang --target=x86_64-pc-windows-msvc -fuse-ld=lld.
	// Debian has no MSVC runtime, so these programs are -nostdlib, get
	// their entry point from src/msvc_crt.h and link mingw-w64's import
	// libraries for msvcrt.dll and kernel32.dll.
	ClangMSVC Toolchain = "clang-msvc"
	// Go: the local Go toolchain with GOOS=windows GOARCH=amd64.
	// Sources[0] is a package folder under src/.
	Go Toolchain = "go"
)

// Program is one line of the corpus table.
type Program struct {
	// Name is unique; the golden file is testdata/golden/<Name>.golden.
	Name      string
	Toolchain Toolchain
	// Sources are paths under src/ (see Toolchain for Wine and Go).
	Sources []string
	// Flags go to the compiler after the toolchain's own.
	Flags []string
	// Libs are linked after the sources (-lz). For ClangMSVC they are
	// file names of mingw-w64 import libraries (default: libmsvcrt.a
	// and libkernel32.a).
	Libs []string
	// DLLs are sources under src/ built with the same toolchain and
	// flags into DLLs of the same base name beside the executable, which
	// is linked against them.
	DLLs []string
	// Args are the program's arguments after argv[0]. The Windows
	// command line is made from them by the usual quoting rules (as wine
	// does): arguments with spaces are quoted.
	Args []string
	// Stdin names a file under src/files/ fed to standard input; empty
	// means an empty standard input.
	Stdin string
	// Files are copied from src/files/ into the working folder.
	Files []string
	// Registry names registry files under src/files/ that rspstub loads
	// (--registry); wine has them in its prefix already. COM programs
	// need the class registrations wineboot writes there.
	Registry []string
	// Exercises says in a few words what the program checks.
	Exercises string
	// WineFails, when set, says why Wine itself cannot run the program:
	// it has no golden output and stays out of the pass rate.
	WineFails string
}

// Root is the corpus package's folder (tests/corpus).
func Root() string { return filepath.Join(testkit.Root(), "tests", "corpus") }

// SourceDir is where program sources live (tests/corpus/src).
func SourceDir() string { return filepath.Join(Root(), "src") }

// Input is what p reads on standard input (nil when Stdin is empty).
func (p Program) Input(t testing.TB) []byte {
	t.Helper()
	if p.Stdin == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(SourceDir(), "files", p.Stdin))
	if err != nil {
		t.Fatalf("%s: stdin: %v", p.Name, err)
	}
	return b
}

// InPassRate reports whether p counts in the pass rate: programs that
// Wine itself cannot run do not.
func (p Program) InPassRate() bool { return p.WineFails == "" }
