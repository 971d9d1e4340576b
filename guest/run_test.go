package guest

import (
	"github.com/rspstub/rspstub/internal/testkit"

	"bytes"
	"fmt"
	"testing"

	"github.com/rspstub/rspstub/emulator/unicorn"
	"github.com/rspstub/rspstub/internal/arch"
)

// runResult is the outcome of running a program on real Unicorn.
type runResult struct {
	stdout, stderr string
	exitCode       int
	traps          int
	unimplemented  string
	p              *Process
}

// runUnicorn loads exe into a fresh Unicorn machine and runs it to the end,
// serving traps like the integrator does.
func runUnicorn(t *testing.T, exe string, cfg Config, stopAt func(p *Process, m *unicorn.Machine, pc uint64) bool) runResult {
	t.Helper()
	m, err := unicorn.New()
	if err != nil {
		testkit.Missing(t, "unicorn not available: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	var out, errb bytes.Buffer
	cfg.Program = exe
	cfg.Stdout, cfg.Stderr = &out, &errb
	p, err := Load(m, cfg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	r := runResult{p: p}
	for i := 0; i < 100000; i++ {
		st := m.Run()
		if st.Reason != unicorn.StopTrap {
			rsp, _ := m.Reg(arch.RSP)
			t.Fatalf("stopped: %v at %#x (%s) addr %#x err %v rsp %#x\nstdout so far:\n%s", st.Reason, st.PC, p.RegionName(st.PC), st.Addr, st.Err, rsp, out.String())
		}
		if stopAt != nil && stopAt(p, m, st.PC) {
			break
		}
		res, err := p.HandleTrap(st.PC)
		r.traps++
		if err != nil {
			t.Fatalf("HandleTrap(%#x): %v", st.PC, err)
		}
		if res.Unimplemented != "" {
			r.unimplemented = res.Unimplemented
			t.Logf("unimplemented %s called from %#x", res.Unimplemented, res.Caller)
			break
		}
		if res.Exited {
			r.exitCode = res.ExitCode
			break
		}
	}
	r.stdout, r.stderr = out.String(), errb.String()
	return r
}

func TestRunHelloOnUnicorn(t *testing.T) {
	for _, tc := range []struct {
		key    string
		flags  []string
		msvcrt bool
	}{
		{"hello-O0", []string{"-O0"}, false},
		{"hello-O2", []string{"-O2"}, false},
		{"hello-msvcrt-printf", []string{"-O2", "-D__USE_MINGW_ANSI_STDIO=0"}, true},
	} {
		t.Run(tc.key, func(t *testing.T) {
			exe := buildC(t, tc.key, "hello.c", append([]string{"x86_64-w64-mingw32-gcc"}, tc.flags...))
			r := runUnicorn(t, exe, Config{Args: []string{"first arg"}}, nil)
			if r.unimplemented != "" {
				t.Fatalf("unimplemented %s; stdout:\n%s", r.unimplemented, r.stdout)
			}
			// By default mingw links its own printf, which formats in the
			// guest (two exponent digits); with __USE_MINGW_ANSI_STDIO=0
			// printf is msvcrt's, formatted by us with msvcrt's three.
			exp := "[3.142|   -2.50|1.234568e+04|0.0001|1e+08|x]\n"
			if tc.msvcrt {
				exp = "[3.142|   -2.50|1.234568e+004|0.0001|1e+008|x]\n"
			}
			want := "hello, world\n" +
				"argc=2 argv[1]=first arg\n" +
				"[   42|42   |00042|ff|FF|0xff|-1234567890123|18446744073709551615|8|Z|%]\n" +
				exp +
				"sorted: 1 2 3 5 7 9\n" +
				"heap string/11\n" +
				"atexit handler ran\n"
			if r.stdout != want {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, want)
			}
			if r.stderr != "to stderr\n" {
				t.Errorf("stderr %q", r.stderr)
			}
			if r.exitCode != 7 {
				t.Errorf("exit code %d", r.exitCode)
			}
			t.Logf("%d traps", r.traps)
		})
	}
}

var _ = fmt.Sprint
