package cfi

import (
	"github.com/rspstub/rspstub/internal/testkit"

	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/unwind"
	"github.com/rspstub/rspstub/unwind/dwarf"
)

// goFrame is .debug_frame as Go's linker writes it for rt0_go at 0x1000
// (0x100 bytes): CFA = rsp+8 throughout, except rsp+16 around a push at
// 0x1080..0x1086; nothing for the prologue's sub and and.
var goFrame = []byte{
	// CIE at offset 0.
	0x10, 0x00, 0x00, 0x00, // length 16
	0xff, 0xff, 0xff, 0xff, // CIE_id
	0x01,       // version 1
	0x00,       // augmentation ""
	0x01,       // code_alignment_factor 1
	0x78,       // data_alignment_factor -8
	0x10,       // return_address_register 16
	0x0c, 7, 8, // DW_CFA_def_cfa rsp, 8
	0x90, 0x01, // DW_CFA_offset RA, cfa-8
	0x00, 0x00, // padding
	// FDE at offset 20.
	0x1c, 0x00, 0x00, 0x00, // length 28
	0x00, 0x00, 0x00, 0x00, // CIE_pointer 0
	0x00, 0x10, 0, 0, 0, 0, 0, 0, // initial_location 0x1000
	0x00, 0x01, 0, 0, 0, 0, 0, 0, // address_range 0x100
	0x02, 0x80, // DW_CFA_advance_loc1 0x80: 0x1080, after a push
	0x0e, 0x10, // DW_CFA_def_cfa_offset 16
	0x46,       // DW_CFA_advance_loc 6: 0x1086, after the pop
	0x0e, 0x08, // DW_CFA_def_cfa_offset 8
	0x00, // padding
}

// The caller's stack: the entry point was called with RSP = E (the return
// address there); rt0_go's frame B lies below, aligned.
const (
	rt0Code  = 0x1000
	stackLo  = 0x20000
	rt0Entry = 0x20ff8 // E: [E] = the return address
	rt0B     = 0x20fd0 // B = (E - 0x28) &^ 15
	rt0RA    = 0x7ffb0010100c
)

func goRT0World(t *testing.T, prologue []byte) (dwarf.Finder, *testkit.Memory) {
	t.Helper()
	tbl, err := dwarf.ParseDebugFrame(goFrame, 0)
	require.NoError(t, err)
	require.Empty(t, tbl.Errors)
	code := make([]byte, 0x100)
	copy(code, prologue)
	stk := make([]byte, 0x1000)
	put := func(addr, v uint64) { binary.LittleEndian.PutUint64(stk[addr-stackLo:], v) }
	put(rt0Entry, rt0RA)
	put(rt0B, rt0RA&0xffffffff) // argc: the low half of the return address
	put(rt0B+0x18, rt0RA)       // rt0_go's copy of DI
	put(rt0B+0x20, rt0Entry+8)  // rt0_go's copy of SI
	return tbl, pair(rt0Code, code, stackLo, stk)
}

func TestGoRT0(t *testing.T) {
	f, mem := goRT0World(t, goRT0Prologue)
	ctx := func(pc, rsp uint64, extra map[arch.Reg]uint64) *unwind.Context {
		var c unwind.Context
		c.Set(arch.RIP, pc)
		c.Set(arch.RSP, rsp)
		for r, v := range extra {
			c.Set(r, v)
		}
		return &c
	}
	for _, tc := range []struct {
		name  string
		ctx   *unwind.Context
		exact bool
		ok    bool
	}{
		{"before the sub: Go's CFI is right", ctx(rt0Code+0x03, rt0Entry, nil), true, false},
		{"after the and: the CFA is rbx", ctx(rt0Code+0x0e, rt0B, map[arch.Reg]uint64{arch.RBX: rt0Entry + 8}), true, true},
		{"a call in the body", ctx(rt0Code+0x40, rt0B, nil), false, true},
		{"a call after a push", ctx(rt0Code+0x84, rt0B-8, nil), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := goRT0(f, 0, mem, tc.ctx, tc.exact, dwarf.WindowsPreserved)
			require.NoError(t, err)
			require.Equal(t, tc.ok, ok)
			if !ok {
				return
			}
			rip, _ := tc.ctx.Get(arch.RIP)
			at, _ := tc.ctx.SavedAt(arch.RIP)
			assert.Equal(t, uint64(rt0RA), rip)
			assert.Equal(t, uint64(rt0Entry), at)
			assert.Equal(t, uint64(rt0Entry+8), tc.ctx.RSP())
			_, known := tc.ctx.Get(arch.RBX)
			assert.False(t, known, "rt0_go keeps none of its caller's registers")
		})
	}

	// The two copies disagree: no guess.
	var b [1]byte
	_, err := mem.ReadMemory(rt0B+0x18, b[:])
	require.NoError(t, err)
	b[0] ^= 1
	mem.Put(rt0B+0x18, b[:])
	_, err = goRT0(f, 0, mem, ctx(rt0Code+0x40, rt0B, nil), false, dwarf.WindowsPreserved)
	assert.True(t, errors.Is(err, dwarf.ErrNoCFA), "%v", err)

	// Other code under the same CFI: not rt0_go.
	other := append([]byte{}, goRT0Prologue...)
	other[9] = 0x30 // sub rsp, 0x30
	f, mem = goRT0World(t, other)
	ok, err := goRT0(f, 0, mem, ctx(rt0Code+0x40, rt0B, nil), false, dwarf.WindowsPreserved)
	assert.False(t, ok)
	assert.NoError(t, err)
}
