package corpus

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// A golden file holds what Wine gives for one program: a first line
// "exit N", then the program's standard output byte for byte (CRLF
// included).

// GoldenPath is p's golden file.
func (p Program) GoldenPath() string {
	return filepath.Join(Root(), "testdata", "golden", p.Name+".golden")
}

// Expected is what p must give: Wine's output and exit code, from its
// golden file. It fails t for a program Wine cannot run (see WineFails)
// or one without a golden file.
func (p Program) Expected(t testing.TB) Result {
	t.Helper()
	if p.WineFails != "" {
		t.Fatalf("%s has no expected output: wine cannot run it (%s)", p.Name, p.WineFails)
	}
	b, err := os.ReadFile(p.GoldenPath())
	if err != nil {
		t.Fatalf("%s: %v (run go test ./tests/corpus -run TestWineOracle -update)", p.Name, err)
	}
	r, err := parseGolden(b)
	if err != nil {
		t.Fatalf("%s: %v", p.GoldenPath(), err)
	}
	return r
}

func parseGolden(b []byte) (Result, error) {
	head, body, ok := bytes.Cut(b, []byte("\n"))
	if !ok || !bytes.HasPrefix(head, []byte("exit ")) {
		return Result{}, fmt.Errorf("golden file does not start with an \"exit N\" line")
	}
	code, err := strconv.Atoi(string(head[len("exit "):]))
	if err != nil {
		return Result{}, fmt.Errorf("golden exit line: %w", err)
	}
	return Result{Stdout: body, ExitCode: code}, nil
}

// writeGolden records r as p's expected result.
func (p Program) writeGolden(r Result) error {
	if err := os.MkdirAll(filepath.Dir(p.GoldenPath()), 0o755); err != nil {
		return err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "exit %d\n", r.ExitCode)
	b.Write(r.Stdout)
	return os.WriteFile(p.GoldenPath(), b.Bytes(), 0o644)
}
