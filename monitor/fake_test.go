package monitor

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/testkit"
)

// fakeTarget is a hand-built guest: one module "app.exe" at imageBase
// with two functions and their .pdata, exports naming them, and a stack
// stopped inside g called from f:
//
//	f [0x1000, 0x1040): sub rsp, 28h (at +4); ... call g; +0x20: ...
//	g [0x1040, 0x1080): push rbx (at +1); sub rsp, 20h (at +5); stopped at +0x10
//
//	stack: sp+0x00 .. +0x1f  g's locals
//	       sp+0x20           rbx saved by g (0x1234)
//	       sp+0x28           return address into f (0x10001020)
//	       sp+0x30 .. +0x57  f's locals and home area
//	       sp+0x58           0 (end of stack)
type fakeTarget struct {
	mem    map[uint64][]byte // region start -> bytes
	regs   Registers
	shadow []ShadowFrame
}

const (
	imageBase = 0x10000000
	stackTop  = 0x200000
	stackLow  = 0x1f0000
	spAtStop  = 0x1ffe00
	tebAddr   = 0x300000
)

func newFake() *fakeTarget {
	img := make([]byte, 0x4000)
	le := binary.LittleEndian
	copy(img, "MZ")
	le.PutUint32(img[0x3c:], 0x80)
	copy(img[0x80:], "PE\x00\x00")
	fh := img[0x84:]
	le.PutUint16(fh[0:], 0x8664) // Machine
	le.PutUint16(fh[2:], 1)      // NumberOfSections
	le.PutUint16(fh[16:], 240)   // SizeOfOptionalHeader
	opt := img[0x98:]
	le.PutUint16(opt[0:], 0x20b)       // PE32+
	le.PutUint32(opt[56:], 0x4000)     // SizeOfImage
	le.PutUint32(opt[108:], 16)        // NumberOfRvaAndSizes
	le.PutUint32(opt[112:], 0x3100)    // export directory
	le.PutUint32(opt[116:], 0x100)     //
	le.PutUint32(opt[112+24:], 0x2000) // exception directory
	le.PutUint32(opt[116+24:], 24)
	sec := img[0x98+240:]
	copy(sec, ".text")
	le.PutUint32(sec[8:], 0x1000)      // VirtualSize
	le.PutUint32(sec[12:], 0x1000)     // VirtualAddress
	le.PutUint32(sec[36:], 0x60000020) // code, execute, read
	for i := 0x1000; i < 0x1080; i++ {
		img[i] = 0x90 // nop: never an epilog
	}
	// .pdata
	for i, rf := range [][3]uint32{{0x1000, 0x1040, 0x3000}, {0x1040, 0x1080, 0x3010}} {
		le.PutUint32(img[0x2000+12*i:], rf[0])
		le.PutUint32(img[0x2004+12*i:], rf[1])
		le.PutUint32(img[0x2008+12*i:], rf[2])
	}
	// UNWIND_INFO of f: version 1, prolog 4, 1 code: 04 42 UWOP_ALLOC_SMALL 0x28
	copy(img[0x3000:], []byte{0x01, 0x04, 0x01, 0x00, 0x04, 0x42, 0x00, 0x00})
	// UNWIND_INFO of g: version 1, prolog 5, 2 codes:
	//   05 32  at 5: UWOP_ALLOC_SMALL info 3 (0x20 bytes)
	//   01 30  at 1: UWOP_PUSH_NONVOL rbx
	copy(img[0x3010:], []byte{0x01, 0x05, 0x02, 0x00, 0x05, 0x32, 0x01, 0x30})
	// Export directory at 0x3100: 2 functions, 2 names.
	ed := img[0x3100:]
	le.PutUint32(ed[0x14:], 2)
	le.PutUint32(ed[0x18:], 2)
	le.PutUint32(ed[0x1c:], 0x3140) // AddressOfFunctions
	le.PutUint32(ed[0x20:], 0x3150) // AddressOfNames
	le.PutUint32(ed[0x24:], 0x3160) // AddressOfNameOrdinals
	le.PutUint32(img[0x3140:], 0x1000)
	le.PutUint32(img[0x3144:], 0x1040)
	le.PutUint32(img[0x3150:], 0x3170)
	le.PutUint32(img[0x3154:], 0x3172)
	le.PutUint16(img[0x3160:], 0)
	le.PutUint16(img[0x3162:], 1)
	copy(img[0x3170:], "f\x00g\x00")

	stack := make([]byte, stackTop-stackLow)
	at := func(a uint64) []byte { return stack[a-stackLow:] }
	le.PutUint64(at(spAtStop+0x28), imageBase+0x1020)
	le.PutUint64(at(spAtStop+0x20), 0x1234)
	le.PutUint64(at(spAtStop+0x30), 0xaa) // f's home slots
	le.PutUint64(at(spAtStop+0x38), 0xbb)
	le.PutUint64(at(spAtStop+0x58), 0)

	teb := make([]byte, 0x1000)
	le.PutUint64(teb[0x08:], stackTop)
	le.PutUint64(teb[0x10:], stackLow)
	le.PutUint64(teb[0x30:], tebAddr)
	le.PutUint64(teb[0x60:], 0) // no PEB

	f := &fakeTarget{mem: map[uint64][]byte{imageBase: img, stackLow: stack, tebAddr: teb}}
	f.regs.RIP = imageBase + 0x1050
	f.regs.GPR[arch.RSP] = spAtStop
	f.regs.GPR[arch.RBX] = 0x5678
	f.regs.GPR[arch.RCX] = 0x11
	f.regs.GPR[arch.RDX] = 0x22
	f.shadow = []ShadowFrame{{CallSite: imageBase + 0x101b, Target: imageBase + 0x1040, ReturnAddress: imageBase + 0x1020, SP: spAtStop + 0x28}}
	return f
}

