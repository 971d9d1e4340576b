package corpus

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// knownGaps are the programs the wine userland does not run like wine
// yet, and why. They are run and reported, and must still differ: one
// that starts to pass fails the test until it is taken off this list.
var knownGaps = map[string]string{}

// TestRspstubCorpus is the wine userland's acceptance test: every program
// of the corpus that Wine runs is run by `rspstub run --userland wine` to
// its end, and must print Wine's standard output byte for byte and exit
// with Wine's code. The pass rate (goal: at least 90%) is logged, and
// with RSPSTUB_CORPUS_REPORT=FILE written as a Markdown table.
func TestRspstubCorpus(t *testing.T) {
	testkit.NeedWine(t)
	bin := testkit.Stub(t)
	var (
		mu      sync.Mutex
		results = map[string]string{} // name -> "" (pass) or why not
	)
	t.Run("programs", func(t *testing.T) {
		for _, p := range Programs() {
			if !p.InPassRate() {
				continue
			}
			t.Run(p.Name, func(t *testing.T) {
				t.Parallel()
				verdict := "did not finish"
				defer func() {
					mu.Lock()
					results[p.Name] = verdict
					mu.Unlock()
				}()
				exe, _ := p.Build(t)
				want := p.Expected(t)
				// The working folder is C:\work: C:\ itself shows the
				// folders of a Windows install, which a listing would see.
				root := t.TempDir()
				work := filepath.Join(root, "work")
				require.NoError(t, os.Mkdir(work, 0o755))
				for _, f := range p.Files {
					require.NoError(t, copyFile(filepath.Join(SourceDir(), "files", f), filepath.Join(work, f)))
				}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				defer cancel()
				// "--" ends rspstub's flags: the program's own (cabarc -v)
				// must reach it.
				args := []string{"run", "--userland", "wine", "--root", root, `--cwd`, `C:\work`}
				for _, r := range p.Registry {
					args = append(args, "--registry", filepath.Join(SourceDir(), "files", r))
				}
				args = append(append(args, exe, "--"), p.Args...)
				cmd := exec.CommandContext(ctx, bin, args...)
				// Standard input and output are files, as the oracle
				// gives them to wine: the C runtimes detect the end of
				// input and buffer by the kind of handle.
				tmp := t.TempDir()
				in := filepath.Join(tmp, "stdin")
				require.NoError(t, os.WriteFile(in, p.Input(t), 0o644))
				inf, err := os.Open(in)
				require.NoError(t, err)
				defer inf.Close()
				outf, err := os.Create(filepath.Join(tmp, "stdout"))
				require.NoError(t, err)
				defer outf.Close()
				var errb bytes.Buffer
				cmd.Stdin, cmd.Stdout, cmd.Stderr = inf, outf, &errb
				err = cmd.Run()
				outb, rerr := os.ReadFile(outf.Name())
				require.NoError(t, rerr)
				out := bytes.NewBuffer(outb)
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					verdict = err.Error()
					t.Fatalf("rspstub run: %v", err)
				}
				switch {
				case ctx.Err() != nil:
					verdict = "timed out"
				case out.String() != string(want.Stdout):
					verdict = "different output" + firstLine(errb.String())
				case code != want.ExitCode:
					verdict = fmt.Sprintf("exit %d, want %d", code, want.ExitCode) + firstLine(errb.String())
				default:
					verdict = ""
				}
				if why, known := knownGaps[p.Name]; known {
					if verdict == "" {
						t.Errorf("%s now gives wine's output: take it off knownGaps", p.Name)
					} else {
						t.Logf("known gap (%s): %s", why, verdict)
						verdict += " (known: " + why + ")"
					}
					return
				}
				assert.Equal(t, string(want.Stdout), out.String(), "stdout; stderr:\n%s", errb.String())
				assert.Equal(t, want.ExitCode, code, "exit code; stderr:\n%s", errb.String())
			})
		}
	})
	names := make([]string, 0, len(results))
	pass := 0
	for n, v := range results {
		names = append(names, n)
		if v == "" {
			pass++
		}
	}
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	rate := 100 * float64(pass) / float64(len(names))
	t.Logf("wine userland corpus: %d of %d programs give Wine's output and exit code (%.0f%%)", pass, len(names), rate)
	if path := os.Getenv("RSPSTUB_CORPUS_REPORT"); path != "" {
		var b strings.Builder
		fmt.Fprintf(&b, "%d of %d programs (%.0f%%) give the same standard output and exit code as wine.\n\n", pass, len(names), rate)
		b.WriteString("| program | exercises | result |\n|---|---|---|\n")
		byName := map[string]Program{}
		for _, p := range Programs() {
			byName[p.Name] = p
		}
		for _, n := range names {
			res := "same as wine"
			if results[n] != "" {
				res = results[n]
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", n, byName[n].Exercises, res)
		}
		require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	}
	all := 0
	for _, p := range Programs() {
		if p.InPassRate() {
			all++
		}
	}
	if len(names) == all { // not when -run picked some
		assert.GreaterOrEqual(t, rate, 90.0, "pass rate")
	}
}

// firstLine is ": " and the first line of a stub's error output, if any.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "rspstub run:") {
			return ": " + strings.TrimPrefix(l, "rspstub run: ")
		}
	}
	return ""
}
