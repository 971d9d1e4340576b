package dwarf

import (
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"

	"bufio"
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestUnwindAgainstGDB stops a static build of testdata/frames.c in GDB at
// several functions, takes GDB's registers and stack, walks the stack with
// this package's Unwind (from the binary's .eh_frame through
// .eh_frame_hdr) and compares every frame's PC, stack pointer and
// callee-saved registers with GDB's own DWARF unwinder, down through
// libc's start functions to _start's undefined return address. The stop
// in use() has drap() as its caller: its CFA comes from GCC's
// DW_CFA_def_cfa_expression; the stop in handler() has glibc's
// __restore_rt signal frame ('S', and DW_CFA_expression rules that read
// the registers back from the kernel's ucontext) below it.
func TestUnwindAgainstGDB(t *testing.T) {
	gcc := needTool(t, "gcc")
	gdb := needTool(t, "gdb")
	dir := t.TempDir()
	bin := buildC(t, gcc, filepath.Join(dir, "frames"), "-O2", "-g", "-static")
	f, err := os.Open(bin)
	require.NoError(t, err)
	defer f.Close()
	secs, err := ELFSections(f)
	require.NoError(t, err)
	finder, err := secs.Finder()
	require.NoError(t, err)
	script, err := filepath.Abs("testdata/gdbdump.py")
	require.NoError(t, err)
	// Stops at function entries, and at lines inside bodies (after the
	// prologues: drap's CFA is then an expression in frame 0).
	stops := []string{"leaf", "use", "big", "sum", "va", "handler"}
	src, err := os.ReadFile("testdata/frames.c")
	require.NoError(t, err)
	for _, marker := range []string{"x[0] = h;", "return buf[n & 1023]", "d = va(i & 7) + e;", "s += va_arg(ap, int);"} {
		for i, line := range strings.Split(string(src), "\n") {
			if strings.Contains(line, marker) {
				stops = append(stops, "frames.c:"+strconv.Itoa(i+1))
			}
		}
	}
	total, exprFrames := 0, 0
	for _, fn := range stops {
		dump := filepath.Join(dir, strings.ReplaceAll(fn, ":", "_")+".stack")
		cmd := exec.Command(gdb, "-batch", "-nx",
			"-ex", "set backtrace past-main on",
			"-ex", "set backtrace past-entry on",
			"-ex", "handle SIGUSR1 nostop noprint pass",
			"-ex", "break "+fn,
			"-ex", "run",
			"-ex", "set $dumpfile = \""+dump+"\"",
			"-ex", "source "+script,
			"-ex", "kill",
			bin)
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("FRAME 0")) {
			if bytes.Contains(out, []byte("ptrace")) {
				testkit.Missing(t, "gdb cannot run the program here (ptrace): %s", out)
			}
			t.Fatalf("gdb: %v\n%s", err, out)
		}
		n, e := compareWithGDB(t, fn, out, dump, finder)
		total += n
		exprFrames += e
	}
	t.Logf("%d frames agree with GDB, %d of them unwound through a CFA expression", total, exprFrames)
	if exprFrames == 0 {
		t.Error("no frame used a DW_CFA_def_cfa_expression (drap() under use())")
	}
}

type gdbFrame struct {
	pc   uint64
	name string
	regs map[string]string // hex, or "?"
}

