package ucwin

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/debuggee/debuggeetest"
	"github.com/rspstub/rspstub/emulator/unicorn"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
)

// symbolAddr finds a global's address in a mingw image's COFF symbols
// (the image loads at its preferred base).
func symbolAddr(t *testing.T, exe, name string) uint64 {
	f, err := pe.Open(exe)
	require.NoError(t, err)
	defer f.Close()
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	require.True(t, ok)
	for _, s := range f.Symbols {
		if s.Name == name && s.SectionNumber > 0 {
			return oh.ImageBase + uint64(f.Sections[s.SectionNumber-1].VirtualAddress) + uint64(s.Value)
		}
	}
	t.Fatalf("no symbol %s in %s", name, exe)
	return 0
}

// fullState is every register and every mapped byte.
type fullState struct {
	ctx  unicorn.Context
	mem  map[uint64][]byte
	pos  uint64
	regs []unicorn.Region
}

func capture(t *testing.T, tg *Target) fullState {
	s := fullState{mem: map[uint64][]byte{}, pos: tg.Position(), regs: tg.Machine().Regions()}
	require.NoError(t, tg.Machine().ReadContext(&s.ctx))
	for _, r := range s.regs {
		b := make([]byte, r.Size)
		n, err := tg.Machine().ReadMemory(r.Start, b)
		require.NoError(t, err)
		require.Equal(t, int(r.Size), n)
		s.mem[r.Start] = b
	}
	return s
}

func sameState(t *testing.T, want, got fullState, what string) {
	t.Helper()
	assert.Equal(t, want.pos, got.pos, "%s: position", what)
	assert.Equal(t, want.ctx, got.ctx, "%s: registers", what)
	require.Equal(t, want.regs, got.regs, "%s: memory map", what)
	for a, b := range want.mem {
		if !bytes.Equal(b, got.mem[a]) {
			i := 0
			for i < len(b) && b[i] == got.mem[a][i] {
				i++
			}
			t.Errorf("%s: memory differs at %#x", what, a+uint64(i))
		}
	}
}

var cont = []rsp.ResumeAction{{Thread: rsp.AllThreads}}

// intervals are the checkpoint intervals the tests run with: the default
// (the test program is shorter: replays from the start only) and a small
// one (checkpoints every few blocks, restored by most moves).
var intervals = []uint64{0, 97}

func recorded(t *testing.T) (*Target, *bytes.Buffer, uint64) {
	exe := testkit.BuildPE(t, "tests/testdata/corrupt.c", testkit.MinGW, "-O0", "-g")
	var out bytes.Buffer
	tg, err := New(Config{Program: exe, Record: true, Stdout: &out, Stderr: &out})
	require.NoError(t, err)
	t.Cleanup(func() { tg.Close() })
	return tg, &out, symbolAddr(t, exe, "guard")
}

func TestSnapshotRoundTrip(t *testing.T) {
	for _, every := range intervals {
		t.Run(fmt.Sprint(every), func(t *testing.T) { testSnapshotRoundTrip(t, every) })
	}
}

func testSnapshotRoundTrip(t *testing.T, every uint64) {
	tg, out, guard := recorded(t)
	if every > 0 {
		tg.SetCheckpointInterval(every)
	}
	start := capture(t, tg)
	_, err := tg.SaveSnapshot("start")
	require.NoError(t, err)

	require.NoError(t, tg.InsertBreakpoint(rsp.WatchWrite, guard, 4))
	st, err := tg.Resume(cont)
	require.NoError(t, err)
	require.Equal(t, rsp.StopWatch, st.Kind, describeStop(st))
	atWrite := capture(t, tg)
	_, err = tg.SaveSnapshot("write")
	require.NoError(t, err)
	require.NoError(t, tg.RemoveBreakpoint(rsp.WatchWrite, guard, 4))
	st, err = tg.Resume(cont)
	require.NoError(t, err)
	require.Equal(t, rsp.StopExited, st.Kind)
	require.Equal(t, "before: guard=42\nafter: guard=39\n", out.String())

	for i := 0; i < 2; i++ {
		_, err = tg.RestoreSnapshot("write")
		require.NoError(t, err)
		sameState(t, atWrite, capture(t, tg), "restored at the write")
		_, err = tg.RestoreSnapshot("start")
		require.NoError(t, err)
		sameState(t, start, capture(t, tg), "restored at the start")
		// Run again to the end: the same output is not printed twice.
		st, err = tg.Resume(cont)
		require.NoError(t, err)
		require.Equal(t, rsp.StopExited, st.Kind)
		assert.Equal(t, "before: guard=42\nafter: guard=39\n", out.String())
	}
	names := tg.Snapshots()
	require.Len(t, names, 2)
	assert.Equal(t, "start", names[0].Name)
	require.NoError(t, tg.DeleteSnapshot("start"))
	assert.Len(t, tg.Snapshots(), 1)
}

