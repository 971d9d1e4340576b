package guest

import (
	"github.com/rspstub/rspstub/internal/testkit"

	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// needTool skips (or fails under RSPSTUB_REQUIRE_TOOLS=1) when a tool is
// missing.
func needTool(t testing.TB, name string) string {
	t.Helper()
	return testkit.RequireTool(t, name)
}

var buildCache sync.Map // key -> path (built once per test binary)

// buildC compiles testdata/src with the given compiler command into a temp
// folder shared by the tests of this run.
func buildC(t testing.TB, key string, src string, cc []string) string {
	t.Helper()
	needTool(t, cc[0])
	if p, ok := buildCache.Load(key); ok {
		return p.(string)
	}
	dir, err := os.MkdirTemp("", "guesttest")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, key+".exe")
	args := append(append([]string{}, cc[1:]...), "-o", out, filepath.Join("testdata", src))
	cmd := exec.Command(cc[0], args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", cc[0], args, err, b)
	}
	buildCache.Store(key, out)
	return out
}

func mingwGCC(opt string) []string { return []string{"x86_64-w64-mingw32-gcc", opt} }

func TestMain(m *testing.M) {
	code := m.Run()
	buildCache.Range(func(_, v any) bool {
		os.RemoveAll(filepath.Dir(v.(string)))
		return true
	})
	os.Exit(code)
}
