package tests

import (
	"github.com/stretchr/testify/require"

	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rspstub/rspstub/emulator/unicorn"
	"github.com/rspstub/rspstub/guest"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/unwind"
	"github.com/rspstub/rspstub/unwind/cfi"
	"github.com/rspstub/rspstub/unwind/check"
	"github.com/rspstub/rspstub/unwind/dwarf"
)

// The mutation campaign (issue 9): byte flips in the headers, .pdata,
// .xdata (unwind infos) and .debug_frame/.eh_frame of Wine's PE DLLs. Each
// mutated image goes through the guest PE loader (on a real Unicorn
// machine), unwind.ReadImage and stack walks at sample PCs over a fake
// stack (with the CFI fallback reading the mutated file), check-unwind's
// comparison, and the DWARF parsers. No stage may panic (a recovered
// panic fails the test) or take longer than mutationTimeout; each error
// must say what it is. Figures are logged (go test -v).
//
// Quick mode (default): 240 images. RSPSTUB_MUTATE=N tries N images over
// more DLLs; RSPSTUB_MUTATE_SEED=S repeats a run.

const wineDLLDir = "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows"

// mutationTimeout bounds all stages of one image. Most take
// milliseconds; the slowest known case is a header edit that makes
// SizeOfImage almost 1 GiB (the loader's limit): 0.7-1.3 s since the
// loader maps each run of equal permissions as its own Unicorn region
// (before, protecting parts of one 1 GiB region made Unicorn 2.0.1 copy
// all of it per section: 9 s and more). Stages over a second are logged.
const mutationTimeout = 15 * time.Second

// peRegion is a file range of one kind that mutations target.
type peRegion struct {
	kind     string // header, pdata, xdata, debug_frame, eh_frame
	off, end int
}

// peLayout is what the campaign needs to know of a (valid) PE file.
type peLayout struct {
	base     uint64
	size     uint32
	sections []peSection
	regions  []peRegion
	xdata    []int // file offsets of UNWIND_INFOs
}

type peSection struct {
	va, vsize, raw, rawSize uint32
}

func (l *peLayout) fileOff(rva uint32) (int, bool) {
	for _, s := range l.sections {
		if rva >= s.va && rva-s.va < s.rawSize {
			return int(s.raw + rva - s.va), true
		}
	}
	return 0, false
}

// parseLayout reads the headers of a PE32+ file, bounds-checked: for a
// mutated file it fails rather than guess (the mapping then stops, the
// code under test still sees the file).
func parseLayout(b []byte) (*peLayout, error) {
	if len(b) < 0x40 {
		return nil, errors.New("short file")
	}
	pe := int(binary.LittleEndian.Uint32(b[0x3c:]))
	if pe < 0 || pe+24+112 > len(b) || string(b[pe:pe+4]) != "PE\x00\x00" {
		return nil, errors.New("no PE header")
	}
	nsec := int(binary.LittleEndian.Uint16(b[pe+6:]))
	optSize := int(binary.LittleEndian.Uint16(b[pe+20:]))
	opt := pe + 24
	if binary.LittleEndian.Uint16(b[opt:]) != 0x20b || optSize < 112+16*8 || opt+optSize > len(b) {
		return nil, errors.New("not PE32+")
	}
	l := &peLayout{base: binary.LittleEndian.Uint64(b[opt+24:]), size: binary.LittleEndian.Uint32(b[opt+56:])}
	if l.size == 0 || l.size > 64<<20 {
		return nil, fmt.Errorf("SizeOfImage %#x", l.size)
	}
	st := opt + optSize
	if nsec > 96 || st+40*nsec > len(b) {
		return nil, errors.New("section table")
	}
	l.regions = append(l.regions, peRegion{"header", 0, st + 40*nsec})
	for i := 0; i < nsec; i++ {
		h := b[st+40*i:]
		s := peSection{va: binary.LittleEndian.Uint32(h[12:]), vsize: binary.LittleEndian.Uint32(h[8:]),
			raw: binary.LittleEndian.Uint32(h[20:]), rawSize: binary.LittleEndian.Uint32(h[16:])}
		if uint64(s.raw)+uint64(s.rawSize) > uint64(len(b)) {
			s.rawSize = uint32(max(0, len(b)-int(min(s.raw, uint32(len(b))))))
		}
		l.sections = append(l.sections, s)
	}
	// The exception directory (.pdata) and the UNWIND_INFOs it names.
	exRVA, exSize := binary.LittleEndian.Uint32(b[opt+112+3*8:]), binary.LittleEndian.Uint32(b[opt+112+3*8+4:])
	if off, ok := l.fileOff(exRVA); ok && exSize >= 12 && off+int(exSize) <= len(b) {
		l.regions = append(l.regions, peRegion{"pdata", off, off + int(exSize)})
		for i := 0; i+12 <= int(exSize) && len(l.xdata) < 4096; i += 12 {
			u := binary.LittleEndian.Uint32(b[off+i+8:])
			if x, ok := l.fileOff(u &^ 1); ok && x+16 <= len(b) {
				l.xdata = append(l.xdata, x)
			}
		}
	}
	if s, err := dwarf.PESections(b); err == nil {
		for _, r := range []*dwarf.RawSection{s.DebugFrame, s.EHFrame} {
			if r == nil || len(r.Data) == 0 {
				continue
			}
			if off, ok := l.fileOff(uint32(r.Addr - s.ImageBase)); ok && off+len(r.Data) <= len(b) {
				l.regions = append(l.regions, peRegion{strings.TrimPrefix(r.Name, "."), off, off + len(r.Data)})
			}
		}
	}
	return l, nil
}

