package unicorn

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/arch"
)

// TestWriteMemoryRetranslates: code rewritten with WriteMemory after it
// ran once runs as rewritten only after DropTranslations (libunicorn
// 2.0.1 keeps the old translation otherwise, measured here too: if it
// ever notices the write itself, the first assertion says so).
func TestWriteMemoryRetranslates(t *testing.T) {
	for _, perm := range []arch.Perm{arch.PermRX, arch.PermRWX} {
		m := newMachine(t, nil)
		const base = 0x500000
		require.NoError(t, m.Map(base, 0x1000, perm))
		code := func(v byte) []byte { return []byte{0xb8, v, 0, 0, 0, 0x90, 0x90} } // mov eax, v; nop; nop
		run := func() uint64 {
			require.NoError(t, m.SetReg(arch.RIP, base))
			s := m.Run()
			require.Equal(t, StopBreakpoint, s.Reason)
			return reg(t, m, arch.RAX)
		}
		_, err := m.WriteMemory(base, code(1))
		require.NoError(t, err)
		require.NoError(t, m.AddBreakpoint(base+5, false))
		assert.Equal(t, uint64(1), run())
		_, err = m.WriteMemory(base, code(2))
		require.NoError(t, err)
		assert.Equal(t, uint64(1), run(), "%v: libunicorn now notices debugger writes", perm)
		require.NoError(t, m.DropTranslations(base+1, 1))
		assert.Equal(t, uint64(2), run(), "%v: the rewritten code did not run", perm)
	}
}
