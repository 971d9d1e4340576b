package dwarf

import (
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"

	"bufio"
	"bytes"
	"debug/pe"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// needTool returns the path of a tool, or skips the test without it (and
// fails when RSPSTUB_REQUIRE_TOOLS=1, as CI sets).
func needTool(t testing.TB, name string) string {
	t.Helper()
	return testkit.RequireTool(t, name)
}

// buildC compiles testdata/frames.c with cc and flags (the kit's
// fixture builder: cached per test process); out gives the extension.
func buildC(t *testing.T, cc, out string, flags ...string) string {
	t.Helper()
	return testkit.BuildWith(t, "unwind/dwarf/testdata/frames.c", filepath.Ext(out), append([]string{cc}, flags...)...)
}

// oracleRow is one row printed by binutils' frames-interp dump.
type oracleRow struct {
	loc   uint64
	cells []string // CFA then one per column
}

type oracleEntry struct {
	off        uint64
	cie        uint64 // FDEs: offset of their CIE
	isCIE      bool
	begin, end uint64
	cols       []string // column names after CFA
	rows       []oracleRow
}

var (
	reCIE = regexp.MustCompile(`^([0-9a-f]+) [0-9a-f]+ [0-9a-f]+ CIE`)
	reFDE = regexp.MustCompile(`^([0-9a-f]+) [0-9a-f]+ [0-9a-f]+ FDE cie=([0-9a-f]+) pc=([0-9a-f]+)\.\.([0-9a-f]+)`)
	reLOC = regexp.MustCompile(`^\s+LOC\s+CFA`)
	reRow = regexp.MustCompile(`^[0-9a-f]{8,16} `)
)

// parseFramesInterp reads the "Contents of the <section> section" part of
// readelf --debug-dump=frames-interp / objdump --dwarf=frames-interp.
func parseFramesInterp(t *testing.T, out []byte, section string) []*oracleEntry {
	t.Helper()
	var ents []*oracleEntry
	var cur *oracleEntry
	in := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "Contents of the ") {
			in = strings.HasPrefix(line, "Contents of the "+section+" section")
			cur = nil
			continue
		}
		if !in {
			continue
		}
		hex := func(s string) uint64 {
			v, err := strconv.ParseUint(s, 16, 64)
			if err != nil {
				t.Fatalf("oracle line %q: %v", line, err)
			}
			return v
		}
		switch {
		case reFDE.MatchString(line):
			m := reFDE.FindStringSubmatch(line)
			cur = &oracleEntry{off: hex(m[1]), cie: hex(m[2]), begin: hex(m[3]), end: hex(m[4])}
			ents = append(ents, cur)
		case reCIE.MatchString(line):
			m := reCIE.FindStringSubmatch(line)
			cur = &oracleEntry{off: hex(m[1]), isCIE: true}
			ents = append(ents, cur)
		case cur != nil && reLOC.MatchString(line):
			cur.cols = strings.Fields(line)[2:]
		case cur != nil && reRow.MatchString(line):
			// A register rule prints as "r9 (r9)": join the two.
			var f []string
			for _, w := range strings.Fields(line) {
				if strings.HasPrefix(w, "(") && len(f) > 0 {
					f[len(f)-1] += " " + w
					continue
				}
				f = append(f, w)
			}
			cur.rows = append(cur.rows, oracleRow{loc: hex(f[0]), cells: f[1:]})
		}
	}
	return ents
}

// colReg maps a binutils column name to a DWARF register number.
func colReg(name string, ra uint64) (uint64, bool) {
	if name == "ra" {
		return ra, true
	}
	for r := uint64(0); r < NumRegs; r++ {
		if RegName(r) == name {
			return r, true
		}
	}
	return 0, false
}

// cell formats a rule the way binutils' frame_display_row does.
func cell(r Rule) string {
	switch r.Kind {
	case RuleUnspecified, RuleUndefined:
		return "u"
	case RuleSameValue:
		return "s"
	case RuleOffset:
		return fmt.Sprintf("c%+d", r.Offset)
	case RuleValOffset:
		return fmt.Sprintf("v%+d", r.Offset)
	case RuleRegister:
		return fmt.Sprintf("r%d (%s)", r.Reg, RegName(r.Reg))
	case RuleExpression:
		return "exp"
	case RuleValExpression:
		return "vexp"
	}
	return "?"
}

func cfaCell(c CFARule) string {
	switch c.Kind {
	case CFARegOffset:
		return fmt.Sprintf("%s%+d", RegName(c.Reg), c.Offset)
	case CFAExpr:
		return "exp"
	}
	return "?"
}

// oracleStats counts what a comparison covered.
type oracleStats struct {
	fdes, rows, cells, exprRows int
}

