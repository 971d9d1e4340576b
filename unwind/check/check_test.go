package check

import (
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"

	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/arch/x86/x86asm"

	"github.com/rspstub/rspstub/internal/arch"
)

// wineDir is where Debian's libwine installs Wine's PE modules.
const wineDir = "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows"

// fixture is one build of testdata/frames.c.
type fixture struct {
	name  string
	debug bool
	path  string
}

var (
	fixOnce sync.Once
	fixDir  string
	fixList []fixture
	fixErr  string
)

// variants are the builds of testdata/frames.c: -O0 and -O2, with and
// without -g (without it only the CRT's objects carry .debug_frame), with
// and without frame pointers.
var variants = []struct {
	name  string
	debug bool
	flags []string
}{
	{"O0", false, []string{"-O0"}},
	{"O0-g", true, []string{"-O0", "-g"}},
	{"O2", false, []string{"-O2"}},
	{"O2-g", true, []string{"-O2", "-g"}},
	{"O0-g-fp", true, []string{"-O0", "-g", "-fno-omit-frame-pointer"}},
	{"O2-g-fp", true, []string{"-O2", "-g", "-fno-omit-frame-pointer"}},
}

// fixtures builds every variant once per test binary, into a temporary
// folder TestMain removes.
func fixtures(t *testing.T) []fixture {
	t.Helper()
	fixOnce.Do(func() {
		gcc, err := exec.LookPath("x86_64-w64-mingw32-gcc")
		if err != nil {
			fixErr = "x86_64-w64-mingw32-gcc not installed (package gcc-mingw-w64-x86-64)"
			return
		}
		src, _ := filepath.Abs("testdata/frames.c")
		dir, err := os.MkdirTemp("", "rspstub-check-")
		if err != nil {
			fixErr = err.Error()
			return
		}
		fixDir = dir
		var wg sync.WaitGroup
		var mu sync.Mutex
		sem := make(chan struct{}, 2)
		for _, v := range variants {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				out := filepath.Join(dir, "frames-"+v.name+".exe")
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				args := append(append([]string{}, v.flags...), "-o", out, src)
				b, err := exec.CommandContext(ctx, gcc, args...).CombinedOutput()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					fixErr = "build " + v.name + ": " + err.Error() + "\n" + string(b)
					return
				}
				fixList = append(fixList, fixture{v.name, v.debug, out})
			}()
		}
		wg.Wait()
		sort.Slice(fixList, func(i, j int) bool { return fixList[i].name < fixList[j].name })
	})
	if fixErr != "" {
		testkit.Missing(t, "%s", fixErr)
	}
	return fixList
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixDir != "" {
		os.RemoveAll(fixDir)
	}
	os.Exit(code)
}

func checkPath(t *testing.T, path string) *Result {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	r, err := Check(b, Options{Examples: 20})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	r.File = path
	return r
}

func logResult(t *testing.T, r *Result) {
	t.Helper()
	t.Logf("%s: %d functions with both, %d positions, %d agree, %d disagree (%d unexplained)",
		filepath.Base(r.File), r.Functions, r.Positions, r.Agreements, r.Disagreements, r.Unexplained)
	for _, c := range r.Categories {
		t.Logf("  %-32s %7d explained=%v", c.Category, c.Count, c.Explained)
	}
}

func logUnexplained(t *testing.T, r *Result) {
	t.Helper()
	for _, d := range r.Examples {
		if !d.Explained {
			t.Errorf("%s: function %#x +%#x %s: %s: pdata %+v cfi %+v code %s %v", filepath.Base(r.File),
				d.FunctionRVA, d.Offset, d.Instruction, d.Category, d.Pdata, d.CFI, d.Code, d.Details)
		}
	}
}

// TestFixtures: mingw-built programs with frame pointers, ___chkstk_ms
// frames, every callee-saved register, XMM saves, alloca, jump tables and
// a .cold partition have no unexplained disagreement.
func TestFixtures(t *testing.T) {
	fs := fixtures(t)
	names := map[string]bool{}
	for _, f := range fs {
		r := checkPath(t, f.path)
		logResult(t, r)
		if r.Functions == 0 || r.Positions == 0 {
			t.Errorf("%s: nothing compared", f.name)
		}
		if r.Unexplained != 0 {
			t.Errorf("%s: %d unexplained disagreements", f.name, r.Unexplained)
			logUnexplained(t, r)
		}
		if r.Agreements*100 < r.Positions*95 {
			t.Errorf("%s: only %d of %d positions agree", f.name, r.Agreements, r.Positions)
		}
		for _, c := range r.Categories {
			names[c.Category] = true
		}
		// With -g our own functions have CFI too: more functions compared.
		if f.debug {
			plain := checkPath(t, strings.Replace(strings.Replace(f.path, "-g", "", 1), "-fp", "", 1))
			if r.Functions <= plain.Functions {
				t.Errorf("%s: %d functions compared, no more than without -g (%d)", f.name, r.Functions, plain.Functions)
			}
		}
	}
	// The fixtures exercise the shapes the classification exists for.
	for _, want := range []string{CatPadding, CatGCCEpilog, CatRegTiming} {
		if !names[want] {
			t.Errorf("no fixture produced a %s disagreement", want)
		}
	}
}

