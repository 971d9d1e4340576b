package unicorn

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/arch"
)

// Encodings libunicorn 2.0.1 cannot translate: its translator aborts the
// process (qemu/tcg/tcg.c:3073, a TCG temporary used before it is set)
// instead of raising #UD. Found by FuzzGuestCode; the same list seeds it.
var untranslatable = []struct {
	name string
	insn []byte
}{
	{"lcall reg", []byte{0xff, 0xd8}},                 // ff /3, mod=3: call far rax
	{"rex lcall reg", []byte{0x42, 0xff, 0xdd}},       // REX.X ff /3, mod=3: call far rbp
	{"ljmp reg", []byte{0xff, 0xe8}},                  // ff /5, mod=3: jmp far rax
	{"rex.w ljmp reg", []byte{0x49, 0xff, 0xef}},      // REX.WB ff /5, mod=3: jmp far r15
	{"opsize lcall reg", []byte{0x66, 0xff, 0xdb}},    // 66 ff /3, mod=3
	{"prefixed ljmp", []byte{0xf3, 0x2e, 0xff, 0xec}}, // rep cs: ff /5, mod=3
}

// TestUntranslatable: each encoding, after two instructions in the same
// block, stops as an illegal instruction at its own address, the two
// instructions before it having run exactly once; the machine then reads
// and writes registers and memory, moves RIP past it and goes on.
func TestUntranslatable(t *testing.T) {
	for _, tc := range untranslatable {
		t.Run(tc.name, func(t *testing.T) {
			bad := uint64(codeBase + len(faultPrologue))
			after := bad + uint64(len(tc.insn))
			m := newMachine(t, cat(faultPrologue, tc.insn, []byte{
				0x48, 0xff, 0xc1, // inc rcx
				0xf4, // hlt
			}))
			s := m.Run()
			wantStop(t, m, s, StopIllegal, bad)
			assert.True(t, s.Untranslatable, "Untranslatable")
			assert.Equal(t, tc.insn, s.Insn, "instruction bytes")
			// Its block's translation and its own.
			assert.Equal(t, uint64(2), m.TranslationAborts())
			assert.Equal(t, uint64(1), reg(t, m, arch.RAX))
			assert.Equal(t, uint64(2), reg(t, m, arch.RBX))

			// Stepping or running from it stops there again, like #UD.
			wantStop(t, m, m.Step(), StopIllegal, bad)
			wantStop(t, m, m.Run(), StopIllegal, bad)

			// Registers and memory work; the debugger skips the bytes.
			var c Context
			require.NoError(t, m.ReadContext(&c))
			c.GPR[arch.RCX] = 41
			require.NoError(t, m.WriteContext(&c))
			_, err := m.WriteMemory(dataBase, []byte{1, 2, 3})
			require.NoError(t, err)
			got := make([]byte, 3)
			_, err = m.ReadMemory(dataBase, got)
			require.NoError(t, err)
			assert.Equal(t, []byte{1, 2, 3}, got)
			require.NoError(t, m.SetReg(arch.RIP, after))
			wantStop(t, m, m.Run(), StopHalt, after+4)
			assert.Equal(t, uint64(42), reg(t, m, arch.RCX))
		})
	}
}

// TestUntranslatableAfterBreakpoint: the bytes follow a breakpoint in the
// same block. The breakpoint stops first, with nothing after it run; the
// run from it stops at the bytes; a step from the breakpoint steps.
func TestUntranslatableAfterBreakpoint(t *testing.T) {
	code := []byte{
		0x48, 0xc7, 0xc0, 0x01, 0x00, 0x00, 0x00, // 10000: mov rax, 1
		0x48, 0xff, 0xc3, // 10007: inc rbx        <- breakpoint
		0x48, 0xff, 0xc3, // 1000a: inc rbx
		0x42, 0xff, 0xdd, // 1000d: call far rbp (untranslatable)
		0x48, 0xff, 0xc1, // 10010: inc rcx
		0xf4, // 10013: hlt
	}
	const bp, bad = codeBase + 7, codeBase + 0xd
	for _, hw := range []bool{false, true} {
		m := newMachine(t, code)
		require.NoError(t, m.AddBreakpoint(bp, hw))
		want := StopBreakpoint
		if hw {
			want = StopHWBreakpoint
		}
		wantStop(t, m, m.Run(), want, bp)
		assert.Equal(t, uint64(1), reg(t, m, arch.RAX))
		assert.Equal(t, uint64(0), reg(t, m, arch.RBX), "nothing after the breakpoint ran")
		s := m.Run()
		wantStop(t, m, s, StopIllegal, bad)
		assert.True(t, s.Untranslatable)
		assert.Equal(t, uint64(2), reg(t, m, arch.RBX))

		// Back to the breakpoint: steps go one instruction at a time up
		// to the bytes, then stop on them.
		require.NoError(t, m.SetReg(arch.RIP, bp))
		wantStop(t, m, m.Step(), StopStep, bp+3)
		wantStop(t, m, m.Step(), StopStep, bad)
		wantStop(t, m, m.Step(), StopIllegal, bad)
		assert.Equal(t, uint64(4), reg(t, m, arch.RBX))
		// A range step over the block stops on them too.
		require.NoError(t, m.SetReg(arch.RIP, bp))
		wantStop(t, m, m.RangeStep(bp, bad+3), StopIllegal, bad)
		// The session goes on past them.
		require.NoError(t, m.SetReg(arch.RIP, bad+3))
		wantStop(t, m, m.Run(), StopHalt, bad+7)
		assert.Equal(t, uint64(1), reg(t, m, arch.RCX))
	}
}