// mapImage lays the file out as the loader would, as far as its headers
// allow.
func (l *peLayout) mapImage(b []byte) []byte {
	img := make([]byte, l.size)
	copy(img, b[:min(len(b), 0x1000, len(img))])
	for _, s := range l.sections {
		if s.va >= l.size {
			continue
		}
		n := min(s.rawSize, l.size-s.va)
		if s.raw < uint32(len(b)) {
			copy(img[s.va:s.va+n], b[s.raw:min(uint64(len(b)), uint64(s.raw)+uint64(n))])
		}
	}
	return img
}

// mutate returns a copy of b with a few bytes changed in one region
// (xdata: one UNWIND_INFO) and a description of what changed.
func mutate(rng *rand.Rand, b []byte, l *peLayout) ([]byte, string) {
	out := append([]byte(nil), b...)
	kinds := []string{"header", "pdata", "xdata", "debug_frame", "eh_frame"}
	var r peRegion
	for tries := 0; ; tries++ {
		kind := kinds[rng.IntN(len(kinds))]
		if kind == "xdata" && len(l.xdata) > 0 {
			x := l.xdata[rng.IntN(len(l.xdata))]
			r = peRegion{"xdata", x, min(x+24, len(b))}
			break
		}
		found := false
		for _, c := range l.regions {
			if c.kind == kind && c.end > c.off {
				r, found = c, true
				break
			}
		}
		if found || tries > 20 {
			break
		}
	}
	if r.end <= r.off {
		r = l.regions[0]
	}
	n := 1 + rng.IntN(4)
	var desc []string
	for i := 0; i < n; i++ {
		off := r.off + rng.IntN(r.end-r.off)
		switch rng.IntN(4) {
		case 0: // one bit
			out[off] ^= 1 << rng.IntN(8)
		case 1: // a random byte
			out[off] = byte(rng.Uint32())
		case 2: // a boundary byte
			out[off] = []byte{0, 0xff, 0x7f, 0x80}[rng.IntN(4)]
		case 3: // a boundary word, where it fits
			if off+4 <= len(out) {
				binary.LittleEndian.PutUint32(out[off:], []uint32{0, 0xffffffff, 0x7fffffff, 0x80000000, 0x1000}[rng.IntN(5)])
			}
		}
		desc = append(desc, fmt.Sprintf("%#x", off))
	}
	return out, r.kind + "@" + strings.Join(desc, ",")
}

// mutationOutcome classifies what the stages said of one image.
type mutationOutcome map[string]string // stage -> "ok" or error class

// errClass is a short, stable name for an error: its text up to the
// first number or colon-separated detail.
func errClass(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i > 0 {
		s = s[i+2:]
	}
	return strings.TrimSpace(numbers.ReplaceAllString(s, "N"))
}