// TestCorruptedPdata makes .pdata wrong on purpose: one UWOP_ALLOC_SMALL of
// a function grows by 8 bytes, so in that function's body .pdata's CFA is
// off by 8 and the bytes side with CFI: unexplained "pdata-body".
func TestCorruptedPdata(t *testing.T) {
	var path string
	for _, f := range fixtures(t) {
		if f.name == "O2-g" {
			path = f.path
		}
	}
	orig, err := os.ReadFile(path)
	require.NoError(t, err)
	for k, off := range allocSmallSlots(orig) {
		if k == 10 {
			break
		}
		b := append([]byte(nil), orig...)
		b[off] += 0x10 // OpInfo is the high nibble: 8 more bytes
		r, err := Check(b, Options{Examples: 1000})
		require.NoError(t, err)
		if r.Count(CatPdataBody) == 0 {
			continue // a function without CFI
		}
		if r.Unexplained == 0 {
			t.Errorf("pdata-body counted as explained")
		}
		for _, d := range r.Examples {
			if d.Category == CatPdataBody && d.CFI.CFA != d.Code {
				t.Errorf("pdata-body example: CFI %s, code %s: the bytes should side with CFI", d.CFI.CFA, d.Code)
			}
		}
		return
	}
	t.Fatal("no corrupted UWOP_ALLOC_SMALL was detected")
}

// allocSmallSlots returns the file offsets of the second byte (Op |
// OpInfo<<4) of UWOP_ALLOC_SMALL slots with OpInfo < 15 in UNWIND_INFOs
// without a frame register.
func allocSmallSlots(file []byte) []int {
	img, err := mapPE(file)
	if err != nil {
		return nil
	}
	le := binary.LittleEndian
	lfanew := le.Uint32(file[0x3c:])
	opt := file[lfanew+24:]
	pdata, psize := le.Uint32(opt[112+3*8:]), le.Uint32(opt[112+3*8+4:])
	var out []int
	for i := uint32(0); i+12 <= psize; i += 12 {
		ui := le.Uint32(img.mem[pdata+i+8:])
		if ui == 0 || ui&1 != 0 || int(ui)+4 > len(img.mem) {
			continue
		}
		u := img.mem[ui:]
		for k := 0; k < int(u[2]) && u[3] == 0; k++ {
			if op := u[4+2*k+1]; op&15 == 2 && op>>4 < 15 {
				if off, ok := fileOffset(file, ui+uint32(4+2*k+1)); ok {
					out = append(out, off)
				}
			}
		}
	}
	// Functions late in the table are the program's own (the CRT's come
	// first in a mingw link); try those first.
	for l, r := 0, len(out)-1; l < r; l, r = l+1, r-1 {
		out[l], out[r] = out[r], out[l]
	}
	return out
}

func fileOffset(file []byte, rva uint32) (int, bool) {
	le := binary.LittleEndian
	lfanew := le.Uint32(file[0x3c:])
	nsect := int(le.Uint16(file[lfanew+6:]))
	sh := lfanew + 24 + uint32(le.Uint16(file[lfanew+20:]))
	for i := range nsect {
		s := file[sh+40*uint32(i):]
		va, size, ptr := le.Uint32(s[12:]), le.Uint32(s[16:]), le.Uint32(s[20:])
		if rva >= va && rva-va < size {
			return int(ptr + rva - va), true
		}
	}
	return 0, false
}

// TestBadInput: files that are not PE32+ images are ErrBadInput.
func TestBadInput(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("MZ"), bytes.Repeat([]byte{0}, 4096), []byte("\x7fELF\x02\x01\x01")} {
		if _, err := Check(b, Options{}); !errors.Is(err, ErrBadInput) {
			t.Errorf("%q: %v, want ErrBadInput", b[:min(len(b), 8)], err)
		}
	}
}

