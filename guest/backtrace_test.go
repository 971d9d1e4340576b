package guest

import (
	"strings"
	"testing"

	"github.com/rspstub/rspstub/emulator/unicorn"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/unwind"
)

// walkAt unwinds the guest from its current registers with .pdata only.
func walkAt(t *testing.T, p *Process, m *unicorn.Machine) (unwind.Stack, []string) {
	t.Helper()
	var mods []unwind.Module
	for _, md := range p.Modules() {
		mods = append(mods, unwind.Module{Name: md.Name, Base: md.Base, Size: md.Size})
	}
	u := unwind.New(m, mods)
	var ctx unwind.Context
	for r := arch.RAX; r <= arch.R15; r++ {
		v, _ := m.Reg(r)
		ctx.Set(r, v)
	}
	pc, _ := m.Reg(arch.RIP)
	ctx.Set(arch.RIP, pc)
	st := u.Walk(ctx, unwind.WalkOptions{})
	var names []string
	for _, f := range st.Frames {
		name := "?"
		if md := p.moduleAt(f.PC); md != nil {
			name = md.Name
			if md.synth != nil {
				for n, r := range md.synth.codeRVA {
					if f.PC-md.Base >= uint64(r) && f.PC-md.Base < uint64(r)+32 {
						name += "!" + n
					}
				}
				if s := p.stubs[f.PC]; s != nil {
					name += "!" + s.name
				}
				if s := p.stubs[f.PC-stubRetOffset]; s != nil {
					name += "!" + s.name
				}
			}
		}
		names = append(names, name)
	}
	return st, names
}

// TestBacktraceThroughSynthesizedDLLs checks that a .pdata walk from an API
// trap, and from guest code called back by an API, ends exactly in
// KERNEL32!BaseThreadInitThunk, ntdll!RtlUserThreadStart.
func TestBacktraceThroughSynthesizedDLLs(t *testing.T) {
	exe := buildC(t, "chain-O0", "chain.c", mingwGCC("-O0"))
	var walks [][]string
	var reasons []unwind.StopReason
	r := runUnicorn(t, exe, Config{}, func(p *Process, m *unicorn.Machine, pc uint64) bool {
		s := p.stubs[pc]
		if s == nil {
			return false
		}
		rsp, _ := m.Reg(arch.RSP)
		caller, _ := p.mem.ReadU64(rsp)
		// puts called from d (the fourth puts), and putchar called from the
		// qsort comparator (the first one).
		if (s.name == "puts" && len(walks) == 0 && strings.Count(r0(p), "in ") == 3) ||
			(s.name == "putchar" && len(walks) == 1) {
			st, names := walkAt(t, p, m)
			walks = append(walks, names)
			reasons = append(reasons, st.Reason)
			_ = caller
		}
		return false
	})
	if r.exitCode != 0 || !strings.Contains(r.stdout, "in d\n") || !strings.HasSuffix(r.stdout, "\n1 2 3\n") {
		t.Fatalf("exit %d stdout %q", r.exitCode, r.stdout)
	}
	if len(walks) != 2 {
		t.Fatalf("got %d walks", len(walks))
	}
	exeName := "chain-O0.exe"
	want := [][]string{
		{"msvcrt.dll!puts", exeName, exeName, exeName, exeName, exeName, exeName, exeName,
			"KERNEL32.dll!BaseThreadInitThunk", "ntdll.dll!RtlUserThreadStart"},
		{"msvcrt.dll!putchar", exeName, "msvcrt.dll!qsort", exeName, exeName, exeName,
			"KERNEL32.dll!BaseThreadInitThunk", "ntdll.dll!RtlUserThreadStart"},
	}
	for i := range want {
		if strings.Join(walks[i], " ") != strings.Join(want[i], " ") {
			t.Errorf("walk %d:\n got %v\nwant %v", i, walks[i], want[i])
		}
		if reasons[i] != unwind.StopZeroReturn {
			t.Errorf("walk %d ended with %v, want zero return address", i, reasons[i])
		}
	}
}

// r0 is filled by the test's output buffer; see runUnicorn.
func r0(p *Process) string {
	if b, ok := p.cfg.Stdout.(interface{ String() string }); ok {
		return b.String()
	}
	return ""
}
