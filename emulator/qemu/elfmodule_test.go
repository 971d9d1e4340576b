package qemu

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/rspstub/rspstub/internal/testkit"
)

// buildCGuest builds the C guest of testdata/cguest.S and cguest.c with
// the given compiler flags, as the 64-bit ELF (for --module and gdb) and
// the elf32-i386 copy QEMU boots. strip removes its CFI.
func buildCGuest(t *testing.T, name string, strip bool, cflags ...string) (elf64, kernel string) {
	t.Helper()
	needTool(t, "gcc", "ld", "objcopy")
	dir := testkit.Fixture(t, name, func(t testing.TB, dir string) {
		abs := func(p string) string { a, _ := filepath.Abs(p); return a }
		run(t, dir, "gcc", "-c", "-o", name+"-boot.o", abs("testdata/cguest.S"))
		args := append([]string{"-c", "-ffreestanding", "-fno-pic", "-mno-red-zone"}, cflags...)
		run(t, dir, "gcc", append(args, "-o", name+".o", abs("testdata/cguest.c"))...)
		run(t, dir, "ld", "-m", "elf_x86_64", "-T", abs("testdata/guest.ld"), "-o", name+"64.elf", name+"-boot.o", name+".o")
		if strip {
			run(t, dir, "objcopy", "--remove-section", ".debug_frame", "--remove-section", ".eh_frame", name+"64.elf")
		}
		run(t, dir, "objcopy", "-O", "elf32-i386", name+"64.elf", name+".elf")
	})
	return filepath.Join(dir, name+"64.elf"), filepath.Join(dir, name+".elf")
}

// TestELFModuleBacktrace is issue 14's QEMU case: a system-mode guest
// kernel given as an ELF --module (no base: where it was linked), stopped
// in level5 of a 5-deep C call chain through gdb. monitor bt names every
// frame from the kernel's CFI; without CFI, a frame-pointer build is
// walked with -heuristics.
func TestELFModuleBacktrace(t *testing.T) {
	needTool(t, "qemu-system-x86_64", "gdb")
	for _, tc := range []struct {
		name    string
		strip   bool
		cflags  []string
		bt      string
		trusted string // the trust of the caller frames
	}{
		{"cfi-O2", false, []string{"-O2", "-g"}, "monitor bt", "cfi"},
		{"fp-O0", true, []string{"-O0", "-fno-omit-frame-pointer", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables"}, "monitor bt -heuristics", "frame-pointer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			elf64, kernel := buildCGuest(t, "cguest-"+tc.name, tc.strip, tc.cflags...)
			c := testkit.StartCommand(t, append([]string{"qemu", "--listen", "127.0.0.1:0", "--module", elf64, "--"}, testkit.QEMUSystemArgs(kernel, 1)...)...)
			out := runTool(t, nil, "gdb", "-batch", "-nx",
				"-ex", "set confirm off",
				"-ex", "target remote "+c.Addr,
				"-ex", "break level5",
				"-ex", "continue",
				"-ex", "echo @@bt\\n",
				"-ex", tc.bt,
				"-ex", "echo @@modules\\n",
				"-ex", "monitor modules",
				"-ex", "echo @@end\\n",
				"-ex", "kill",
				elf64)
			bt, _, _ := strings.Cut(out[strings.Index(out, "@@bt")+1:], "@@modules")
			for i, fn := range []string{"level5", "level4", "level3", "level2", "level1", "c_main"} {
				trust := tc.trusted
				if i == 0 {
					trust = "context"
				}
				re := fmt.Sprintf(`(?m)^%02x [0-9a-f]{8}`+"`"+`[0-9a-f]{8}  \S+\s+%s!%s(\+0x[0-9a-f]+)? .*%s$`,
					i, regexp.QuoteMeta(filepath.Base(elf64)), fn, trust)
				assert.Regexp(t, re, bt, "frame %d %s (%s) missing", i, fn, trust)
			}
			assert.Contains(t, out, filepath.Base(elf64), "the kernel module is not used")
			assert.NotContains(t, bt, "pc outside every module", "the kernel module is not used")
			if t.Failed() {
				t.Logf("gdb:\n%s\nstub:\n%s", out, c.Stderr())
			}
		})
	}
}
