package unwind

import (
	"errors"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rspstub/rspstub/internal/testkit"
)

// wineDir is where Debian's libwine installs Wine's PE DLLs.
const wineDir = "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows"

// corpusStats counts what decoding every RUNTIME_FUNCTION of a set of PE
// images found.
type corpusStats struct {
	files, withPdata, functions, indirect, chained, handlers, v2 int
	codes                                                        [UWOP_PUSH_MACHFRAME + 1]int
	errs                                                         map[string]int
	examples                                                     []string
}

// decodeAll decodes every entry of an image: indirect entries resolved,
// chains followed to the end.
func (cs *corpusStats) decodeAll(m Memory, img *Image) {
	for i, fn := range img.Functions {
		if img.missing[i] {
			continue
		}
		cs.functions++
		if fn.Indirect() {
			cs.indirect++
			var found bool
			var err error
			fn, found, err = img.resolveIndirect(m, fn)
			if err != nil || !found {
				cs.fail(img, fn, err)
				continue
			}
		}
		for depth := 0; ; depth++ {
			info, err := img.UnwindInfo(m, fn.UnwindData)
			if err != nil {
				cs.fail(img, fn, err)
				break
			}
			if depth == 0 {
				if info.Version == 2 {
					cs.v2++
				}
				if info.HasHandler() {
					cs.handlers++
				}
			}
			for _, c := range info.Codes {
				cs.codes[c.Op]++
			}
			if !info.Chain() {
				break
			}
			if depth == 0 {
				cs.chained++
			}
			if depth >= ChainLimit {
				cs.fail(img, fn, ErrChainTooDeep)
				break
			}
			fn = info.Chained
		}
	}
}

func (cs *corpusStats) fail(img *Image, fn RuntimeFunction, err error) {
	if cs.errs == nil {
		cs.errs = map[string]int{}
	}
	kind := "other"
	for _, s := range []error{ErrVersion, ErrTruncated, ErrUnknownOp, ErrCodeOverrun, ErrNoFrameRegister, ErrChainTooDeep, ErrIndirect} {
		if errors.Is(err, s) {
			kind = s.Error()
		}
	}
	cs.errs[kind]++
	if len(cs.examples) < 10 {
		cs.examples = append(cs.examples, filepath.Base(img.Name)+": "+err.Error())
	}
}

// TestWineCorpus decodes every RUNTIME_FUNCTION of Wine's PE DLLs.
func TestWineCorpus(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(wineDir, "*"))
	if len(files) == 0 {
		testkit.Missing(t, "Wine PE corpus not installed (%s; package libwine)", wineDir)
	}
	if testing.Short() {
		files = files[:min(len(files), 40)]
	}
	var cs corpusStats
	for _, path := range files {
		mod, b, err := mapPE(path)
		if err != nil {
			continue // not a PE32+ image (.tlb and friends)
		}
		cs.files++
		m := &fakeMem{}
		m.Map(mod.Base, b)
		img, err := ReadImage(m, mod)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if len(img.Functions) == 0 {
			continue
		}
		cs.withPdata++
		if img.Missing != 0 {
			t.Errorf("%s: %d entries invalid in a complete image", path, img.Missing)
		}
		cs.decodeAll(m, img)
	}
	t.Logf("Wine corpus: %d PE32+ files, %d with .pdata, %d RUNTIME_FUNCTIONs (%d indirect, %d chained, %d with handlers, %d version 2)",
		cs.files, cs.withPdata, cs.functions, cs.indirect, cs.chained, cs.handlers, cs.v2)
	var ops []string
	for op, n := range cs.codes {
		ops = append(ops, opNames[op]+"="+itoa(n))
	}
	t.Logf("codes: %s", strings.Join(ops, " "))
	var kinds []string
	for k, n := range cs.errs {
		kinds = append(kinds, k+"="+itoa(n))
	}
	sort.Strings(kinds)
	t.Logf("decode errors: %d kinds %v; examples %q", len(kinds), kinds, cs.examples)
	if cs.functions == 0 {
		t.Fatal("no functions decoded")
	}
	// Every error must be one of the typed kinds: nothing unexplained.
	if cs.errs["other"] != 0 {
		t.Errorf("%d untyped errors", cs.errs["other"])
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
