package unicorn

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/arch"
)

// Write watchpoints in page mode (watch.c): their page is write-protected
// through the guest's page tables and each write to it runs in the twin.
// The byte listings were assembled with GNU as (intel syntax) from the
// mnemonics beside them.

func u64(t *testing.T, m *Machine, addr uint64) uint64 {
	t.Helper()
	var b [8]byte
	n, err := m.ReadMemory(addr, b[:])
	require.NoError(t, err)
	require.Equal(t, 8, n)
	return binary.LittleEndian.Uint64(b[:])
}

// wantWatch checks a write watchpoint stop: after the instruction at
// accessPC, which wrote addr.
func wantWatch(t *testing.T, m *Machine, s Stop, pc, addr, accessPC uint64) {
	t.Helper()
	wantStop(t, m, s, StopWatch, pc)
	assert.Equal(t, addr, s.Addr, "data address")
	assert.Equal(t, accessPC, s.AccessPC, "access PC")
	assert.Equal(t, arch.PermWrite, s.Access)
	assert.Equal(t, WatchWrite, s.Watch)
}

// TestWatchPageFlags: a hundred writes next to the watched bytes, each
// between a compare and the setcc that reads its flags, run in the twin
// and leave the flags intact; the write to the watched bytes stops after
// its instruction.
func TestWatchPageFlags(t *testing.T) {
	code := []byte{
		0x48, 0xc7, 0xc1, 0x64, 0x00, 0x00, 0x00, // 10000: mov rcx, 100
		0x48, 0xc7, 0xc2, 0x00, 0x00, 0x00, 0x00, // 10007: mov rdx, 0
		0x48, 0x83, 0xf9, 0x32, // 1000e: cmp rcx, 50
		0x48, 0x89, 0x0c, 0x25, 0x00, 0x01, 0x30, 0x00, // 10012: mov [0x300100], rcx
		0x0f, 0x94, 0xc0, // 1001a: sete al
		0x0f, 0xb6, 0xc0, // 1001d: movzx eax, al
		0x48, 0x01, 0xc2, // 10020: add rdx, rax
		0x48, 0xff, 0xc9, // 10023: dec rcx
		0x75, 0xe6, // 10026: jnz 0x1000e
		0x48, 0x89, 0x14, 0x25, 0x08, 0x08, 0x30, 0x00, // 10028: mov [0x300808], rdx
		0x90, // 10030: nop
		0xf4, // 10031: hlt
	}
	m := newMachine(t, code)
	require.NoError(t, m.AddWatchpoint(dataBase+0x808, 8, WatchWrite))
	wantWatch(t, m, m.Run(), codeBase+0x30, dataBase+0x808, codeBase+0x28)
	assert.Equal(t, uint64(1), reg(t, m, arch.RDX), "sete saw the flags of cmp once")
	assert.Equal(t, uint64(1), u64(t, m, dataBase+0x808))
	assert.Equal(t, uint64(1), u64(t, m, dataBase+0x100))
	st := m.WatchStats()
	assert.Equal(t, uint64(101), st.Faults)
	assert.Equal(t, uint64(1), st.Hits)
	assert.Equal(t, 1, st.Pages)
	wantStop(t, m, m.Run(), StopHalt, codeBase+0x32)
	// The page tables are the machine's own business.
	assert.Equal(t, m.ucRegions(), m.Regions())
}

