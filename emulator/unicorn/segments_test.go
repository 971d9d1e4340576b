package unicorn

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/arch"
)

// flatGDT has the descriptors 64-bit Windows user code runs with: 0x2b
// (index 5, data, DPL 3), 0x33 (index 6, 64-bit code, DPL 3) and 0x53
// (index 10, data, DPL 3).
func flatGDT() []byte {
	gdt := make([]byte, 11*8)
	copy(gdt[5*8:], []byte{0xff, 0xff, 0, 0, 0, 0xf3, 0xcf, 0})  // data, P, DPL 3, RW
	copy(gdt[6*8:], []byte{0xff, 0xff, 0, 0, 0, 0xfb, 0xaf, 0})  // code, P, DPL 3, L
	copy(gdt[10*8:], []byte{0xff, 0xff, 0, 0, 0, 0xf3, 0xcf, 0}) // data, P, DPL 3, RW
	return gdt
}

// TestLoadSelectors: fs and gs need a descriptor table to load; after
// the load the table is gone, the guest still runs 64-bit code, reads
// its selectors with mov r, sreg, and gs-relative accesses use the GS
// base set before the load.
func TestLoadSelectors(t *testing.T) {
	m := newMachine(t, []byte{
		0x8c, 0xe0, // mov eax, fs
		0x8c, 0xeb, // mov ebx, gs
		0x65, 0x48, 0x8b, 0x0c, 0x25, 0x30, 0, 0, 0, // mov rcx, gs:[0x30]
		0x48, 0xba, 1, 2, 3, 4, 5, 6, 7, 8, // movabs rdx, 0x0807060504030201 (64-bit only)
		0x90,
	})
	require.NoError(t, m.SetReg(arch.GSBase, dataBase))
	_, err := m.WriteMemory(dataBase+0x30, []byte{0x11, 0x22})
	require.NoError(t, err)
	require.Error(t, m.SetReg(arch.FS, 0x53), "fs loads without a table; the workaround is unneeded")

	before := m.Regions()
	require.NoError(t, m.LoadSelectors([6]uint16{0x33, 0x2b, 0x2b, 0x2b, 0x53, 0x2b}, flatGDT(), 0))
	assert.Equal(t, before, m.Regions(), "the table's page is unmapped again")
	var c Context
	require.NoError(t, m.ReadContext(&c))
	assert.Equal(t, [6]uint32{0x33, 0x2b, 0x2b, 0x2b, 0x53, 0x2b}, [6]uint32{c.CS, c.SS, c.DS, c.ES, c.FS, c.GS})
	assert.Equal(t, uint64(dataBase), c.GSBase)
	for i := 0; i < 4; i++ {
		s := m.Step()
		require.Equal(t, StopStep, s.Reason, "step %d: %v", i, s.Err)
	}
	assert.Equal(t, uint64(0x53), reg(t, m, arch.RAX))
	assert.Equal(t, uint64(0x2b), reg(t, m, arch.RBX))
	assert.Equal(t, uint64(0x2211), reg(t, m, arch.RCX))
	assert.Equal(t, uint64(0x0807060504030201), reg(t, m, arch.RDX))
	// Writing the same selectors back (a debugger's G packet) loads nothing.
	require.NoError(t, m.ReadContext(&c))
	c.GPR[arch.RAX] = 5
	assert.NoError(t, m.WriteContext(&c))

	assert.Error(t, m.LoadSelectors([6]uint16{}, nil, 0))
}

// TestLoadSelectorsSurviveExceptions: after a CPU exception the machine
// goes back to a clean CPU state and writes the registers back; the
// selectors loaded through the table are part of that state, so the
// registers and selectors read after a #UD and a #DE are the thread's.
func TestLoadSelectorsSurviveExceptions(t *testing.T) {
	m := newMachine(t, []byte{
		0x0f, 0x0b, // ud2
		0x31, 0xc9, // xor ecx, ecx
		0xf7, 0xf1, // div ecx
		0x90,
	})
	require.NoError(t, m.LoadSelectors([6]uint16{0x33, 0x2b, 0x2b, 0x2b, 0x53, 0x2b}, flatGDT(), 0))
	require.NoError(t, m.SetReg(arch.RBX, 0x1234))
	for i, want := range []StopReason{StopIllegal, StopDivide} {
		s := m.Run()
		require.Equal(t, want, s.Reason, "stop %d: %v", i, s.Err)
		var c Context
		require.NoError(t, m.ReadContext(&c))
		assert.Equal(t, s.PC, c.RIP)
		assert.Equal(t, uint64(stackTop), c.GPR[arch.RSP])
		assert.Equal(t, uint64(0x1234), c.GPR[arch.RBX])
		assert.Equal(t, [6]uint32{0x33, 0x2b, 0x2b, 0x2b, 0x53, 0x2b}, [6]uint32{c.CS, c.SS, c.DS, c.ES, c.FS, c.GS})
		if want == StopIllegal {
			require.NoError(t, m.SetReg(arch.RIP, s.PC+2))
		}
	}
}
