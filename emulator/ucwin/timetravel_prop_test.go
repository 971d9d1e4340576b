package ucwin

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/emulator/unicorn"
	"github.com/rspstub/rspstub/internal/testkit"
	"github.com/rspstub/rspstub/rsp"
)

// refState is a forward-only run's state at a position: the registers
// and a digest of all memory (several states share a position around an
// API call, which the guest model serves without executing anything).
type refState struct {
	ctx    unicorn.Context
	digest [32]byte
}

// reference runs the program forward only, one instruction at a time,
// and records the states at position p.
func reference(t *testing.T, exe string, p uint64, cache map[uint64][]refState) []refState {
	if s, ok := cache[p]; ok {
		return s
	}
	tg, err := New(Config{Program: exe, Record: true})
	require.NoError(t, err)
	defer tg.Close()
	tg.fineStep = true
	var out []refState
	for i := 0; i < 100000 && !tg.exited && tg.Position() <= p; i++ {
		if tg.Position() == p {
			var s refState
			require.NoError(t, tg.m.ReadContext(&s.ctx))
			s.digest, err = tg.digest()
			require.NoError(t, err)
			out = append(out, s)
		}
		_, err := tg.run(true)
		require.NoError(t, err)
	}
	cache[p] = out
	return out
}

// TestTimeTravelProperty: random sequences of forward and reverse steps
// and continues, with and without checkpoints, always leave the process
// in the state a forward-only run has at the same position: registers
// and all memory.
func TestTimeTravelProperty(t *testing.T) {
	exe := testkit.BuildPE(t, "tests/testdata/corrupt.c", testkit.MinGW, "-O0", "-g")
	cache := map[uint64][]refState{}
	// Breakpoint candidates: functions of the program and of the CRT.
	var bps []uint64
	for _, s := range []string{"corrupt", "middle", "outer", "main", "__tmainCRTStartup", "_pei386_runtime_relocator"} {
		bps = append(bps, symbolAddr(t, exe, s))
	}
	for seed := int64(1); seed <= 4; seed++ {
		every := uint64(0)
		if seed%2 == 0 {
			every = 61
		}
		t.Run(fmt.Sprintf("seed%d-every%d", seed, every), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			tg, err := New(Config{Program: exe, Record: true})
			require.NoError(t, err)
			defer tg.Close()
			if every > 0 {
				tg.SetCheckpointInterval(every)
			}
			var log []string
			for op := 0; op < 24; op++ {
				bp := bps[rng.Intn(len(bps))]
				var what string
				var err error
				switch k := rng.Intn(6); k {
				case 0:
					what = "stepi"
					_, err = tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads, Step: true}})
				case 1:
					what = fmt.Sprintf("continue to %#x", bp)
					require.NoError(t, tg.InsertBreakpoint(rsp.BreakSoftware, bp, 1))
					_, err = tg.Resume(cont)
					require.NoError(t, tg.RemoveBreakpoint(rsp.BreakSoftware, bp, 1))
				case 2:
					what = "reverse-stepi"
					_, err = tg.StepBack(ThreadID)
				case 3:
					n := uint64(1 + rng.Intn(300))
					what = fmt.Sprintf("reverse-stepi %d", n)
					_, err = tg.ReverseStepN(n)
				case 4:
					what = fmt.Sprintf("reverse-continue to %#x", bp)
					require.NoError(t, tg.InsertBreakpoint(rsp.BreakSoftware, bp, 1))
					var st rsp.Stop
					st, err = tg.ContinueBack()
					require.NoError(t, tg.RemoveBreakpoint(rsp.BreakSoftware, bp, 1))
					if err == nil && st.ReplayLog == "" {
						pc, _ := tg.m.Reg(0x10)
						assert.Equal(t, bp, pc, "reverse-continue stops on the breakpoint")
					}
				case 5:
					n := 1 + rng.Intn(40)
					what = fmt.Sprintf("%d steps", n)
					for i := 0; i < n && err == nil; i++ {
						_, err = tg.Resume([]rsp.ResumeAction{{Thread: rsp.AllThreads, Step: true}})
					}
				}
				require.NoError(t, err, "%s after %v", what, log)
				pos := tg.Position()
				log = append(log, fmt.Sprintf("%s->%d", what, pos))
				if tg.exited {
					continue
				}
				var got refState
				require.NoError(t, tg.m.ReadContext(&got.ctx))
				got.digest, err = tg.digest()
				require.NoError(t, err)
				refs := reference(t, exe, pos, cache)
				require.NotEmpty(t, refs, "position %d beyond the program's end (%v)", pos, log)
				match := false
				for _, r := range refs {
					if r == got {
						match = true
					}
				}
				if !match {
					assert.Equal(t, refs[0].ctx, got.ctx, "registers at %d after %v", pos, log)
					assert.Equal(t, refs[0].digest, got.digest, "memory at %d after %v", pos, log)
					t.FailNow()
				}
			}
			t.Logf("%v; checkpoints %+v", log, tg.CheckpointStats())
		})
	}
}
