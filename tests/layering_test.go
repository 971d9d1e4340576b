package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
)

// The intended package graph (STYLE.md "Dependencies point inward"),
// checked on what `go list -deps` reports: transitive dependencies of the
// production code (tests excluded), within this module. Paths are relative
// to the module; "x/..." is x and everything under it.

// layerRule says what the packages matching Pkg may depend on: only the
// packages matching Only (when set), and none matching Not.
type layerRule struct {
	Pkg  string
	Only []string
	Not  []string
	Why  string
}

// testKits are the packages that exist for tests. Production code never
// depends on them; they are exempt from the other rules.
var testKits = []string{"internal/testkit", "rsp/rsptest", "monitor/monitortest", "debuggee/debuggeetest", "tests/..."}

var layerRules = []layerRule{
	{Pkg: "internal/...", Only: []string{"internal/..."}, Why: "internal/ holds leaf helpers (decoders, arch tables)"},
	{Pkg: "rsp", Only: []string{"internal/..."}, Why: "rsp knows the protocol and nothing of Unicorn, QEMU, PE or the guest"},
	{Pkg: "unwind/...", Not: []string{"emulator/...", "guest/...", "monitor/...", "rsp/...", "cmd/..."},
		Why: "the unwinder sees memory and registers through interfaces it owns"},
	{Pkg: "guest/...", Not: []string{"emulator/...", "monitor/...", "rsp/...", "cmd/..."},
		Why: "the guest model does not know its backend, the monitor or the protocol"},
	{Pkg: "monitor", Not: []string{"emulator/...", "cmd/..."}, Why: "monitor runs in the stub and in the client, over any target"},
	{Pkg: "emulator/unicorn", Only: []string{"internal/..."}, Why: "the cgo package knows the CPU only"},
	{Pkg: "emulator/...", Not: []string{"monitor/...", "debuggee/...", "cmd/..."}, Why: "backends feed the layer above them (package debuggee, through its Source); cmd/rspstub wires it (issue 18)"},
	{Pkg: "debuggee", Not: []string{"emulator/...", "cmd/..."}, Why: "the process layer sees every backend through Source, never a backend type"},
}

// guestLayers orders the packages of guest/: a package may depend only on
// packages of a lower layer (a one-way graph). A new package under guest/
// must be added here. The layers (issue 18): the PE loader and the
// packages that know no Windows process, then the process, then what
// runs in one (the two userlands, beside each other) or reads one.
var guestLayers = map[string]int{
	"guest/peload":    0, // the PE loader: bytes in, a checked image plan out
	"guest/linuxproc": 0, // Linux (SVR4) module discovery over memory
	"guest/minidump":  0, // the Windows minidump writer: a process description in, a file out
	"guest/process":   1, // the process: machine, guest memory, TEB/PEB layout, allocations, command line
	"guest":           2, // the synthesized userland (Win32 and C runtime in Go)
	"guest/wine":      2, // the Wine userland's NT system calls
	"guest/winproc":   2, // Windows module discovery over memory (the process's layout)
}

// knownViolations are the imports that break a rule today, each to be
// removed by the work that fixes it. The test fails when one of them no
// longer occurs, so this list only shrinks: delete the line.
var knownViolations = []layerViolation{}

type layerViolation struct{ Pkg, Dep string }

func (v layerViolation) String() string { return v.Pkg + " -> " + v.Dep }

// match reports whether the module-relative path p matches pattern.
func match(pattern, p string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return p == pattern
}

func matchAny(patterns []string, p string) bool {
	for _, q := range patterns {
		if match(q, p) {
			return true
		}
	}
	return false
}

// layerGraph is each module package's transitive dependencies within the
// module.
type layerGraph map[string][]string