func TestReverseContinueToWrite(t *testing.T) {
	for _, every := range intervals {
		t.Run(fmt.Sprint(every), func(t *testing.T) { testReverseContinueToWrite(t, every) })
	}
}

func testReverseContinueToWrite(t *testing.T, every uint64) {
	tg, out, guard := recorded(t)
	if every > 0 {
		tg.SetCheckpointInterval(every)
	}
	defer func() { t.Logf("checkpoints: %+v", tg.CheckpointStats()) }()
	// Forward reference: the write's position and instruction.
	require.NoError(t, tg.InsertBreakpoint(rsp.WatchWrite, guard, 4))
	st, err := tg.Resume(cont)
	require.NoError(t, err)
	require.Equal(t, rsp.StopWatch, st.Kind, "%+v", st)
	after := capture(t, tg)
	require.NoError(t, tg.RemoveBreakpoint(rsp.WatchWrite, guard, 4))
	st, err = tg.Resume(cont)
	require.NoError(t, err)
	require.Equal(t, rsp.StopExited, st.Kind, "%+v", st)
	end := tg.Position()

	// From the end, watch the global and go back.
	require.NoError(t, tg.InsertBreakpoint(rsp.WatchWrite, guard, 4))
	st, err = tg.ContinueBack()
	require.NoError(t, err)
	require.Equal(t, rsp.StopWatch, st.Kind, describeStop(st))
	assert.Equal(t, guard, st.Addr)
	assert.Equal(t, after.pos-1, tg.Position(), "stopped before the store")
	var b [4]byte
	_, err = tg.ReadMemory(guard, b[:])
	require.NoError(t, err)
	assert.Equal(t, []byte{42, 0, 0, 0}, b[:], "the old value is in memory")
	before := capture(t, tg)

	// One instruction forward is the state the forward run stopped in.
	st, err = tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads, Step: true}})
	require.NoError(t, err)
	sameState(t, after, capture(t, tg), "stepped over the store")

	// reverse-stepi comes back.
	_, err = tg.StepBack(ThreadID)
	require.NoError(t, err)
	sameState(t, before, capture(t, tg), "reverse-stepi")

	// Again: no earlier write, so the history's start.
	st, err = tg.ContinueBack()
	require.NoError(t, err)
	assert.Equal(t, "begin", st.ReplayLog)
	start := tg.Position()
	st, err = tg.StepBack(ThreadID)
	require.NoError(t, err)
	assert.Equal(t, "begin", st.ReplayLog)
	assert.Equal(t, start, tg.Position())

	// Forward to the end again: the same end, the output printed once.
	require.NoError(t, tg.RemoveBreakpoint(rsp.WatchWrite, guard, 4))
	st, err = tg.Resume(cont)
	require.NoError(t, err)
	require.Equal(t, rsp.StopExited, st.Kind)
	assert.Equal(t, end, tg.Position())
	assert.Equal(t, 1, strings.Count(out.String(), "after: guard=39\n"), out.String())
}