func (f *fakeTarget) Registers() (Registers, error) { return f.regs, nil }

func (f *fakeTarget) ReadMemory(addr uint64, p []byte) (int, error) {
	for start, b := range f.mem {
		if addr >= start && addr-start < uint64(len(b)) {
			return copy(p, b[addr-start:]), nil
		}
	}
	return 0, nil
}

func (f *fakeTarget) Modules() []Module {
	return []Module{{Name: "app.exe", Path: `C:\app.exe`, Base: imageBase, Size: 0x4000}}
}

func (f *fakeTarget) TEB() (uint64, error) { return tebAddr, nil }

func (f *fakeTarget) Regions() []Region {
	return []Region{
		{Start: stackLow, Size: stackTop - stackLow, Perm: arch.PermRW, Name: "stack"},
		{Start: imageBase, Size: 0x4000, Perm: arch.PermRX, Name: "app.exe"},
	}
}

func (f *fakeTarget) ShadowStack() ([]ShadowFrame, bool) { return f.shadow, f.shadow != nil }

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	testkit.GoldenString(t, filepath.Join("testdata", name), got)
}

func run(t *testing.T, m *Monitor, cmd string) string {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, m.Run(cmd, &out), "monitor %s", cmd)
	return out.String()
}

func TestFakeGolden(t *testing.T) {
	m := New(newFake())
	for _, tc := range []struct{ cmd, file string }{
		{"bt", "bt.golden"},
		{"bt -full", "bt-full.golden"},
		{"bt -json", "bt-json.golden"},
		{"bt -n 1", "bt-n1.golden"},
		{"frame 1", "frame1.golden"},
		{"args", "args0.golden"},
		{"args 1", "args1.golden"},
		{"modules", "modules.golden"},
		{"modules -json", "modules-json.golden"},
		{"teb", "teb.golden"},
		{"memmap", "memmap.golden"},
		{"unwind-info f", "unwind-info-f.golden"},
		{"verify-unwind", "verify.golden"},
		{"help", "help.golden"},
	} {
		t.Run(tc.file, func(t *testing.T) { golden(t, tc.file, run(t, m, tc.cmd)) })
	}
}

func TestFakeBacktrace(t *testing.T) {
	m := New(newFake())
	bt, err := m.Backtrace(BacktraceOptions{})
	require.NoError(t, err)
	require.Len(t, bt.Frames, 2, "frames (%v)", bt.ended())
	g, f := bt.Frames[0].Loc, bt.Frames[1].Loc
	assert.Equal(t, "g", g.Symbol, "frame 0: %+v", g)
	assert.EqualValues(t, 0x10, g.SymOffset, "frame 0: %+v", g)
	assert.Equal(t, "f", f.Symbol, "frame 1: %+v", f)
	assert.EqualValues(t, 0x20, f.SymOffset, "frame 1: %+v", f)
	js := bt.JSON()
	assert.Equal(t, "0x1234", js[1].Regs["rbx"], "frame 1 regs")
	assert.Equal(t, map[string]string{"rbx": "0x1ffe20", "rip": "0x1ffe28"}, map[string]string{"rbx": js[1].Saved["rbx"], "rip": js[1].Saved["rip"]}, "frame 1 saved")
	assert.NotContains(t, js[1].Regs, "rcx", "volatile rcx reported in a caller frame")
}