// compareOracle checks every row binutils printed against RowAt at the
// row's first address, and that the finder returns the same FDE.
func compareOracle(t *testing.T, name string, tab *Table, finder Finder, ents []*oracleEntry) oracleStats {
	t.Helper()
	var st oracleStats
	cies := map[uint64]*oracleEntry{}
	for _, e := range ents {
		if e.isCIE {
			cies[e.off] = e
		}
	}
	bad := 0
	report := func(format string, args ...any) {
		bad++
		if bad <= 20 {
			t.Errorf(name+": "+format, args...)
		}
	}
	for _, e := range ents {
		if e.isCIE {
			continue
		}
		if e.begin == e.end {
			continue // empty FDEs cover nothing
		}
		fde, err := tab.Lookup(e.begin)
		if err != nil || fde.Offset != int64(e.off) {
			report("FDE %#x [%#x,%#x): lookup gave %v, %v", e.off, e.begin, e.end, fde, err)
			continue
		}
		if fde.End != e.end {
			report("FDE %#x: end %#x, oracle %#x", e.off, fde.End, e.end)
		}
		if finder != nil {
			for _, pc := range []uint64{e.begin, (e.begin + e.end) / 2, e.end - 1} {
				f2, err := finder.Lookup(pc)
				if err != nil || f2.Offset != fde.Offset {
					report("FDE %#x: finder at %#x gave %v, %v", e.off, pc, f2, err)
				}
			}
		}
		cols, rows := e.cols, e.rows
		if len(rows) == 0 {
			// No instructions of its own: the CIE's initial row.
			c := cies[e.cie]
			if c == nil || len(c.rows) == 0 {
				report("FDE %#x: no rows and no CIE %#x rows", e.off, e.cie)
				continue
			}
			cols = c.cols
			rows = []oracleRow{{loc: e.begin, cells: c.rows[len(c.rows)-1].cells}}
		}
		st.fdes++
		for i, or := range rows {
			if i+1 < len(rows) && rows[i+1].loc == or.loc {
				continue // superseded by a later row at the same address
			}
			if or.loc >= e.end || or.loc < e.begin {
				continue
			}
			row, err := fde.RowAt(or.loc)
			if err != nil {
				report("FDE %#x: RowAt(%#x): %v", e.off, or.loc, err)
				continue
			}
			st.rows++
			if got := cfaCell(row.CFA); len(or.cells) < 1 || got != or.cells[0] {
				report("FDE %#x at %#x: CFA %s, oracle %v", e.off, or.loc, got, or.cells)
			}
			if row.CFA.Kind == CFAExpr {
				st.exprRows++
			}
			for j, col := range cols {
				r, ok := colReg(col, fde.CIE.RAReg)
				if !ok {
					report("unknown oracle column %q", col)
					continue
				}
				want := "u"
				if j+1 < len(or.cells) {
					want = or.cells[j+1]
				}
				got := cell(row.Regs[r])
				if got != want {
					report("FDE %#x at %#x: %s is %s, oracle %s", e.off, or.loc, col, got, want)
				}
				st.cells++
			}
		}
	}
	return st
}

func TestOracleELF(t *testing.T) {
	gcc := needTool(t, "gcc")
	readelf := needTool(t, "readelf")
	for _, opt := range []string{"-O0", "-O2", "-O2 -fno-omit-frame-pointer"} {
		t.Run(opt, func(t *testing.T) {
			bin := buildC(t, gcc, filepath.Join(t.TempDir(), "frames"), append(strings.Fields(opt), "-g")...)
			f, err := os.Open(bin)
			require.NoError(t, err)
			defer f.Close()
			secs, err := ELFSections(f)
			require.NoError(t, err)
			if secs.EHFrame == nil || secs.EHFrameHdr == nil {
				t.Fatalf("missing .eh_frame or .eh_frame_hdr: %+v", secs)
			}
			tab, err := ParseEHFrame(secs.EHFrame.Data, secs.EHFrame.Addr, secs.Bases)
			require.NoError(t, err)
			finder, err := secs.Finder()
			require.NoError(t, err)
			if _, ok := finder.(HdrFinder); !ok {
				t.Fatalf("finder %T, want the .eh_frame_hdr search table", finder)
			}
			out, err := exec.Command(readelf, "--debug-dump=frames-interp", bin).Output()
			require.NoError(t, err)
			st := compareOracle(t, "eh_frame "+opt, tab, finder, parseFramesInterp(t, out, ".eh_frame"))
			t.Logf("%s: %d FDEs, %d rows, %d cells compared with readelf, all equal (%d rows with a CFA expression)", opt, st.fdes, st.rows, st.cells, st.exprRows)
			if st.fdes < 5 {
				t.Errorf("only %d FDEs compared", st.fdes)
			}
			if opt == "-O2" && st.exprRows == 0 {
				t.Errorf("no DW_CFA_def_cfa_expression row (DRAP in drap(), or the PLT)")
			}
		})
	}
}