var numbers = regexp.MustCompile(`0x[0-9a-fA-F]+|\b[0-9]+\b`)

// runStages feeds one image to every consumer. It returns the outcome or
// the panic it recovered.
func runStages(t *testing.T, dir string, b []byte) (out mutationOutcome, panicked string) {
	out = mutationOutcome{}
	defer func() {
		if p := recover(); p != nil {
			panicked = fmt.Sprintf("%v\n%s", p, debug.Stack())
		}
	}()
	last := time.Now()
	note := func(stage string, err error) {
		if d := time.Since(last); d > time.Second {
			out["slow:"+stage] = d.Round(time.Millisecond).String()
		}
		last = time.Now()
		if err == nil {
			out[stage] = "ok"
			return
		}
		if err.Error() == "" || strings.Contains(err.Error(), "internal error") {
			panicked = fmt.Sprintf("%s: unclear error %q", stage, err)
		}
		out[stage] = errClass(err)
	}
	// 1. The guest PE loader, on a real Unicorn machine.
	path := filepath.Join(dir, "m.exe")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	if m, err := unicorn.New(); err == nil {
		_, lerr := guest.Load(m, guest.Config{Program: path, Stdout: discard{}, Stderr: discard{}})
		note("load", lerr)
		m.Close()
	} else {
		t.Fatal(err)
	}
	// 2. The DWARF parsers.
	secs, err := dwarf.PESections(b)
	note("dwarf-sections", err)
	if err == nil {
		if s := secs.DebugFrame; s != nil {
			tab, err := dwarf.ParseDebugFrame(s.Data, s.Addr)
			note("debug-frame", err)
			if tab != nil {
				for i, f := range tab.FDEs {
					if i%16 == 0 {
						_, _ = f.RowAt(f.Begin + (f.End-f.Begin)/2)
					}
				}
			}
		}
		if fin, err := secs.Finder(); err == nil {
			_, _ = fin.Lookup(secs.ImageBase + 0x1000)
		}
	}
	// 3. unwind.ReadImage and walks over a stack of return-address look-alikes.
	l, err := parseLayout(b)
	if err == nil {
		img := l.mapImage(b)
		// Guest memory: the mapped image and a fake stack.
		const stack = 0x7ff0000
		stk := make([]byte, 0x2000)
		mem := &testkit.Memory{}
		mem.Map(l.base, img)
		mem.Map(stack, stk)
		mod := unwind.Module{Name: "m.dll", Base: l.base, Size: uint64(l.size)}
		im, err := unwind.ReadImage(mem, mod)
		note("read-image", err)
		if err == nil && len(im.Functions) > 0 {
			for i := 0; i+8 <= len(stk); i += 8 {
				f := im.Functions[(i/8*7)%len(im.Functions)]
				binary.LittleEndian.PutUint64(stk[i:], l.base+uint64(f.BeginAddress)+uint64(i%24))
			}
			u := unwind.New(mem, []unwind.Module{mod})
			cu := cfi.New(func(*unwind.Module) ([]byte, error) { return b, nil })
			for k := 0; k < 8; k++ {
				f := im.Functions[(k*len(im.Functions))/8]
				var ctx unwind.Context
				ctx.RIP, ctx.RIPKnown = l.base+uint64(f.BeginAddress)+uint64(k*3), true
				ctx.Set(arch.RSP, stack+0x100+uint64(k)*8)
				ctx.Set(arch.RBP, stack+0x800)
				st := u.Walk(ctx, unwind.WalkOptions{MaxFrames: 64, CFI: cu, FramePointer: true, Scan: true, ScanWords: 64})
				if len(st.Frames) > 64 {
					panicked = fmt.Sprintf("walk of %d frames", len(st.Frames))
				}
				out["walk-stop"] = st.Reason.String()
			}
		}
	}
	// 4. check-unwind's comparison.
	_, err = check.Check(b, check.Options{Examples: -1})
	note("check", err)
	return out, panicked
}