func TestFakeVerifyMismatch(t *testing.T) {
	f := newFake()
	f.shadow[0].ReturnAddress++
	out := run(t, New(f), "verify-unwind")
	assert.True(t, strings.HasPrefix(out, "MISMATCH after 0 agreeing calls: frame 0"), "got %q", out)
	assert.Contains(t, out, "return address")
}

func TestErrors(t *testing.T) {
	f := newFake()
	f.shadow = nil
	m := New(f)
	for _, tc := range []struct{ cmd, want string }{
		{"nosuch", `unknown monitor command "nosuch"`},
		{"bt -x", `bt: unknown option "-x"`},
		{"bt -n", "-n needs a number"},
		{"bt -n -3", "not a non-negative number"},
		{"bt extra", "takes no arguments"},
		{"frame", "which frame?"},
		{"frame 7", "no frame 7: the stack has 2 frames"},
		{"frame x", `"x" is not a frame number`},
		{"unwind-info", "give one address or symbol"},
		{"unwind-info 0x5", "outside every module"},
		{"unwind-info nosuch", `no symbol "nosuch"`},
		{"unwind-info zz!f", `no module "zz" is loaded`},
		{"unwind-info 0xzz", "bad address"},
		{"unwind-info 0x10001090", "no unwind data"},
		{"verify-unwind", "it is off; start the stub with --shadow-stack"},
		{"peb", "no PEB pointer"},
		{`bt "-full`, "unterminated quote"},
		{"help nosuch", `no command "nosuch"`},
	} {
		var out bytes.Buffer
		assert.ErrorContains(t, m.Run(tc.cmd, &out), tc.want, "monitor %s", tc.cmd)
	}
}

func TestParse(t *testing.T) {
	name, args, err := Parse("  bt\t-full  'a b' \"c\"d ")
	if assert.NoError(t, err) {
		assert.Equal(t, "bt", name)
		assert.Equal(t, []string{"-full", "a b", "cd"}, args)
	}
	var full bool
	n := 0
	pos, err := parseFlags("bt", []string{"--full", "-n=3", "x"}, flagSpec{bools: map[string]*bool{"full": &full}, ints: map[string]*int{"n": &n}})
	if assert.NoError(t, err) {
		assert.True(t, full, "--full")
		assert.Equal(t, 3, n, "-n=3")
		assert.Equal(t, []string{"x"}, pos, "positional arguments")
	}
}

// FuzzRun feeds arbitrary command lines to every command: none may
// panic (Run would turn it into an "internal error").
func FuzzRun(f *testing.F) {
	for _, c := range commands {
		f.Add(c.name)
	}
	for _, s := range []string{"bt -full -json -n 2", "frame 1", "args 1 -count 9", "unwind-info app!g+0x4", "unwind-info 0x10001041", "help bt", "bt -n=99999999999", "'", "modules -json x"} {
		f.Add(s)
	}
	m := New(newFake())
	f.Fuzz(func(t *testing.T, line string) {
		var out bytes.Buffer
		err := m.Run(line, &out)
		if err != nil {
			require.NotContains(t, err.Error(), "internal error", "monitor %q", line)
		}
	})
}

// FuzzParse: the command-line parser never panics, and a line rebuilt
// from its words (each quoted) parses to the same words.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"bt -full", `args "1"`, "unwind-info 'msvcrt!fputc'", "  \t", `"`, "a'b c'd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		name, args, err := Parse(line)
		if err != nil || name == "" {
			return
		}
		words := append([]string{name}, args...)
		var b strings.Builder
		for _, w := range words {
			if strings.Contains(w, "'") {
				b.WriteString(`"` + w + `" `)
			} else {
				b.WriteString("'" + w + "' ")
			}
		}
		if strings.Contains(strings.Join(words, ""), "'") && strings.Contains(strings.Join(words, ""), `"`) {
			return // no quoting can hold both
		}
		if b.Len() > 4096 {
			return // quoting made the line longer than Parse accepts
		}
		n2, a2, err := Parse(b.String())
		require.NoError(t, err, "%q -> %q", line, words)
		require.Equal(t, strings.Join(words, "\x00"), strings.Join(append([]string{n2}, a2...), "\x00"), "%q: the words parsed back", line)
	})
}