// TestTimeTravelMonitor: the monitor commands LLDB and scripts use, and
// their answer without a recording.
func TestTimeTravelMonitor(t *testing.T) {
	tg, _, guard := recorded(t)
	view := debuggeetest.View(tg)
	run := func(cmd string) string {
		var b bytes.Buffer
		require.NoError(t, view.Monitor(cmd, &b), cmd)
		return b.String()
	}
	assert.Regexp(t, `^position \d+\n$`, run("when"))
	assert.Contains(t, run("snapshot save start"), "snapshot start at position")
	require.NoError(t, tg.InsertBreakpoint(rsp.WatchWrite, guard, 4))
	st, err := tg.Resume(cont)
	require.NoError(t, err)
	require.Equal(t, rsp.StopWatch, st.Kind)
	at := tg.Position()
	assert.Equal(t, fmt.Sprintf("position %d: ", at-5), run("reverse-stepi 5")[:len(fmt.Sprintf("position %d: ", at-5))])
	out := run("reverse-continue")
	assert.Contains(t, out, "the start of the recording")
	run("snapshot save here")
	list := run("snapshot list")
	assert.Regexp(t, `(?m)^start +position \d+$`, list)
	assert.Regexp(t, `(?m)^here +position \d+$`, list)
	assert.Contains(t, run("snapshot restore start"), "restored start")
	run("snapshot delete here")
	assert.NotContains(t, run("snapshot list"), "here")
	var b bytes.Buffer
	assert.Error(t, view.Monitor("snapshot restore nosuch", &b))

	plain, err := New(Config{Program: tg.rec.cfg.Program})
	require.NoError(t, err)
	defer plain.Close()
	err = debuggeetest.View(plain).Monitor("when", &b)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--record")
	assert.False(t, plain.Offers(rsp.FeatureReverse), "no bs/bc without a recording")
	assert.True(t, tg.Offers(rsp.FeatureReverse))
}

// TestVirtualTSCGuest: a program's own rdtsc reads the virtual counter
// under recording: two recorded runs print the same values, three ticks
// an instruction apart; without recording they are the host's.
func TestVirtualTSCGuest(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/tsc.c", testkit.MinGW, "-O0")
	runOnce := func(record bool) (uint64, uint64) {
		var out bytes.Buffer
		tg, err := New(Config{Program: exe, Record: record, Stdout: &out})
		require.NoError(t, err)
		defer tg.Close()
		st, err := tg.Resume(cont)
		require.NoError(t, err)
		require.Equal(t, rsp.StopExited, st.Kind)
		var a, b uint64
		_, err = fmt.Sscanf(out.String(), "%d %d", &a, &b)
		require.NoError(t, err, out.String())
		return a, b
	}
	a1, b1 := runOnce(true)
	a2, b2 := runOnce(true)
	assert.Equal(t, a1, a2)
	assert.Equal(t, b1, b2)
	assert.Equal(t, uint64(0), (b1-a1)%3, "three ticks an instruction")
	assert.Less(t, b1-a1, uint64(300), "a few instructions apart")
	h1, _ := runOnce(false)
	h2, _ := runOnce(false)
	assert.NotEqual(t, h1, h2, "without recording: the host's counter")
}

// TestTimeTravelTraceCoverage: --trace-api and --coverage under a
// recording. Going back half the run and forward to the end again
// writes the same API trace (a replay does not repeat the lines already
// written) and the same coverage (the blocks of the machine replaced by
// the replay are kept) as a run that never went back.
func TestTimeTravelTraceCoverage(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/apitrace.c", testkit.MinGW, "-O0")
	run := func(back bool) (trace, cov string, replays int) {
		var tr, cv, out bytes.Buffer
		tg, err := New(Config{Program: exe, Record: true, TraceAPI: &tr, Coverage: &cv, Stdout: &out})
		require.NoError(t, err)
		st := runToExit(t, tg)
		assert.Equal(t, 7, st.ExitCode)
		if back {
			pos := tg.Position()
			_, err := tg.ReverseStepN(pos / 2)
			require.NoError(t, err)
			require.Equal(t, pos-pos/2, tg.Position())
			st := runToExit(t, tg)
			assert.Equal(t, 7, st.ExitCode)
			assert.Equal(t, pos, tg.Position())
		}
		replays = tg.CheckpointStats().Replays
		require.NoError(t, tg.Close())
		assert.Equal(t, "traced line\npid heap string 1\n", out.String(), "console shown once")
		return tr.String(), cv.String(), replays
	}
	trace, cov, _ := run(false)
	require.NotEmpty(t, parseTrace(t, []byte(trace)))
	require.Contains(t, cov, "BB Table:")
	trace2, cov2, replays := run(true)
	require.Positive(t, replays, "the reverse step replayed")
	assert.Equal(t, trace, trace2, "API trace")
	// The run that went back resumed at a position inside a block: that
	// block's tail is a block of its own, as after any stop mid-block.
	// The code covered is the same.
	assert.Equal(t, covered(t, cov), covered(t, cov2), "coverage")
}

