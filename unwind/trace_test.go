package unwind

import (
	"github.com/stretchr/testify/require"

	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rspstub/rspstub/internal/arch"
)

// traceRec mirrors struct trace_rec of testdata/walk.c.
type traceRec struct {
	gpr   [16]uint64
	rip   uint64
	xmm   [16]Uint128
	ogpr  [16]uint64
	orip  uint64
	oxmm  [16]Uint128
	found uint64
	stack []byte
}

const traceStack = 8192
const traceRecSize = 8*(16+1+32)*2 + 8 + traceStack

func parseTrace(b []byte) []traceRec {
	var out []traceRec
	for len(b) >= traceRecSize {
		var r traceRec
		u := func(i int) uint64 { return binary.LittleEndian.Uint64(b[8*i:]) }
		for i := range 16 {
			r.gpr[i] = u(i)
			r.xmm[i] = Uint128{u(17 + 2*i), u(18 + 2*i)}
			r.ogpr[i] = u(49 + i)
			r.oxmm[i] = Uint128{u(66 + 2*i), u(67 + 2*i)}
		}
		r.rip, r.orip, r.found = u(16), u(65), u(98)
		r.stack = b[99*8 : 99*8+traceStack]
		out = append(out, r)
		b = b[traceRecSize:]
	}
	return out
}

// TestWineSingleStep compares one unwind step with Wine's RtlVirtualUnwind
// at every instruction the fixtures execute inside functions with unwind
// data: prologs, bodies and epilogs of compiled C and of rare.S.
//
// Wine's unwinder is not Windows': it takes the establisher frame from the
// frame register even before UWOP_SET_FPREG has run, and it does not treat
// a jmp out of the function as an epilog. Where our result differs and one
// of those explains it, the instruction is counted as a known Wine
// deviation; any other difference fails.
func TestWineSingleStep(t *testing.T) {
	if testing.Short() {
		t.Skip("wine oracle is slow; skipped with -short")
	}
	_, fixtures := sharedFixtures(t)
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			raw, err := os.ReadFile(runFixture(t, fx).trace)
			require.NoError(t, err)
			recs := parseTrace(raw)
			mod, img, err := mapPE(fx.exe)
			require.NoError(t, err)
			checked, tooBig, wineDev, epilogs, prologs := 0, 0, 0, 0, 0
			fns := map[uint32]bool{}
			for _, r := range recs {
				m := &fakeMem{}
				m.Map(mod.Base, img)
				m.Map(r.gpr[arch.RSP], r.stack)
				u := New(m, []Module{{Name: "fixture", Base: mod.Base, Size: uint64(len(img))}})
				var ctx Context
				for i := range 16 {
					ctx.Set(arch.Reg(i), r.gpr[i])
					ctx.SetXMM(i, r.xmm[i])
				}
				ctx.Set(arch.RIP, r.rip)
				si, err := u.Step(&ctx, 0)
				rva := uint32(r.rip - mod.Base)
				if err != nil {
					var re *ReadError
					if IsReadError(err) && asReadError(err, &re) && re.Addr >= r.gpr[arch.RSP]+traceStack {
						tooBig++ // the frame is larger than the recorded stack (rare_far's 1 MiB)
						continue
					}
					t.Errorf("rva %#x: %v", rva, err)
					continue
				}
				fns[si.Function.BeginAddress] = true
				if si.InEpilog {
					epilogs++
				}
				if si.InProlog {
					prologs++
				}
				diff := compareStep(&ctx, r)
				if diff == "" {
					checked++
					continue
				}
				if why := wineDeviation(u, si, r, mod.Base); why != "" {
					wineDev++
					t.Logf("rva %#x: differs from Wine (%s): %s", rva, why, diff)
					continue
				}
				t.Errorf("rva %#x (function %#x, prolog %v, epilog %v): %s", rva, si.Function.BeginAddress, si.InProlog, si.InEpilog, diff)
			}
			t.Logf("%s: %d instructions traced in %d functions: %d agree with Wine (%d in prologs, %d in epilogs), %d known Wine deviations, %d skipped (frame larger than the %d-byte stack copy)",
				fx.name, len(recs), len(fns), checked, prologs, epilogs, wineDev, tooBig, traceStack)
			if checked < len(recs)/2 {
				t.Errorf("only %d of %d instructions checked", checked, len(recs))
			}
		})
	}
}

func asReadError(err error, re **ReadError) bool {
	for err != nil {
		if r, ok := err.(*ReadError); ok {
			*re = r
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// compareStep returns "" when our caller context matches Wine's.
func compareStep(ctx *Context, r traceRec) string {
	var d []string
	if ctx.RIP != r.orip {
		d = append(d, fmt.Sprintf("rip %#x want %#x", ctx.RIP, r.orip))
	}
	if ctx.RSP() != r.ogpr[arch.RSP] {
		d = append(d, fmt.Sprintf("rsp %#x want %#x", ctx.RSP(), r.ogpr[arch.RSP]))
	}
	for _, reg := range refRegs {
		if v, _ := ctx.Get(reg); v != r.ogpr[reg] {
			d = append(d, fmt.Sprintf("%v %#x want %#x", reg, v, r.ogpr[reg]))
		}
	}
	for x := 6; x < 16; x++ {
		if v, _ := ctx.GetXMM(x); v != r.oxmm[x] {
			d = append(d, fmt.Sprintf("xmm%d %#x want %#x", x, v, r.oxmm[x]))
		}
	}
	return strings.Join(d, ", ")
}

// wineDeviation explains a difference by a known departure of Wine's
// RtlVirtualUnwind from Windows', or returns "".
func wineDeviation(u *Unwinder, si StepInfo, r traceRec, base uint64) string {
	info, err := si.Function.Image.UnwindInfo(u.mem, si.Function.UnwindData)
	if err != nil {
		return ""
	}
	off := uint32(r.rip - base - uint64(si.Function.BeginAddress))
	if info.FrameRegister != 0 && off < uint32(info.SizeOfProlog) {
		if fo, ok := info.setFPRegOffset(); ok && off < uint32(fo) {
			return "Wine uses the frame register before UWOP_SET_FPREG has run"
		}
	}
	return ""
}

func stopWineserver(wine string, env []string) {
	server := filepath.Join(filepath.Dir(wine), "wineserver")
	if _, err := os.Stat(server); err != nil {
		server = "wineserver"
	}
	cmd := execCommand(server, "-k")
	cmd.Env = append(os.Environ(), env...)
	_ = cmd.Run()
}
