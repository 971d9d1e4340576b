package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMemory(t *testing.T) {
	var m Memory
	m.Map(0x1000, []byte("abcdefgh"))
	m.Map(0x1008, []byte("ijkl"))
	m.Unmap(0x1002, 2) // "ab" | hole | "efgh" "ijkl"
	buf := make([]byte, 16)

	n, err := m.ReadMemory(0x1000, buf)
	require.NoError(t, err)
	assert.Equal(t, "ab", string(buf[:n]), "a read stops at the hole")
	n, err = m.ReadMemory(0x1004, buf)
	require.NoError(t, err)
	assert.Equal(t, "efghijkl", string(buf[:n]), "adjacent regions read as one")
	n, err = m.ReadMemory(0x1002, buf)
	assert.Equal(t, 0, n)
	assert.ErrorIs(t, err, ErrUnmapped)

	n, err = m.WriteMemory(0x1006, []byte("XYZW"))
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	m.Put64(0x2000, 0x1122334455667788)
	n, _ = m.ReadMemory(0x1004, buf)
	assert.Equal(t, "efXYZWkl", string(buf[:n]))
	n, _ = m.ReadMemory(0x2000, buf)
	assert.Equal(t, []byte{0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11}, buf[:n])
	assert.Equal(t, 5, m.Reads)
}

func TestGolden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.golden")
	require.NoError(t, os.WriteFile(path, []byte("same\n"), 0o644))
	GoldenString(t, path, "same\n")
}

// TestMissingPolicy runs TestHelperMissing in a child test process: it
// must skip without RSPSTUB_REQUIRE_TOOLS and fail with it.
func TestMissingPolicy(t *testing.T) {
	for _, tc := range []struct {
		env      string
		wantFail bool
	}{{"", false}, {"1", true}} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestHelperMissing$", "-test.v")
		cmd.Env = append(os.Environ(), "RSPSTUB_TESTKIT_HELPER=1", RequireToolsEnv+"="+tc.env)
		out, err := cmd.CombinedOutput()
		if tc.wantFail {
			assert.Error(t, err, "%s", out)
			assert.Contains(t, string(out), "--- FAIL: TestHelperMissing")
		} else {
			assert.NoError(t, err, "%s", out)
			assert.Contains(t, string(out), "--- SKIP: TestHelperMissing")
		}
	}
}

func TestHelperMissing(t *testing.T) {
	if os.Getenv("RSPSTUB_TESTKIT_HELPER") != "1" {
		t.Skip("run by TestMissingPolicy")
	}
	RequireTool(t, "rspstub-no-such-tool")
	t.Error("RequireTool returned for a missing tool")
}
