package qemu

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/debuggee"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp/rsptest"
)

// TestTargetContract runs rsptest's contract test on the QEMU backend
// (with the process layer over it, as cmd/rspstub serves it) in
// both modes: qemu-x86_64 on testdata/hello.c (continue reaches main) and
// qemu-system-x86_64 booting testdata/guest.S (checked from loop, in long
// mode; continue reaches tick; everything above 4 MiB is unmapped).
func TestTargetContract(t *testing.T) {
	t.Run("user", func(t *testing.T) {
		prog := buildHello(t)
		s := startStub(t, "qemu-x86_64", prog)
		require.Equal(t, ModeUser, s.target.Mode())
		rsptest.TestTarget(t, debuggee.New(s.target), rsptest.Config{Break: symbol(t, prog, "main")})
	})
	t.Run("system", func(t *testing.T) {
		kernel := buildGuest(t)
		s := startStub(t, testkit.QEMUSystemArgs(kernel, 1)...)
		require.Equal(t, ModeSystem, s.target.Mode())
		rsptest.TestTarget(t, debuggee.New(s.target), rsptest.Config{
			Start:    symbol(t, guestSymbols(t), "loop"),
			Break:    symbol(t, guestSymbols(t), "tick"),
			Unmapped: 0x500000,
		})
	})
}
