package ucwin

import (
	"debug/pe"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
)

// TestRestartCoversTargetFields: every field of Target either belongs to
// one run of the program (guestState, replaced by Restart) or is kept
// across runs on purpose. A new field must be put in one of the two.
func TestRestartCoversTargetFields(t *testing.T) {
	kept := map[string]bool{"cfg": true, "interrupted": true, "breaks": true,
		"consoleMu": true, "console": true, "stopOnLoad": true,
		"hk": true, "cov": true, "generation": true, "symbolizer": true, "resolver": true, // hk: catch points and the trace go on; installHooks resets the run's part
		"machMu": true, "owner": true, // owner: the target itself (incarnations are never restarted)
		"rec": true} // Restart replaces the recording itself (a new one for the new run)
	run := map[string]bool{}
	gs := reflect.TypeOf(guestState{})
	for i := 0; i < gs.NumField(); i++ {
		run[gs.Field(i).Name] = true
	}
	tt := reflect.TypeOf(Target{})
	for i := 0; i < tt.NumField(); i++ {
		f := tt.Field(i)
		if !kept[f.Name] && !run[f.Name] {
			t.Errorf("Target.%s is neither kept across restarts nor in guestState", f.Name)
		}
		if run[f.Name] {
			g, _ := gs.FieldByName(f.Name)
			assert.Equal(t, f.Type, g.Type, "guestState.%s", f.Name)
		}
	}
}

// symbol is the address of a function in a mingw image.
func symbol(t *testing.T, exe, name string) uint64 {
	t.Helper()
	f, err := pe.Open(exe)
	require.NoError(t, err)
	defer f.Close()
	base := f.OptionalHeader.(*pe.OptionalHeader64).ImageBase
	for _, s := range f.Symbols {
		if s.Name == name && s.SectionNumber > 0 {
			return base + uint64(f.Sections[s.SectionNumber-1].VirtualAddress) + uint64(s.Value)
		}
	}
	t.Fatalf("no symbol %s in %s", name, exe)
	return 0
}

// syncBuffer is a goroutine-safe output sink.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRestart: a restart runs the program again from its first
// instruction with the breakpoints the client inserted before, new
// arguments replace the old, and a kill or an exit does not prevent the
// next run.
func TestRestart(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/conf.c", testkit.MinGW, "-O0", "-g")
	count := symbol(t, exe, "count")
	for _, userland := range []string{UserlandSynth, UserlandWine} {
		t.Run(userland, func(t *testing.T) {
			if userland == UserlandWine {
				testkit.NeedWine(t)
			}
			var out syncBuffer
			tg, err := New(Config{Program: exe, Userland: userland, Stdout: &out, Stderr: io.Discard})
			require.NoError(t, err)
			defer func() { tg.Close() }()
			first := tg.LastStop()
			require.NoError(t, tg.InsertBreakpoint(rsp.BreakSoftware, count, 1))
			cont := []rsp.ResumeAction{{Thread: rsp.AllThreads}}
			st, err := tg.Resume(cont)
			require.NoError(t, err)
			require.Equal(t, rsp.StopSWBreak, st.Kind)

			for i, args := range [][]string{nil, {"5"}, nil} {
				st, err = tg.Restart(args)
				require.NoError(t, err)
				assert.Equal(t, first.Kind, st.Kind, "restart %d", i)
				assert.True(t, st.Library, "the first stop reports the library list")
				// The breakpoint is still there without the client
				// inserting it again.
				hits := 0
				for {
					st, err = tg.Resume(cont)
					require.NoError(t, err)
					if st.Kind != rsp.StopSWBreak {
						break
					}
					hits++
				}
				assert.Equal(t, rsp.StopExited, st.Kind, "restart %d: %+v", i, st)
				// conf runs count() N times (default 3); args persist.
				assert.Equal(t, map[int]int{0: 3, 1: 5, 2: 5}[i], hits, "restart %d", i)
			}
			require.NoError(t, tg.Kill())
			_, err = tg.Restart(nil)
			require.NoError(t, err)
			st, err = tg.Resume(cont)
			require.NoError(t, err)
			assert.Equal(t, rsp.StopSWBreak, st.Kind)
			assert.Contains(t, out.String(), "conf: counter 21 total 10 hello", "the guest printed after a restart with 5")
		})
	}
}