// checkLayers returns every violation of the rules in g, sorted, each
// with the reason.
func checkLayers(g layerGraph) map[layerViolation]string {
	out := map[layerViolation]string{}
	for pkg, deps := range g {
		if matchAny(testKits, pkg) {
			continue
		}
		for _, d := range deps {
			if matchAny(testKits, d) {
				out[layerViolation{pkg, d}] = "production code depends on a test kit"
			}
		}
		for _, r := range layerRules {
			if !match(r.Pkg, pkg) {
				continue
			}
			for _, d := range deps {
				if (r.Only != nil && !matchAny(r.Only, d)) || matchAny(r.Not, d) {
					out[layerViolation{pkg, d}] = r.Why
				}
			}
		}
		if lp, ok := guestLayers[pkg]; ok {
			for _, d := range deps {
				if ld, ok := guestLayers[d]; ok && ld >= lp {
					out[layerViolation{pkg, d}] = fmt.Sprintf("guest layers are one-way: %s (layer %d) may not depend on %s (layer %d)", pkg, lp, d, ld)
				}
			}
		} else if match("guest/...", pkg) {
			out[layerViolation{pkg, "?"}] = "a package under guest/ missing from guestLayers: give it a layer"
		}
	}
	return out
}

// loadLayerGraph runs go list -deps over the module.
func loadLayerGraph(t *testing.T) layerGraph {
	t.Helper()
	goBin := testkit.RequireTool(t, "go")
	cmd := exec.Command(goBin, "list", "-json=ImportPath,Deps,Module", "./...")
	cmd.Dir = testkit.Root()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())
	const mod = "github.com/rspstub/rspstub"
	rel := func(p string) (string, bool) {
		if p == mod {
			return ".", true
		}
		return strings.CutPrefix(p, mod+"/")
	}
	g := layerGraph{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			ImportPath string
			Deps       []string
		}
		require.NoError(t, dec.Decode(&p))
		pkg, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		deps := []string{}
		for _, d := range p.Deps {
			if r, ok := rel(d); ok {
				deps = append(deps, r)
			}
		}
		g[pkg] = deps
	}
	require.NotEmpty(t, g["cmd/rspstub"], "go list found no dependencies of cmd/rspstub")
	return g
}

// TestLayering fails when a package depends on one it must not (see
// layerRules and guestLayers), and when a known violation is gone.
func TestLayering(t *testing.T) {
	got := checkLayers(loadLayerGraph(t))
	known := map[layerViolation]bool{}
	for _, v := range knownViolations {
		known[v] = true
		_, still := got[v]
		assert.True(t, still, "known violation %s no longer occurs: delete it from knownViolations", v)
	}
	var bad []string
	for v, why := range got {
		if !known[v] {
			bad = append(bad, fmt.Sprintf("%s: %s", v, why))
		}
	}
	sort.Strings(bad)
	assert.Empty(t, bad, "imports that break the layering (fix them; never add to knownViolations)")
}

// TestLayeringRules: the checker catches each kind of violation (on a
// made-up graph).
func TestLayeringRules(t *testing.T) {
	g := layerGraph{
		"rsp":            {"internal/arch", "unwind"},
		"unwind":         {"internal/arch"},
		"unwind/dwarf":   {"guest"},
		"guest":          {"guest/peload", "guest/wine", "guest/process"},
		"guest/wine":     {"internal/peimage", "guest/process"},
		"guest/process":  {"guest/wine"},
		"guest/winproc":  {"guest"},
		"guest/newthing": {},
		"monitor":        {"emulator/ucwin", "internal/testkit"},
		"internal/arch":  {},
		"rsp/rsptest":    {"rsp", "emulator/ucwin"},
	}
	got := map[string]bool{}
	for v := range checkLayers(g) {
		got[v.String()] = true
	}
	want := []string{
		"rsp -> unwind", "unwind/dwarf -> guest", "guest -> guest/wine", "guest/winproc -> guest",
		"guest/newthing -> ?", "guest/process -> guest/wine", "monitor -> emulator/ucwin", "monitor -> internal/testkit",
	}
	for _, w := range want {
		assert.True(t, got[w], "checker missed %s", w)
	}
	assert.Len(t, got, len(want), "violations found: %v", got)
}