// covered is the set of module bytes a drcov file's blocks cover.
func covered(t *testing.T, drcov string) map[[2]uint32]bool {
	t.Helper()
	i := strings.Index(drcov, "BB Table: ")
	require.GreaterOrEqual(t, i, 0)
	var n int
	_, err := fmt.Sscanf(drcov[i:], "BB Table: %d bbs\n", &n)
	require.NoError(t, err)
	tab := drcov[strings.IndexByte(drcov[i:], '\n')+i+1:]
	require.Equal(t, 8*n, len(tab))
	out := map[[2]uint32]bool{}
	for k := 0; k < n; k++ {
		e := []byte(tab[8*k : 8*k+8])
		start := binary.LittleEndian.Uint32(e)
		size := binary.LittleEndian.Uint16(e[4:])
		mod := binary.LittleEndian.Uint16(e[6:])
		for b := uint32(0); b < uint32(size); b++ {
			out[[2]uint32{uint32(mod), start + b}] = true
		}
	}
	return out
}

// TestTimeTravelRestart: a restart under a recording starts a new one:
// the position starts again, the old run's snapshots are gone, and
// going back works in the new run without showing its output twice.
func TestTimeTravelRestart(t *testing.T) {
	tg, out, _ := recorded(t)
	_, err := tg.SaveSnapshot("old")
	require.NoError(t, err)
	st, err := tg.Resume(cont)
	require.NoError(t, err)
	require.Equal(t, rsp.StopExited, st.Kind)
	end := tg.Position()
	first := out.String()
	require.NotEmpty(t, first)

	_, err = tg.Restart(nil)
	require.NoError(t, err)
	assert.True(t, tg.Recording())
	assert.Less(t, tg.Position(), end)
	assert.Empty(t, tg.Snapshots(), "snapshots of the old run")
	st, err = tg.Resume(cont)
	require.NoError(t, err)
	require.Equal(t, rsp.StopExited, st.Kind)
	assert.Equal(t, end, tg.Position(), "the same run again")
	assert.Equal(t, first+first, out.String())
	_, err = tg.ReverseStepN(end / 2)
	require.NoError(t, err)
	assert.Equal(t, end-end/2, tg.Position())
	st, err = tg.Resume(cont)
	require.NoError(t, err)
	require.Equal(t, rsp.StopExited, st.Kind)
	assert.Equal(t, first+first, out.String(), "output of the replay shown again")
}

// TestExactFaultByReplay: a fault the decoder cannot place (two loads
// through a moved rbx, the second faulting) is exact by default (the
// page tables, unicorn.Machine.SetFaultPaging); with the decoder alone it
// is flagged without a recording and found exactly with one, by replaying
// its block one instruction at a time.
func TestExactFaultByReplay(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/ambfault.c", testkit.MinGW, "-O0")
	want := symbolAddr(t, exe, "second_load")
	for _, land := range []string{UserlandSynth, UserlandWine} {
		for _, c := range []struct{ decode, record bool }{{false, false}, {true, false}, {true, true}} {
			decode, record := c.decode, c.record
			t.Run(fmt.Sprintf("%s/decode=%v/record=%v", land, decode, record), func(t *testing.T) {
				if land == UserlandWine {
					testkit.NeedWine(t)
				}
				var out bytes.Buffer
				tg, err := New(Config{Program: exe, Userland: land, Record: record, DecodeFaults: decode, Stdout: &out, Stderr: &out})
				require.NoError(t, err)
				defer tg.Close()
				require.Equal(t, !decode, tg.Machine().FaultPaging())
				st, err := tg.Resume(cont)
				require.NoError(t, err)
				require.Equal(t, rsp.StopSignal, st.Kind, st.Description)
				require.Equal(t, rsp.SIGSEGV, st.Signal, st.Description)
				pc, err := tg.Machine().Reg(arch.RIP)
				require.NoError(t, err)
				if decode && !record {
					assert.Contains(t, st.Description, "ambiguous", "the decoder alone cannot tell the loads apart")
					return
				}
				assert.Equal(t, want, pc, "the second load faulted: %s", st.Description)
				assert.NotContains(t, st.Description, "ambiguous")
				rbx, err := tg.Machine().Reg(arch.RBX)
				require.NoError(t, err)
				assert.Equal(t, st.Addr, rbx, "registers at the fault")
				assert.Equal(t, 1, strings.Count(out.String(), "before"), "the replay printed nothing again: %q", out.String())
			})
		}
	}
}
