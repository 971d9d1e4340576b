package main

import (
	"debug/elf"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/rspstub/rspstub/internal/peimage"
)

// builds holds the artifacts and the peer tools found.
type builds struct {
	repoRoot string
	stub     string // rspstub binary

	loopPE, loopELF string // tests/testdata/loop.c: loop.exe and native loop
	hitPE, hitELF   uint64 // hit()
	bigPE, bigELF   uint64 // big[]
	sinkPE, sinkELF uint64 // sink, the global hit() writes
	quietPE         uint64 // quiet, a global nothing writes
	basePE          uint64 // loop.exe's image base (headers: mapped, never executed)

	recursePE string // tests/testdata/recurse.c, mingw -O2 -g
	leafPE    uint64 // leaf(), called at the bottom of the recursion

	bulkPE, bulkELF       string // tests/testdata/bulk.c
	readyPE, readyELF     uint64 // ready(), called once bulk is filled
	bulkBufPE, bulkBufELF uint64 // bulk[], 64 MiB

	helloPE, helloELF string // tests/testdata/hello.c
	syscallsPE        string // tests/testdata/syscalls.c
	apiloopPE         string // tests/testdata/apiloop.c

	gdbsrv   string // gdbserver, "" if missing
	qemu     string // qemu-x86_64, "" if missing
	mingwGDB string // x86_64-w64-mingw32-gdb, "" if missing
	gdb      string // Debian's gdb, "" if missing
}

// missing is the peer column of a row whose tool is not installed.
const missing = "n/a (tool missing)"

// tool finds a peer tool. Without it the rows that need it say
// "n/a (tool missing)"; with RSPSTUB_REQUIRE_TOOLS=1 that is an error.
func tool(name, pkg string) string {
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("RSPSTUB_REQUIRE_TOOLS") == "1" {
		fatalf("%s not installed (apt-get install %s) and RSPSTUB_REQUIRE_TOOLS=1", name, pkg)
	}
	log.Printf("%s not installed: its rows print %q (apt-get install %s)", name, missing, pkg)
	return ""
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func run(dir, name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func build(work string) builds {
	b := builds{repoRoot: repoRoot()}
	b.stub = filepath.Join(work, "rspstub")
	run(b.repoRoot, "go", "build", "-o", b.stub, "./cmd/rspstub")
	src := func(name string) string { return filepath.Join(b.repoRoot, "tests/testdata", name) }
	out := func(name string) string { return filepath.Join(work, name) }

	b.loopPE, b.loopELF = out("loop.exe"), out("loop")
	run(work, "x86_64-w64-mingw32-gcc", "-O2", "-o", b.loopPE, src("loop.c"))
	run(work, "gcc", "-O2", "-no-pie", "-o", b.loopELF, src("loop.c"))
	b.hitPE, b.bigPE, b.sinkPE = peSym(b.loopPE, "hit"), peSym(b.loopPE, "big"), peSym(b.loopPE, "sink")
	b.hitELF, b.bigELF, b.sinkELF = elfSym(b.loopELF, "hit"), elfSym(b.loopELF, "big"), elfSym(b.loopELF, "sink")
	b.basePE = peBase(b.loopPE)
	b.quietPE = peSym(b.loopPE, "quiet")

	b.recursePE = out("recurse.exe")
	run(work, "x86_64-w64-mingw32-gcc", "-O2", "-g", "-o", b.recursePE, src("recurse.c"))
	b.leafPE = peSym(b.recursePE, "leaf")

	b.bulkPE, b.bulkELF = out("bulk.exe"), out("bulk")
	run(work, "x86_64-w64-mingw32-gcc", "-O2", "-o", b.bulkPE, src("bulk.c"))
	run(work, "gcc", "-O2", "-no-pie", "-o", b.bulkELF, src("bulk.c"))
	b.readyPE, b.bulkBufPE = peSym(b.bulkPE, "ready"), peSym(b.bulkPE, "bulk")
	b.readyELF, b.bulkBufELF = elfSym(b.bulkELF, "ready"), elfSym(b.bulkELF, "bulk")

	b.helloPE, b.helloELF = out("hello.exe"), out("hello")
	run(work, "x86_64-w64-mingw32-gcc", "-O2", "-o", b.helloPE, src("hello.c"))
	run(work, "gcc", "-O2", "-no-pie", "-o", b.helloELF, src("hello.c"))

	b.syscallsPE = out("syscalls.exe")
	run(work, "x86_64-w64-mingw32-gcc", "-O2", "-o", b.syscallsPE, src("syscalls.c"))
	b.apiloopPE = out("apiloop.exe")
	run(work, "x86_64-w64-mingw32-gcc", "-O2", "-o", b.apiloopPE, src("apiloop.c"))

	b.gdbsrv = tool("gdbserver", "gdbserver")
	b.qemu = tool("qemu-x86_64", "qemu-user")
	b.mingwGDB = tool("x86_64-w64-mingw32-gdb", "gdb-mingw-w64")
	b.gdb = tool("gdb", "gdb")
	return b
}

func peBase(path string) uint64 {
	data, err := os.ReadFile(path)
	check(err)
	f, err := peimage.ReadDebug(data, 1<<20)
	check(err)
	defer f.Close()
	return f.ImageBase
}

func peSym(path, name string) uint64 {
	data, err := os.ReadFile(path)
	check(err)
	f, err := peimage.ReadDebug(data, 1<<20)
	check(err)
	defer f.Close()
	for _, s := range f.Symbols {
		if s.Name == name && s.SectionNumber > 0 && int(s.SectionNumber) <= len(f.Sections) {
			return f.ImageBase + uint64(f.Sections[s.SectionNumber-1].VirtualAddress) + uint64(s.Value)
		}
	}
	fatalf("%s: no symbol %s", path, name)
	return 0
}

func elfSym(path, name string) uint64 {
	f, err := elf.Open(path)
	check(err)
	defer f.Close()
	syms, err := f.Symbols()
	check(err)
	for _, s := range syms {
		if s.Name == name {
			return s.Value
		}
	}
	fatalf("%s: no symbol %s", path, name)
	return 0
}