// TestWatchPageRepStos: a rep stosb through the watched bytes stops after
// each iteration that writes one, on the rep instruction (iterations
// left), as the hardware reports data breakpoints in string instructions.
func TestWatchPageRepStos(t *testing.T) {
	code := []byte{
		0x48, 0xc7, 0xc7, 0xf0, 0x07, 0x30, 0x00, // 10000: mov rdi, 0x3007f0
		0x48, 0xc7, 0xc1, 0x20, 0x00, 0x00, 0x00, // 10007: mov rcx, 0x20
		0xb0, 0xab, // 1000e: mov al, 0xab
		0xf3, 0xaa, // 10010: rep stosb
		0x90, // 10012: nop
		0xf4, // 10013: hlt
	}
	m := newMachine(t, code)
	require.NoError(t, m.AddWatchpoint(dataBase+0x800, 2, WatchWrite))
	for i := uint64(0); i < 2; i++ {
		wantWatch(t, m, m.Run(), codeBase+0x10, dataBase+0x800+i, codeBase+0x10)
		assert.Equal(t, 0x20-0x10-1-i, reg(t, m, arch.RCX))
		assert.Equal(t, dataBase+0x801+i, reg(t, m, arch.RDI))
	}
	wantStop(t, m, m.Run(), StopHalt, codeBase+0x14)
	var b [0x20]byte
	_, err := m.ReadMemory(dataBase+0x7f0, b[:])
	require.NoError(t, err)
	for i, v := range b {
		require.Equal(t, byte(0xab), v, "byte %d", i)
	}
}

// TestWatchPageCall: a call's push to a watched stack slot stops at the
// callee.
func TestWatchPageCall(t *testing.T) {
	code := []byte{
		0x48, 0xc7, 0xc4, 0x00, 0x80, 0x20, 0x00, // 10000: mov rsp, 0x208000
		0xe8, 0x01, 0x00, 0x00, 0x00, // 10007: call 0x1000d
		0xf4, // 1000c: hlt
		0xc3, // 1000d: ret
	}
	m := newMachine(t, code)
	require.NoError(t, m.AddWatchpoint(0x207ff8, 8, WatchWrite))
	wantWatch(t, m, m.Run(), codeBase+0xd, 0x207ff8, codeBase+7)
	assert.Equal(t, uint64(0x207ff8), reg(t, m, arch.RSP))
	assert.Equal(t, uint64(codeBase+0xc), u64(t, m, 0x207ff8))
	wantStop(t, m, m.Run(), StopHalt, codeBase+0xd)
}

// TestWatchPageFP: SSE and x87 stores to the page run in the twin with
// the machine's FPU state, and bring its changes (the x87 pops) back.
func TestWatchPageFP(t *testing.T) {
	code := []byte{
		0xd9, 0xe8, // 10000: fld1
		0xd9, 0xeb, // 10002: fldpi
		0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // 10004: movabs rax, 0x1122334455667788
		0x66, 0x48, 0x0f, 0x6e, 0xc8, // 1000e: movq xmm1, rax
		0x66, 0x0f, 0xd6, 0x0c, 0x25, 0x00, 0x01, 0x30, 0x00, // 10013: movq [0x300100], xmm1
		0xdd, 0x1c, 0x25, 0x08, 0x01, 0x30, 0x00, // 1001c: fstp qword [0x300108]
		0xdd, 0x1c, 0x25, 0x08, 0x08, 0x30, 0x00, // 10023: fstp qword [0x300808]
		0x90, // 1002a: nop
		0xf4, // 1002b: hlt
	}
	m := newMachine(t, code)
	require.NoError(t, m.AddWatchpoint(dataBase+0x808, 8, WatchWrite))
	wantWatch(t, m, m.Run(), codeBase+0x2a, dataBase+0x808, codeBase+0x23)
	assert.Equal(t, uint64(0x1122334455667788), u64(t, m, dataBase+0x100))
	assert.Equal(t, math.Float64bits(math.Pi), u64(t, m, dataBase+0x108))
	assert.Equal(t, math.Float64bits(1), u64(t, m, dataBase+0x808))
	assert.Equal(t, uint64(3), m.WatchStats().Faults)
	// Every register as a run without the watchpoint leaves it.
	ref := newMachine(t, code)
	require.NoError(t, ref.AddBreakpoint(codeBase+0x2a, false))
	wantStop(t, ref, ref.Run(), StopBreakpoint, codeBase+0x2a)
	var got, want Context
	require.NoError(t, m.ReadContext(&got))
	require.NoError(t, ref.ReadContext(&want))
	assert.Equal(t, want, got)
	assert.Equal(t, uint32(0), (got.FSTAT>>11)&7, "x87 top of stack back to 0")
}

