package monitor

import (
	"bytes"
	"debug/elf"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/testkit"
)

const libcPath = "/lib/x86_64-linux-gnu/libc.so.6"

// elfTarget is a Linux process with the system's libc mapped at a bias
// (its PT_LOAD segments, as the dynamic linker maps them) and a zeroed
// stack. files adds ModuleFiler and DebugFiler over the host's files.
type elfTarget struct {
	*fakeTarget
	base uint64
}

type elfFiles struct{ elfTarget }

func (e elfFiles) ModuleFile(m Module) ([]byte, error) { return os.ReadFile(m.Path) }

func (e elfFiles) DebugFile(m Module, id []byte) ([]byte, error) {
	h := hex.EncodeToString(id)
	return os.ReadFile(filepath.Join("/usr/lib/debug/.build-id", h[:2], h[2:]+".debug"))
}

func (e elfTarget) Modules() []Module {
	return []Module{{Name: "libc.so.6", Path: libcPath, Base: e.base, Size: 0x200000}}
}

func newELFTarget(t *testing.T, pc uint64) elfTarget {
	t.Helper()
	f, err := elf.Open(libcPath)
	if err != nil {
		testkit.Missing(t, "%v", err)
	}
	defer f.Close()
	const base = 0x7f0000000000
	ft := &fakeTarget{mem: map[uint64][]byte{stackLow: make([]byte, stackTop-stackLow)}}
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		start := p.Vaddr &^ 0xfff
		b := make([]byte, p.Vaddr+p.Memsz-start)
		_, err := p.ReadAt(b[p.Vaddr-start:p.Vaddr-start+p.Filesz], 0)
		require.NoError(t, err)
		ft.mem[base+start] = b
	}
	ft.regs.RIP = base + pc
	ft.regs.GPR[arch.RSP] = spAtStop
	return elfTarget{ft, base}
}

// symbolAt finds a symbol's link-time address in an ELF file's table.
func symbolAt(t *testing.T, path, name string, dynamic bool) uint64 {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	syms, _ := f.Symbols()
	if dynamic {
		syms, _ = f.DynamicSymbols()
	}
	for _, s := range syms {
		if s.Name == name && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			return s.Value
		}
	}
	t.Skipf("%s: no symbol %s", path, name)
	return 0
}

func frame0(t *testing.T, tg Target) string {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, New(tg).Run("bt", &out))
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "00 ") {
			return strings.Fields(line)[3]
		}
	}
	require.FailNow(t, "no frame 0", out.String())
	return ""
}

// Without module files, an ELF module is named from the dynamic symbol
// table in guest memory.
func TestELFSymbolsFromMemory(t *testing.T) {
	pc := symbolAt(t, libcPath, "__libc_start_main", true) + 0x10
	tg := newELFTarget(t, pc)
	assert.Equal(t, "libc.so.6!__libc_start_main+0x10", frame0(t, tg), "frame 0")
	// A static function is not in .dynsym: the symbol before it does not
	// reach it (sizes), so it is shown as module+offset.
	dbg := debugFile(t)
	pc = symbolAt(t, dbg, "__libc_start_call_main", false) + 0x7a
	assert.Equal(t, "libc.so.6+"+hexs(pc), frame0(t, newELFTarget(t, pc)), "frame 0")
}

// With files, a stripped library's static functions are named from its
// build-id debug file, and the DWARF name wins over .symtab aliases.
func TestELFSymbolsFromDebugFile(t *testing.T) {
	dbg := debugFile(t)
	pc := symbolAt(t, dbg, "__libc_start_call_main", false) + 0x7a
	assert.Equal(t, "libc.so.6!__libc_start_call_main+0x7a", frame0(t, elfFiles{newELFTarget(t, pc)}), "frame 0")
	pc = symbolAt(t, dbg, "__libc_start_main_impl", false) + 0x85
	assert.Equal(t, "libc.so.6!__libc_start_main_impl+0x85", frame0(t, elfFiles{newELFTarget(t, pc)}), "frame 0")
}

// debugFile is libc's separate debug file (package libc6-dbg).
func debugFile(t *testing.T) string {
	t.Helper()
	f, err := elf.Open(libcPath)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	id := buildID(f)
	if id == nil {
		t.Skip("libc has no build ID")
	}
	h := hex.EncodeToString(id)
	p := filepath.Join("/usr/lib/debug/.build-id", h[:2], h[2:]+".debug")
	testkit.RequireFile(t, p, "libc6-dbg")
	return p
}