func TestOraclePE(t *testing.T) {
	cc := needTool(t, "x86_64-w64-mingw32-gcc")
	objdump := needTool(t, "x86_64-w64-mingw32-objdump")
	for _, opt := range []string{"-O0", "-O2", "-O2 -g"} {
		t.Run(opt, func(t *testing.T) {
			bin := buildC(t, cc, filepath.Join(t.TempDir(), "frames.exe"), strings.Fields(opt)...)
			data, err := os.ReadFile(bin)
			require.NoError(t, err)
			secs, err := PESections(data)
			require.NoError(t, err)
			if secs.DebugFrame == nil {
				t.Fatal("no .debug_frame (its long name should resolve through the string table)")
			}
			tab, err := ParseDebugFrame(secs.DebugFrame.Data, secs.DebugFrame.Addr)
			require.NoError(t, err)
			out, err := exec.Command(objdump, "--dwarf=frames-interp", bin).Output()
			require.NoError(t, err)
			st := compareOracle(t, "debug_frame "+opt, tab, nil, parseFramesInterp(t, out, ".debug_frame"))
			t.Logf("%s: %d FDEs, %d rows, %d cells compared with objdump, all equal", opt, st.fdes, st.rows, st.cells)
			if st.fdes < 5 {
				t.Errorf("only %d FDEs compared", st.fdes)
			}
			checkChkstk(t, bin, secs, tab)
		})
	}
}

// checkChkstk looks for CFI covering libgcc's ___chkstk_ms, which has no
// .pdata entry. Debian 12's gcc-mingw-w64 12-win32 builds _chkstk_ms.o
// without any CFI (no .debug_frame, no .eh_frame: measured), so there the
// lookup must fail cleanly; a toolchain that does emit it must say the
// routine pushes rcx and rax.
func checkChkstk(t *testing.T, bin string, secs *Sections, tab *Table) {
	f, err := pe.Open(bin)
	require.NoError(t, err)
	defer f.Close()
	var addr uint64
	for _, s := range f.Symbols {
		if s.Name == "___chkstk_ms" && s.SectionNumber > 0 && int(s.SectionNumber) <= len(f.Sections) {
			addr = secs.ImageBase + uint64(f.Sections[s.SectionNumber-1].VirtualAddress) + uint64(s.Value)
		}
	}
	if addr == 0 {
		t.Fatal("no ___chkstk_ms symbol")
	}
	fde, err := tab.Lookup(addr + 2)
	if errors.Is(err, ErrNoFDE) {
		t.Logf("___chkstk_ms at %#x: no CFI in this libgcc", addr)
		return
	}
	if err != nil {
		t.Fatalf("___chkstk_ms at %#x: %v", addr, err)
	}
	row, err := fde.RowAt(addr + 2)
	require.NoError(t, err)
	// push rcx; push rax: CFA rsp+24, rcx at c-16, rax at c-24.
	if cfaCell(row.CFA) != "rsp+24" || cell(row.Regs[RCX]) != "c-16" || cell(row.Regs[RAX]) != "c-24" {
		t.Errorf("___chkstk_ms row after both pushes: %+v", row)
	}
}

// libcPath is the system's C library, a large real-world .eh_frame with
// hand-written CFI (signal trampolines, string functions).
const libcPath = "/lib/x86_64-linux-gnu/libc.so.6"

func TestOracleLibc(t *testing.T) {
	readelf := needTool(t, "readelf")
	if testing.Short() {
		t.Skip("short")
	}
	f, err := os.Open(libcPath)
	if err != nil {
		testkit.Missing(t, "no %s: %v", libcPath, err)
	}
	defer f.Close()
	secs, err := ELFSections(f)
	require.NoError(t, err)
	tab, err := ParseEHFrame(secs.EHFrame.Data, secs.EHFrame.Addr, secs.Bases)
	require.NoError(t, err)
	finder, err := secs.Finder()
	require.NoError(t, err)
	// readelf exits 1 on libc (about its separate debug file) after
	// printing the frames.
	out, err := exec.Command(readelf, "--debug-dump=frames-interp", libcPath).Output()
	if !bytes.Contains(out, []byte("Contents of the .eh_frame section")) {
		t.Fatalf("readelf: %v\n%s", err, out)
	}
	st := compareOracle(t, "libc", tab, finder, parseFramesInterp(t, out, ".eh_frame"))
	t.Logf("libc: %d FDEs, %d rows, %d cells compared with readelf, all equal (%d rows with a CFA expression)", st.fdes, st.rows, st.cells, st.exprRows)
}