// TestCorruptNeverPanics flips bytes all over a fixture: the check must
// return a result or an error, never panic (a panic inside one function is
// recovered and counted).
func TestCorruptNeverPanics(t *testing.T) {
	fs := fixtures(t)
	orig, err := os.ReadFile(fs[len(fs)-1].path)
	require.NoError(t, err)
	seed := uint64(0x9e3779b97f4a7c15)
	for round := 0; round < 12; round++ {
		b := append([]byte(nil), orig...)
		for k := 0; k < 200; k++ {
			seed ^= seed << 13
			seed ^= seed >> 7
			seed ^= seed << 17
			b[seed%uint64(len(b))] = byte(seed >> 40)
		}
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("round %d: panic: %v", round, p)
				}
			}()
			Check(b, Options{})
		}()
	}
}

// TestSym: symbolic values decode back to register+offset and slots.
func TestSym(t *testing.T) {
	for _, c := range []struct {
		v    uint64
		want string
	}{
		{centre(arch.RSP) + 0x28, "rsp+0x28"},
		{centre(arch.RBP) - 0x10, "rbp-0x10"},
		{centre(arch.R15), "r15"},
		{(centre(arch.RSP) + 8) | tagBit, "[rsp+0x8]"},
		{0x1234, "0x1234"},
	} {
		if got := decodeSym(c.v).String(); got != c.want {
			t.Errorf("decodeSym(%#x) = %s, want %s", c.v, got, c.want)
		}
	}
	m := &symMem{base: 0x140000000, img: []byte{1, 2, 3}}
	var p [12]byte
	if n, _ := m.ReadMemory(centre(arch.RSP), p[:]); n != 12 || binary.LittleEndian.Uint64(p[:]) != centre(arch.RSP)|tagBit {
		t.Errorf("stack read: %d %x", n, p)
	}
	if n, _ := m.ReadMemory(0x140000001, p[:]); n != 2 {
		t.Errorf("image read at the end: %d bytes", n)
	}
	if n, _ := m.ReadMemory(0x1000, p[:]); n != 0 {
		t.Errorf("unmapped read: %d bytes", n)
	}
}

// TestTracker runs the code tracker over annotated instruction bytes.
func TestTracker(t *testing.T) {
	code := []byte{
		0x55,                   // 0x00 push rbp            rsp = CFA-16
		0x53,                   // 0x01 push rbx            rsp = CFA-24
		0x48, 0x83, 0xec, 0x38, // 0x02 sub rsp, 0x38 rsp = CFA-80
		0x48, 0x8d, 0x6c, 0x24, 0x30, // 0x06 lea rbp, [rsp+0x30]  rbp = CFA-32
		0xb8, 0x00, 0x20, 0x00, 0x00, // 0x0b mov eax, 0x2000
		0xe8, 0x00, 0x00, 0x00, 0x00, // 0x10 call ___chkstk_ms (rax kept)
		0x48, 0x29, 0xc4, // 0x15 sub rsp, rax         rsp = CFA-80-0x2000
		0x74, 0x02, // 0x18 je 0x1c
		0x0f, 0x0b, // 0x1a ud2
		0x48, 0x8d, 0x65, 0x08, // 0x1c lea rsp, [rbp+8]  rsp = CFA-24
		0x5b, // 0x20 pop rbx                rsp = CFA-16
		0x5d, // 0x21 pop rbp                rsp = CFA-8, rbp unknown
		0xc3, // 0x22 ret
		0x90, // 0x23 nop (padding, unreachable)
	}
	insts, stopped := decodeFunction(code)
	if stopped {
		t.Fatal("decode stopped")
	}
	var entry tstate
	entry.regs[hwRSP] = aval{avStack, -8}
	tr := track(insts, entry)
	for _, c := range []struct {
		off     uint32
		reg     int
		want    aval
		reached bool
	}{
		{0x01, hwRSP, aval{avStack, -16}, true},
		{0x06, hwRSP, aval{avStack, -80}, true},
		{0x0b, hwRBP, aval{avStack, -32}, true},
		{0x15, hwRAX, aval{avConst, 0x2000}, true},
		{0x18, hwRSP, aval{avStack, -80 - 0x2000}, true},
		{0x20, hwRSP, aval{avStack, -24}, true},
		{0x22, hwRSP, aval{avStack, -8}, true},
		{0x22, hwRBP, aval{}, true},
	} {
		st, reached := tr.at(c.off)
		if st == nil || reached != c.reached || st.regs[c.reg] != c.want {
			t.Errorf("at %#x reg %d: %+v reached=%v, want %+v", c.off, c.reg, st, reached, c.want)
		}
	}
	if st, _ := tr.at(0x23); st != nil {
		t.Errorf("padding after ret reached: %+v", st)
	}
	if !isPadding(insts[len(insts)-1].Inst) || !epilogShaped(insts, 11) {
		t.Errorf("padding or epilog shape not recognised")
	}
	if insts[len(insts)-2].Op != x86asm.RET {
		t.Errorf("decode: %v", insts[len(insts)-2])
	}
}

