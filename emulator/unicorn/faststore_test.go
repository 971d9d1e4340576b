package unicorn

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/arch"
)

// TestFastStoresSelfModifying: with fast stores (faststore.c) a store
// still drops the translated code it overwrites. A loop patches the
// immediate of the next instruction of its own block, and a second loop
// stores into data on its code's page; both must see every patch.
func TestFastStoresSelfModifying(t *testing.T) {
	const page = 0x40000
	code := []byte{
		0x31, 0xdb, // xor ebx, ebx
		0x31, 0xc9, // xor ecx, ecx
		0x88, 0x0d, 0x01, 0x00, 0x00, 0x00, // loop: mov [rip+1], cl (the low byte of the next imm32)
		0xb8, 0x00, 0x00, 0x00, 0x00, // mov eax, imm32
		0x48, 0x01, 0xc3, // add rbx, rax
		0xff, 0xc1, // inc ecx
		0x83, 0xf9, 0x64, // cmp ecx, 100
		0x75, 0xeb, // jne loop
		// data on the code's page: 1000 stores, then read back
		0x31, 0xc9, // xor ecx, ecx
		0x89, 0x0d, 0xd0, 0x07, 0x00, 0x00, // loop2: mov [rip+0x7d0], ecx
		0xff, 0xc1, // inc ecx
		0x81, 0xf9, 0xe8, 0x03, 0x00, 0x00, // cmp ecx, 1000
		0x75, 0xf0, // jne loop2
		0x8b, 0x15, 0xc0, 0x07, 0x00, 0x00, // mov edx, [rip+0x7c0]
		0xf4, // hlt
	}
	m := newMachine(t, nil)
	must(t, m.Map(page, 0x1000, arch.PermRWX))
	_, err := m.WriteMemory(page, code)
	require.NoError(t, err)
	must(t, m.SetReg(arch.RIP, page))
	s := m.Run()
	require.Equal(t, StopHalt, s.Reason, "%+v", s)
	assert.Equal(t, uint64(4950), reg(t, m, arch.RBX), "every patched immediate ran")
	assert.Equal(t, uint64(999), reg(t, m, arch.RDX), "the last store to the code's page")
	if FastStores() {
		st := m.FastStoreStats()
		assert.NotZero(t, st.CodePages)
		assert.False(t, st.Broken)
		t.Logf("fast stores: %+v", st)
	}
}

// TestFastStoresActive: with libunicorn 2.0.1 (the one this project
// builds against) the fast-store layer is on, and a store loop on a data
// page gets its TLB entry cleared. Fails if the layer is off or the
// executable stops exporting the interposed functions (then every store
// is slow again).
func TestFastStoresActive(t *testing.T) {
	if os.Getenv("RSPSTUB_SLOW_STORES") != "" {
		t.Skip("RSPSTUB_SLOW_STORES is set")
	}
	require.True(t, FastStores(), "fast stores off with this libunicorn (the project builds against Debian's 2.0.1)")
	code := []byte{
		0xb9, 0x00, 0x10, 0x00, 0x00, // mov ecx, 4096
		0x48, 0x89, 0x0c, 0x25, 0x00, 0x00, 0x30, 0x00, // loop: mov [0x300000], rcx
		0xff, 0xc9, // dec ecx
		0x75, 0xf4, // jnz loop
		0xf4,
	}
	m := newMachine(t, code)
	s := m.Run()
	require.Equal(t, StopHalt, s.Reason, "%+v", s)
	st := m.FastStoreStats()
	assert.NotZero(t, st.Cleared, "no TLB fill was given the fast path: %+v", st)
	assert.False(t, st.Broken)
}
