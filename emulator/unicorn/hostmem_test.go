package unicorn

import (
	"bytes"
	"math/rand"
	"testing"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHostRegionsAgree: after random maps, unmaps and protections (parts
// of regions, several regions at once), the host table lists what
// libunicorn lists, and bytes written through Go are the bytes libunicorn
// reads, so both name the same host memory.
func TestHostRegionsAgree(t *testing.T) {
	m, err := New()
	require.NoError(t, err)
	defer m.Close()
	rng := rand.New(rand.NewSource(1))
	const base, pages = 0x100000, 64
	perms := []arch.Perm{arch.PermNone, arch.PermRead, arch.PermRW, arch.PermRX, arch.PermRWX}
	for op := 0; op < 2000; op++ {
		a := uint64(base + rng.Intn(pages)*PageSize)
		n := uint64(1+rng.Intn(8)) * PageSize
		switch rng.Intn(3) {
		case 0:
			_ = m.Map(a, n, perms[rng.Intn(len(perms))])
		case 1:
			_ = m.Unmap(a, n)
		case 2:
			_ = m.Protect(a, n, perms[rng.Intn(len(perms))])
		}
		require.Equal(t, m.ucRegions(), m.Regions(), "after op %d", op)
		if r := m.Regions(); len(r) > 0 {
			x := r[rng.Intn(len(r))]
			at := x.Start + uint64(rng.Intn(int(x.Size)-16))
			want := make([]byte, 16)
			rng.Read(want)
			k, err := m.WriteMemory(at, want)
			require.NoError(t, err)
			got := make([]byte, k)
			require.True(t, m.ucRead(at, got), "libunicorn cannot read %#x", at)
			require.Equal(t, want[:k], got, "op %d at %#x", op, at)
		}
	}
}

// TestWriteOverExecutedCode: code that has run and is then rewritten
// through WriteMemory runs as rewritten, also when it was made writable
// and executable again in between (no stale translation survives).
func TestWriteOverExecutedCode(t *testing.T) {
	code := []byte{0xb8, 0x01, 0, 0, 0, 0xf4} // mov eax, 1; hlt
	m := newMachine(t, code)
	run := func(want uint64) {
		t.Helper()
		must(t, m.SetReg(arch.RIP, codeBase))
		s := m.Run()
		require.Equal(t, StopHalt, s.Reason, "%+v", s)
		assert.Equal(t, want, reg(t, m, arch.RAX))
	}
	run(1)
	_, err := m.WriteMemory(codeBase+1, []byte{2})
	require.NoError(t, err)
	run(2)
	must(t, m.Protect(codeBase, codeSize, arch.PermRW))
	_, err = m.WriteMemory(codeBase+1, []byte{3})
	require.NoError(t, err)
	must(t, m.Protect(codeBase, codeSize, arch.PermRX))
	run(3)
	// Unmapped and mapped again as data, then as code: fresh bytes run.
	must(t, m.Unmap(codeBase, codeSize))
	must(t, m.Map(codeBase, codeSize, arch.PermRW))
	_, err = m.WriteMemory(codeBase, []byte{0xb8, 0x04, 0, 0, 0, 0xf4})
	require.NoError(t, err)
	must(t, m.Protect(codeBase, codeSize, arch.PermRX))
	run(4)
}

// TestReadAcrossHoles: a read stops at the first unmapped byte with the
// prefix it got; one that starts in a hole fails.
func TestReadAcrossHoles(t *testing.T) {
	m := newMachine(t, nil)
	fill := bytes.Repeat([]byte{0xab}, dataSize)
	_, err := m.WriteMemory(dataBase, fill)
	require.NoError(t, err)
	buf := make([]byte, 0x20)
	n, err := m.ReadMemory(dataBase+dataSize-8, buf)
	require.NoError(t, err)
	assert.Equal(t, 8, n)
	n, err = m.ReadMemory(dataBase+dataSize, buf)
	assert.Error(t, err)
	assert.Zero(t, n)
	n, err = m.WriteMemory(dataBase+dataSize, buf)
	assert.Error(t, err)
	assert.Zero(t, n)
}

// TestView: View shows guest memory in place (a write through it is a
// write to the guest), only when all n bytes are in one region.
func TestView(t *testing.T) {
	m := newMachine(t, nil)
	_, err := m.WriteMemory(dataBase, []byte("abcdef"))
	require.NoError(t, err)
	v := m.View(dataBase+1, 4)
	require.Equal(t, []byte("bcde"), v)
	v[0] = 'X'
	got := make([]byte, 3)
	_, err = m.ReadMemory(dataBase, got)
	require.NoError(t, err)
	assert.Equal(t, []byte("aXc"), got)
	assert.Nil(t, m.View(dataBase+dataSize-2, 4), "past the region's end")
	assert.Nil(t, m.View(0x5000000, 1), "unmapped")
	assert.Nil(t, m.View(dataBase, 0))
}