// keep writes a mutated image to $RSPSTUB_MUTATE_KEEP (when set), to
// reproduce a slow or failing one outside the campaign.
func keep(t *testing.T, i int, b []byte) {
	if dir := os.Getenv("RSPSTUB_MUTATE_KEEP"); dir != "" {
		p := filepath.Join(dir, fmt.Sprintf("mutant-%d.dll", i))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Error(err)
		}
		t.Logf("image %d kept as %s", i, p)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestMutationCampaign(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(wineDLLDir, "*.dll"))
	if len(files) == 0 {
		if testkit.RequireTools() {
			t.Fatalf("no Wine DLLs in %s (package libwine)", wineDLLDir)
		}
		t.Skipf("no Wine DLLs in %s (package libwine)", wineDLLDir)
	}
	n, ndlls := 240, 6
	if v := os.Getenv("RSPSTUB_MUTATE"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("RSPSTUB_MUTATE=%q", v)
		}
		ndlls = 40
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("RSPSTUB_MUTATE_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (RSPSTUB_MUTATE_SEED repeats it)", seed)
	rng := rand.New(rand.NewPCG(seed, 9))
	// DLLs of 40-200 KB with .pdata and CFI, spread over the sizes.
	type dll struct {
		path string
		b    []byte
		l    *peLayout
	}
	var pool []dll
	sort.Strings(files)
	for _, p := range files {
		fi, err := os.Stat(p)
		if err != nil || fi.Size() < 40<<10 || fi.Size() > 200<<10 {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		l, err := parseLayout(b)
		if err != nil || len(l.xdata) == 0 || len(l.regions) < 3 {
			continue
		}
		// Flag the DLL as a program (EXECUTABLE_IMAGE |
		// LARGE_ADDRESS_AWARE), or the loader stops at "is a DLL".
		pe := int(binary.LittleEndian.Uint32(b[0x3c:]))
		binary.LittleEndian.PutUint16(b[pe+22:], 0x22)
		pool = append(pool, dll{p, b, l})
	}
	if len(pool) < ndlls {
		t.Fatalf("only %d usable Wine DLLs", len(pool))
	}
	step := len(pool) / ndlls
	var dlls []dll
	for i := 0; i < ndlls; i++ {
		dlls = append(dlls, pool[i*step])
	}
	dir := t.TempDir()
	counts := map[string]map[string]int{}
	regions := map[string]int{}
	start := time.Now()
	var slowest time.Duration
	for i := 0; i < n; i++ {
		d := dlls[i%len(dlls)]
		mb, desc := mutate(rng, d.b, d.l)
		regions[strings.SplitN(desc, "@", 2)[0]]++
		type result struct {
			out mutationOutcome
			p   string
		}
		done := make(chan result, 1)
		t0 := time.Now()
		go func() {
			o, p := runStages(t, dir, mb)
			done <- result{o, p}
		}()
		select {
		case r := <-done:
			if r.p != "" {
				keep(t, i, mb)
				t.Fatalf("image %d (%s, %s): %s", i, filepath.Base(d.path), desc, r.p)
			}
			for stage, class := range r.out {
				if strings.HasPrefix(stage, "slow:") {
					t.Logf("image %d (%s, %s): %s took %s", i, filepath.Base(d.path), desc, stage[5:], class)
					keep(t, i, mb)
					continue
				}
				if counts[stage] == nil {
					counts[stage] = map[string]int{}
				}
				counts[stage][class]++
			}
		case <-time.After(mutationTimeout):
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			keep(t, i, mb)
			t.Fatalf("image %d (%s, %s): no answer in %v; goroutines:\n%s", i, filepath.Base(d.path), desc, mutationTimeout, buf)
		}
		slowest = max(slowest, time.Since(t0))
	}
	var names []string
	for _, d := range dlls {
		names = append(names, filepath.Base(d.path))
	}
	t.Logf("%d mutated images of %d DLLs (%s) in %v, slowest %v; mutations by region: %v", n, len(dlls),
		strings.Join(names, " "), time.Since(start).Round(time.Millisecond), slowest.Round(time.Millisecond), regions)
	var stages []string
	for s := range counts {
		stages = append(stages, s)
	}
	sort.Strings(stages)
	for _, s := range stages {
		t.Logf("  %-15s %v", s, counts[s])
	}
	if counts["load"]["ok"]+counts["read-image"]["ok"] == 0 {
		t.Error("no mutated image loaded: the mutations never reach the parsers' deeper code")
	}
}