// TestWatchPageTwinFault: a write that starts on the watched page and ends
// on unmapped memory faults in the twin; the machine stops on the
// instruction with an exact PC, as it would without the watchpoint.
func TestWatchPageTwinFault(t *testing.T) {
	code := []byte{
		0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, // 10000: mov rax, -1
		0x48, 0x89, 0x04, 0x25, 0xfc, 0x0f, 0x30, 0x00, // 10007: mov [0x300ffc], rax
		0xf4, // 1000f: hlt
	}
	m := newMachine(t, code)
	require.NoError(t, m.AddWatchpoint(dataBase+0x808, 8, WatchWrite))
	s := m.Run()
	wantStop(t, m, s, StopFault, codeBase+7)
	assert.Equal(t, arch.PermWrite, s.Access)
	assert.False(t, s.Inexact)
	assert.Equal(t, uint64(0xffffffffffffffff), reg(t, m, arch.RAX))
}

// TestWatchPageSelfModifying: the twin's write over code the machine has
// translated drops that translation.
func TestWatchPageSelfModifying(t *testing.T) {
	code := []byte{
		0xb9, 0x02, 0x00, 0x00, 0x00, // 10000: mov ecx, 2
		0xb8, 0x07, 0x00, 0x00, 0x00, // 10005: mov eax, 7
		0xc6, 0x05, 0xf5, 0xff, 0xff, 0xff, 0x2a, // 1000a: mov byte [rip-11], 0x2a (the 7 above)
		0xff, 0xc9, // 10011: dec ecx
		0x75, 0xf0, // 10013: jnz 0x10005
		0xf4, // 10015: hlt
	}
	m := newMachine(t, code)
	require.NoError(t, m.Protect(codeBase, PageSize, arch.PermRWX))
	require.NoError(t, m.AddWatchpoint(codeBase+0x800, 8, WatchWrite))
	wantStop(t, m, m.Run(), StopHalt, codeBase+0x16)
	assert.Equal(t, uint64(0x2a), reg(t, m, arch.RAX), "the second pass ran the patched instruction")
	assert.Equal(t, uint64(2), m.WatchStats().Faults)
}

// TestWatchPageCycle: GDB removes every watchpoint at a stop and inserts it
// again before resuming; the page stays protected in between (no TLB
// flush each time), and is released once the watchpoint stays removed.
func TestWatchPageCycle(t *testing.T) {
	code := []byte{
		0x48, 0x89, 0x04, 0x25, 0x08, 0x08, 0x30, 0x00, // 10000: mov [0x300808], rax
		0xeb, 0xf6, // 10008: jmp 0x10000
	}
	m := newMachine(t, code)
	require.NoError(t, m.AddWatchpoint(dataBase+0x808, 8, WatchWrite))
	for i := 0; i < 10; i++ {
		wantWatch(t, m, m.Run(), codeBase+8, dataBase+0x808, codeBase)
		require.NoError(t, m.RemoveWatchpoint(dataBase+0x808, 8, WatchWrite))
		require.NoError(t, m.AddWatchpoint(dataBase+0x808, 8, WatchWrite))
	}
	st := m.WatchStats()
	assert.Equal(t, uint64(1), st.Flushes)
	assert.Equal(t, 1, st.Pages)
	require.NoError(t, m.RemoveWatchpoint(dataBase+0x808, 8, WatchWrite))
	require.Error(t, m.RemoveWatchpoint(dataBase+0x808, 8, WatchWrite), "removed twice")
	// Removed: writes no longer stop, and after a few runs the page is
	// not protected any more.
	m.AddBreakpoint(codeBase+8, false)
	for i := 0; i < 8; i++ {
		wantStop(t, m, m.Run(), StopBreakpoint, codeBase+8)
	}
	st = m.WatchStats()
	assert.Equal(t, 0, st.Pages)
	assert.Equal(t, uint64(1), st.Released)
	faults := st.Faults
	wantStop(t, m, m.Run(), StopBreakpoint, codeBase+8)
	assert.Equal(t, faults, m.WatchStats().Faults, "an unprotected page does not fault")
}

