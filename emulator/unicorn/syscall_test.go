package unicorn

import (
	"testing"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSyscallHandler: a handler set with SetSyscallHandler serves
// syscalls inside Run: it reads the registers at the call, its RAX
// reaches the guest, other register writes and memory writes too; one
// that declines stops the run with StopSyscall after the instruction,
// keeping what it wrote.
func TestSyscallHandler(t *testing.T) {
	code := []byte{
		0xb8, 0x05, 0, 0, 0, // mov eax, 5
		0x0f, 0x05, // syscall (served: rax = 2*5, rbx = 7)
		0x48, 0x89, 0xc6, // mov rsi, rax
		0xb8, 0x09, 0, 0, 0, // mov eax, 9
		0x0f, 0x05, // syscall (declined: rax = 1 all the same)
		0xf4, // hlt
	}
	m := newMachine(t, code)
	var seen []uint64
	m.SetSyscallHandler(func() bool {
		rax, err := m.Reg(arch.RAX)
		require.NoError(t, err)
		seen = append(seen, rax)
		if rax == 9 {
			require.NoError(t, m.SetReg(arch.RAX, 1))
			return false
		}
		require.NoError(t, m.SetReg(arch.RAX, 2*rax))
		v, err := m.Reg(arch.RAX)
		require.NoError(t, err)
		assert.Equal(t, 2*rax, v, "RAX read back in the handler")
		var c Context
		require.NoError(t, m.ReadGPRs(&c))
		assert.Equal(t, 2*rax, c.GPR[arch.RAX])
		assert.Equal(t, uint64(codeBase+7), c.RIP, "RIP past the syscall")
		require.NoError(t, m.SetReg(arch.RBX, 7))
		_, err = m.WriteMemory(dataBase, []byte{0x42})
		require.NoError(t, err)
		return true
	})
	s := m.Run()
	require.Equal(t, StopSyscall, s.Reason, "%+v", s)
	assert.Equal(t, []uint64{5, 9}, seen)
	assert.Equal(t, uint64(10), reg(t, m, arch.RSI))
	assert.Equal(t, uint64(7), reg(t, m, arch.RBX))
	assert.Equal(t, uint64(1), reg(t, m, arch.RAX))
	b := make([]byte, 1)
	_, err := m.ReadMemory(dataBase, b)
	require.NoError(t, err)
	assert.Equal(t, byte(0x42), b[0])
	// Without a handler every syscall stops.
	m.SetSyscallHandler(nil)
	must(t, m.SetReg(arch.RIP, codeBase))
	s = m.Run()
	require.Equal(t, StopSyscall, s.Reason)
	assert.Equal(t, uint64(codeBase+7), s.PC)
}