// TestUntranslatableWithTracer: with a watchpoint and the shadow stack
// on, a watched write in the block before the bytes is reported first,
// then the bytes: an access watchpoint (hook mode: the tracer runs) and a
// write watchpoint (page mode: the guest has page tables, where the
// escape page must be canonical).
func TestUntranslatableWithTracer(t *testing.T) {
	for _, kind := range []WatchKind{WatchAccess, WatchWrite} {
		m := newMachine(t, []byte{
			0xe8, 0x01, 0x00, 0x00, 0x00, // 10000: call 0x10006
			0xf4,                                           // 10005: hlt
			0x48, 0x89, 0x04, 0x25, 0x08, 0x00, 0x30, 0x00, // 10006: mov [0x300008], rax
			0x90,       // 1000e: nop
			0xff, 0xd8, // 1000f: call far rax (untranslatable)
			0xc3, // 10011: ret
		})
		m.SetShadowStack(true)
		require.NoError(t, m.AddWatchpoint(dataBase+8, 8, kind))
		s := m.Run()
		wantStop(t, m, s, StopWatch, codeBase+0xe)
		assert.Equal(t, uint64(dataBase+8), s.Addr)
		wantStop(t, m, m.Run(), StopIllegal, codeBase+0xf)
		if sh := m.ShadowStack(); assert.Len(t, sh, 1) {
			assert.Equal(t, uint64(codeBase+5), sh[0].ReturnAddress)
		}
		require.NoError(t, m.SetReg(arch.RIP, codeBase+0x11))
		wantStop(t, m, m.Run(), StopHalt, codeBase+6)
	}
}

// TestUntranslatableRepeated: thousands of aborts in one machine leave it
// working (each leaks a few hundred bytes of translation buffer inside
// libunicorn, reclaimed when that buffer is flushed).
func TestUntranslatableRepeated(t *testing.T) {
	m := newMachine(t, cat(faultPrologue, []byte{0xff, 0xd8, 0xf4}))
	const n = 3000
	for i := 0; i < n; i++ {
		require.NoError(t, m.SetReg(arch.RIP, codeBase))
		s := m.Run()
		require.Equal(t, StopIllegal, s.Reason, "run %d", i)
		require.Equal(t, uint64(codeBase+len(faultPrologue)), s.PC, "run %d", i)
	}
	assert.Equal(t, uint64(2*n), m.TranslationAborts())
	m2 := newMachine(t, countLoop)
	require.NoError(t, m2.AddBreakpoint(codeBase+3, false))
	wantStop(t, m2, m2.Run(), StopBreakpoint, codeBase+3)
}

// TestForeignAbort: an abort() that is not libunicorn's translator in a
// run (here: called directly) still ends the process, through Go's own
// handler, exactly as without the machine's SIGABRT handler.
func TestForeignAbort(t *testing.T) {
	if os.Getenv("RSPSTUB_TEST_FOREIGN_ABORT") == "1" {
		m, err := New()
		if err != nil {
			os.Exit(3)
		}
		defer m.Close()
		abortNow()
		os.Exit(4) // not reached
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestForeignAbort$", "-test.count=1")
	cmd.Env = append(os.Environ(), "RSPSTUB_TEST_FOREIGN_ABORT=1")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the child survived an abort():\n%s", out)
	assert.Contains(t, string(out), "SIGABRT", "Go's crash report")
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.NotContains(t, []int{0, 3, 4}, ee.ExitCode(), "exit code %d:\n%s", ee.ExitCode(), out)
	assert.False(t, strings.Contains(string(out), "PASS"), "the child went on after abort()")
}

func TestMapReserved(t *testing.T) {
	m := newMachine(t, nil)
	for _, r := range [][2]uint64{{reservedStart, PageSize}, {reservedStart + PageSize, PageSize}, {reservedStart - PageSize, 2 * PageSize}} {
		assert.Error(t, m.Map(r[0], r[1], arch.PermRX), "Map(%#x, %#x)", r[0], r[1])
	}
	assert.NoError(t, m.Map(reservedEnd, PageSize, arch.PermRX))
}

// TestBreakpointOnUntranslatable: a breakpoint or a trap on the bytes
// themselves stops first, as before any instruction; resuming from the
// breakpoint reports the bytes.
func TestBreakpointOnUntranslatable(t *testing.T) {
	bad := uint64(codeBase + len(faultPrologue))
	m := newMachine(t, cat(faultPrologue, []byte{0xff, 0xd8, 0xf4}))
	require.NoError(t, m.AddBreakpoint(bad, false))
	wantStop(t, m, m.Run(), StopBreakpoint, bad)
	assert.Equal(t, uint64(2), reg(t, m, arch.RBX))
	wantStop(t, m, m.Run(), StopIllegal, bad)
	require.NoError(t, m.RemoveBreakpoint(bad, false))

	m = newMachine(t, cat(faultPrologue, []byte{0xff, 0xd8, 0xf4}))
	require.NoError(t, m.AddTrapRange(bad, bad+2))
	wantStop(t, m, m.Run(), StopTrap, bad)
}