// TestWatchPageDemote: a page written over and over next to the watched
// bytes moves its watchpoint to hook mode mid-run; the hit after that is
// reported the same way.
func TestWatchPageDemote(t *testing.T) {
	code := []byte{
		0x48, 0xc7, 0xc1, 0x20, 0x4e, 0x00, 0x00, // 10000: mov rcx, 20000
		0x48, 0x89, 0x0c, 0x25, 0x00, 0x01, 0x30, 0x00, // 10007: mov [0x300100], rcx
		0x48, 0xff, 0xc9, // 1000f: dec rcx
		0x75, 0xf3, // 10012: jnz 0x10007
		0x48, 0x89, 0x04, 0x25, 0x08, 0x08, 0x30, 0x00, // 10014: mov [0x300808], rax
		0x90, // 1001c: nop
		0xf4, // 1001d: hlt
	}
	m := newMachine(t, code)
	require.NoError(t, m.AddWatchpoint(dataBase+0x808, 8, WatchWrite))
	wantWatch(t, m, m.Run(), codeBase+0x1c, dataBase+0x808, codeBase+0x14)
	st := m.WatchStats()
	assert.Equal(t, uint64(1), st.Demoted)
	assert.Equal(t, 0, st.Pages)
	assert.Less(t, st.Faults, uint64(20000))
	assert.Equal(t, uint64(1), u64(t, m, dataBase+0x100))
	// Removed and added again, it stays in hook mode.
	require.NoError(t, m.RemoveWatchpoint(dataBase+0x808, 8, WatchWrite))
	require.NoError(t, m.AddWatchpoint(dataBase+0x808, 8, WatchWrite))
	must(t, m.SetReg(arch.RIP, codeBase+0x14))
	wantWatch(t, m, m.Run(), codeBase+0x1c, dataBase+0x808, codeBase+0x14)
	assert.Equal(t, 0, m.WatchStats().Pages)
}

// TestWatchPageAfterException: a CPU exception stop puts the machine back
// into its creation-time state (see rs_run); paging and the watchpoint
// survive it, and no double fault follows.
func TestWatchPageAfterException(t *testing.T) {
	code := []byte{
		0x48, 0x89, 0x04, 0x25, 0x08, 0x08, 0x30, 0x00, // 10000: mov [0x300808], rax
		0x31, 0xc9, // 10008: xor ecx, ecx
		0xf7, 0xf1, // 1000a: div ecx
		0x48, 0x89, 0x04, 0x25, 0x08, 0x08, 0x30, 0x00, // 1000c: mov [0x300808], rax
		0xf4, // 10014: hlt
	}
	m := newMachine(t, code)
	require.NoError(t, m.AddWatchpoint(dataBase+0x808, 8, WatchWrite))
	wantWatch(t, m, m.Run(), codeBase+8, dataBase+0x808, codeBase)
	wantStop(t, m, m.Run(), StopDivide, codeBase+0xa)
	must(t, m.SetReg(arch.RIP, codeBase+0xc))
	wantWatch(t, m, m.Run(), codeBase+0x14, dataBase+0x808, codeBase+0xc)
	wantStop(t, m, m.Run(), StopHalt, codeBase+0x15)
}

// TestWatchPageReserved: guests cannot map over the page tables.
func TestWatchPageReserved(t *testing.T) {
	m := newMachine(t, nil)
	require.Error(t, m.Map(0xFFFFF00000, PageSize, arch.PermRW))
	require.Error(t, m.Map(0xFFFFE00000, 0x200000, arch.PermRW))
	require.NoError(t, m.Map(0xFFFFE00000, 0x100000, arch.PermRW))
}
