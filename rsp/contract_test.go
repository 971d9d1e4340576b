package rsp_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/rsp"
	"github.com/rspstub/rspstub/rsp/rsptest"
)

// TestTargetContract runs the contract test on the package's in-memory
// fake target: the fake backend of the test kit.
func TestTargetContract(t *testing.T) {
	rsptest.TestTarget(t, rsp.NewTestTarget(), rsptest.Config{Break: rsp.TestCodeBase + 0x40})
}

// silentUnmapped breaks the memory contract: nothing readable, no error.
type silentUnmapped struct{ rsp.Target }

func (s silentUnmapped) ReadMemory(addr uint64, p []byte) (int, error) {
	n, err := s.Target.ReadMemory(addr, p)
	if n == 0 {
		err = nil
	}
	return n, err
}

// TestTargetContractFails: the contract test fails a target that breaks
// the contract (run in a child process, since the failure is the point).
func TestTargetContractFails(t *testing.T) {
	if os.Getenv("RSPTEST_BROKEN") == "1" {
		rsptest.TestTarget(t, silentUnmapped{rsp.NewTestTarget()}, rsptest.Config{})
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestTargetContractFails$", "-test.v")
	cmd.Env = append(os.Environ(), "RSPTEST_BROKEN=1")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the broken target passed:\n%s", out)
	assert.Contains(t, string(out), "--- FAIL: TestTargetContractFails/Unmapped")
	assert.Contains(t, string(out), "n == 0 needs an error")
}