// TestTotal sums results.
func TestTotal(t *testing.T) {
	a := &Result{Functions: 2, Positions: 10, Agreements: 8}
	a.add(CatPadding)
	a.add(CatPdataBody)
	a.finish()
	b := &Result{Functions: 1, Positions: 5, Agreements: 5}
	b.finish()
	tot := Total([]*Result{a, b, nil})
	if tot.Functions != 3 || tot.Positions != 15 || tot.Agreements != 13 || tot.Disagreements != 2 || tot.Unexplained != 1 ||
		tot.Count(CatPadding) != 1 || tot.Categories[0].Category != CatPdataBody {
		t.Errorf("total: %+v", tot)
	}
}

// wineSample is a handful of Wine modules of different builds and sizes.
var wineSample = []string{"kernel32.dll", "msvcrt.dll", "ucrtbase.dll", "d3dx9_29.dll", "cabinet.dll", "glu32.dll"}

// TestWine runs the check over a handful of Wine's PE modules (all of
// them with RSPSTUB_FULL_CORPUS=1): no file fails, nothing panics, and
// every disagreement in the sample has an explanation.
func TestWine(t *testing.T) {
	var files []string
	full := os.Getenv("RSPSTUB_FULL_CORPUS") == "1"
	if full {
		files, _ = filepath.Glob(filepath.Join(wineDir, "*"))
	} else {
		for _, n := range wineSample {
			if _, err := os.Stat(filepath.Join(wineDir, n)); err == nil {
				files = append(files, filepath.Join(wineDir, n))
			}
		}
	}
	if len(files) == 0 {
		testkit.Missing(t, "Wine PE modules not installed (%s; package libwine)", wineDir)
	}
	var rs []*Result
	notPE := 0
	for _, path := range files {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		r, err := Check(b, Options{Examples: 5})
		if err != nil {
			if !errors.Is(err, ErrBadInput) {
				t.Errorf("%s: %v", path, err)
			}
			notPE++ // type libraries and 16-bit stubs
			continue
		}
		r.File = path
		rs = append(rs, r)
		for _, c := range []string{CatPanic, CatPdataError, CatCFIError} {
			if n := r.Count(c); n != 0 {
				t.Errorf("%s: %d %s", filepath.Base(path), n, c)
				logUnexplained(t, r)
			}
		}
		if !full && r.Unexplained != 0 {
			t.Errorf("%s: %d unexplained disagreements", filepath.Base(path), r.Unexplained)
			logUnexplained(t, r)
		}
	}
	tot := Total(rs)
	tot.File = "total"
	t.Logf("%d files checked, %d not PE32+", len(rs), notPE)
	logResult(t, tot)
	if tot.Positions == 0 {
		t.Fatal("nothing compared")
	}
	if full && tot.Unexplained != 0 {
		for _, r := range rs {
			if r.Unexplained != 0 {
				logUnexplained(t, r)
			}
		}
	}
}

// TestDisp32: x86asm reports a negative 32-bit displacement as unsigned;
// the tracker must sign-extend it ("lea rsp, [rbp-0xa0]").
func TestDisp32(t *testing.T) {
	code := []byte{
		0x55,             // push rbp                 rsp = CFA-16
		0x48, 0x89, 0xe5, // mov rbp, rsp             rbp = CFA-16
		0x48, 0x8d, 0xa5, 0x60, 0xff, 0xff, 0xff, // lea rsp, [rbp-0xa0]  rsp = CFA-0xb0
		0xc3, // ret
	}
	insts, _ := decodeFunction(code)
	var entry tstate
	entry.regs[hwRSP] = aval{avStack, -8}
	tr := track(insts, entry)
	if st, _ := tr.at(11); st == nil || st.regs[hwRSP] != (aval{avStack, -0xb0}) {
		t.Errorf("rsp after lea rsp, [rbp-0xa0]: %+v", st)
	}
}