func compareWithGDB(t *testing.T, fn string, out []byte, dump string, finder Finder) (agree, exprFrames int) {
	t.Helper()
	stack, err := os.ReadFile(dump)
	require.NoError(t, err)
	var regs Registers
	var frames []gdbFrame
	var stackLo uint64
	sc := bufio.NewScanner(bytes.NewReader(out))
	hex := func(s string) uint64 {
		v, err := strconv.ParseUint(s, 16, 64)
		if err != nil {
			t.Fatalf("%s: bad hex %q", fn, s)
		}
		return v
	}
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "STACK":
			stackLo = hex(f[1])
		case len(f) == 3 && f[0] == "REG":
			r := uint64(RA)
			if f[1] != "rip" {
				var ok bool
				if r, ok = colReg(f[1], RA); !ok {
					t.Fatalf("register %s", f[1])
				}
			}
			regs.Set(r, hex(f[2]))
		case len(f) >= 4 && f[0] == "FRAME":
			gf := gdbFrame{pc: hex(f[2]), name: f[3], regs: map[string]string{}}
			for _, kv := range f[4:] {
				k, v, _ := strings.Cut(kv, "=")
				gf.regs[k] = v
			}
			frames = append(frames, gf)
		}
	}
	mem := func() *fakeMem { m := &fakeMem{}; m.Map(stackLo, stack); return m }()
	if len(frames) < 4 {
		t.Fatalf("%s: GDB gave %d frames", fn, len(frames))
	}
	cur := regs
	exact := true
	for i, gf := range frames {
		pc, _ := cur.PC()
		if pc != gf.pc {
			t.Errorf("%s frame %d (%s): pc %#x, GDB %#x", fn, i, gf.name, pc, gf.pc)
			return i, exprFrames
		}
		for _, name := range []string{"rsp", "rbx", "rbp", "r12", "r13", "r14", "r15"} {
			r, _ := colReg(name, RA)
			v, ok := cur.Get(r)
			g := gf.regs[name]
			if !ok || g == "?" {
				continue // unknown on one side: nothing to compare
			}
			if g != strconv.FormatUint(v, 16) {
				t.Errorf("%s frame %d (%s): %s %#x, GDB %s", fn, i, gf.name, name, v, g)
			}
		}
		fr, err := Unwind(finder, &cur, mem, exact, SysVPreserved)
		if err != nil {
			t.Errorf("%s frame %d (%s): %v", fn, i, gf.name, err)
			return i, exprFrames
		}
		if fr.Row.CFA.Kind == CFAExpr {
			exprFrames++
		}
		if fr.Signal && !strings.Contains(gf.name, "restore_rt") {
			t.Errorf("%s frame %d (%s): a signal frame", fn, i, gf.name)
		}
		if !fr.Signal && strings.Contains(gf.name, "restore_rt") {
			t.Errorf("%s frame %d (%s): not a signal frame", fn, i, gf.name)
		}
		if fr.End {
			if i != len(frames)-1 {
				t.Errorf("%s: end of stack after frame %d (%s); GDB has %d frames", fn, i, gf.name, len(frames))
			}
			if !strings.HasPrefix(gf.name, "_start") {
				t.Errorf("%s: outermost frame %s", fn, gf.name)
			}
			names := make([]string, len(frames))
			for j := range frames {
				names[j] = frames[j].name
			}
			t.Logf("stop in %s: %s", fn, strings.Join(names, " <- "))
			return i + 1, exprFrames
		}
		exact = fr.Signal
		cur = fr.Caller
	}
	t.Errorf("%s: no end of stack after GDB's %d frames", fn, len(frames))
	return len(frames), exprFrames
}

// elfMem serves an ELF file's loadable segments at their addresses.
type elfMem struct{ f *elf.File }

func (m elfMem) ReadMemory(addr uint64, p []byte) (int, error) {
	for _, s := range m.f.Progs {
		if s.Type == elf.PT_LOAD && addr >= s.Vaddr && addr-s.Vaddr < s.Filesz {
			n, err := s.ReadAt(p[:min(uint64(len(p)), s.Filesz-(addr-s.Vaddr))], int64(addr-s.Vaddr))
			return n, err
		}
	}
	return 0, nil
}

// TestReadEHFrameFromMemory finds every FDE of an executable and of the
// system's libc from their PT_GNU_EH_FRAME segments, as a debugger
// reading guest memory would, and checks each against the full table.
func TestReadEHFrameFromMemory(t *testing.T) {
	gcc := needTool(t, "gcc")
	files := []string{buildC(t, gcc, filepath.Join(t.TempDir(), "frames"), "-O2", "-no-pie")}
	if _, err := os.Stat(libcPath); err == nil {
		files = append(files, libcPath)
	}
	for _, bin := range files {
		f, err := elf.Open(bin)
		require.NoError(t, err)
		defer f.Close()
		var hdr *elf.Prog
		for _, p := range f.Progs {
			if p.Type == elf.PT_GNU_EH_FRAME {
				hdr = p
			}
		}
		if hdr == nil {
			t.Fatalf("%s: no PT_GNU_EH_FRAME", bin)
		}
		fin, err := ReadEHFrame(elfMem{f}, hdr.Vaddr, int(hdr.Memsz), 0, Bases{})
		require.NoError(t, err)
		eh := f.Section(".eh_frame")
		data, err := eh.Data()
		require.NoError(t, err)
		tab, err := ParseEHFrame(data, eh.Addr, Bases{})
		require.NoError(t, err)
		if fin.Hdr.Count != uint64(len(tab.FDEs)) || fin.Section.Addr != eh.Addr {
			t.Errorf("%s: hdr %d entries, table %d FDEs; .eh_frame at %#x, want %#x", bin, fin.Hdr.Count, len(tab.FDEs), fin.Section.Addr, eh.Addr)
		}
		for _, want := range tab.FDEs {
			for _, pc := range []uint64{want.Begin, want.End - 1} {
				got, err := fin.Lookup(pc)
				if err != nil || got.Offset != want.Offset || got.End != want.End {
					t.Fatalf("%s: pc %#x: %+v %v, want FDE at %#x", bin, pc, got, err, want.Offset)
				}
			}
		}
		t.Logf("%s: %d FDEs found through the in-memory .eh_frame_hdr", filepath.Base(bin), len(tab.FDEs))
	}
}
