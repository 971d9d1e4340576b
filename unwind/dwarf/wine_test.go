package dwarf

import (
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"

	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
)

// wineDir holds Wine's PE DLLs (Debian package libwine).
const wineDir = "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows"

func wineFiles(t *testing.T) []string {
	t.Helper()
	files := testkit.RequireGlob(t, filepath.Join(wineDir, "*"), "Wine's PE DLLs (package libwine)")
	sort.Strings(files)
	return files
}

// TestWineCorpus decodes the .debug_frame of every Wine PE module and runs
// every FDE's CFA program to its end: each FDE must decode and interpret,
// or give a clear error.
func TestWineCorpus(t *testing.T) {
	files := wineFiles(t)
	if testing.Short() {
		files = files[:len(files)/20]
	}
	var nfiles, withCFI, fdes, rows, entErrs, progErrs, exprRows int
	var without []string
	for _, path := range files {
		fh, err := os.Open(path)
		require.NoError(t, err)
		fi, err := fh.Stat()
		require.NoError(t, err)
		secs, err := PESectionsAt(fh, fi.Size())
		fh.Close()
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(path), err)
			continue
		}
		nfiles++
		if secs.DebugFrame == nil {
			without = append(without, filepath.Base(path))
			continue
		}
		withCFI++
		tab, _ := ParseDebugFrame(secs.DebugFrame.Data, secs.DebugFrame.Addr)
		for _, err := range tab.Errors {
			entErrs++
			if entErrs <= 10 {
				t.Errorf("%s: %v", filepath.Base(path), err)
			}
		}
		for _, f := range tab.FDEs {
			fdes++
			err := f.EachRow(func(r *Row) bool {
				rows++
				if r.CFA.Kind == CFAExpr {
					exprRows++
				}
				return true
			})
			if err != nil {
				progErrs++
				if progErrs <= 10 {
					t.Errorf("%s: %v", filepath.Base(path), err)
				}
				continue
			}
		}
	}
	t.Logf("%d PE files, %d with .debug_frame, %d FDEs, %d rows (%d with a CFA expression); %d entry errors, %d program errors",
		nfiles, withCFI, fdes, rows, exprRows, entErrs, progErrs)
	t.Logf("without .debug_frame: %v", without)
}

// TestWineOracle compares every row of a few Wine modules with objdump.
func TestWineOracle(t *testing.T) {
	objdump := needTool(t, "x86_64-w64-mingw32-objdump")
	wineFiles(t)
	var total oracleStats
	for _, name := range []string{"ntdll.dll", "kernelbase.dll", "msvcrt.dll", "ucrtbase.dll"} {
		path := filepath.Join(wineDir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		secs, err := PESections(data)
		if err != nil || secs.DebugFrame == nil {
			t.Errorf("%s: %v (debug_frame %v)", name, err, secs != nil && secs.DebugFrame != nil)
			continue
		}
		tab, err := ParseDebugFrame(secs.DebugFrame.Data, secs.DebugFrame.Addr)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		out, err := exec.Command(objdump, "--dwarf=frames-interp", path).Output()
		require.NoError(t, err)
		st := compareOracle(t, name, tab, nil, parseFramesInterp(t, out, ".debug_frame"))
		t.Logf("%s: %d FDEs, %d rows, %d cells compared with objdump, all equal", name, st.fdes, st.rows, st.cells)
		total.fdes += st.fdes
		total.rows += st.rows
		total.cells += st.cells
	}
	t.Logf("total: %d FDEs, %d rows, %d cells compared with objdump, all equal", total.fdes, total.rows, total.cells)
}
