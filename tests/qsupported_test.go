package tests

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
	"github.com/rspstub/rspstub/rsp/rsptest"
)

// TestQSupportedAnswers: in every mode of the rspstub binary (Unicorn
// with each userland, QEMU user, QEMU system), every qXfer object that
// qSupported advertises answers with data and without an error, read
// through the binary's own wiring (the monitor and front ends included).
// It caught qemu-system advertising an empty auxv and both QEMU modes
// advertising an exec-file they could not name.
func TestQSupportedAnswers(t *testing.T) {
	for _, b := range testkit.Backends {
		t.Run(string(b), func(t *testing.T) {
			var prog string
			switch b {
			case testkit.UnicornSynth, testkit.UnicornWine:
				prog = testkit.BuildPE(t, "tests/testdata/conf.c", testkit.MinGW, "-O0", "-g")
			case testkit.QEMUUser:
				prog = testkit.BuildELF(t, "tests/testdata/conf.c", "-O0", "-g")
			case testkit.QEMUSystem:
				prog, _ = testkit.BuildQEMUKernel(t)
			}
			stub := testkit.Start(t, b, prog)
			c, err := rsp.Dial(stub.Addr, rsp.WithTimeout(30*time.Second))
			require.NoError(t, err)
			defer c.Close()
			rsptest.CheckAdvertised(t, c)
		})
	}
}
