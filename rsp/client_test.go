package rsp

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseStop(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Stop
		bad  bool
	}{
		{"S05", Stop{Kind: StopSignal, Signal: SIGTRAP}, false},
		{"T0bthread:p1.2;", Stop{Kind: StopSignal, Signal: SIGSEGV, Thread: 2}, false},
		{"T05thread:01;10:0010000000000000;swbreak:;", Stop{Kind: StopSWBreak, Signal: SIGTRAP, Thread: 1}, false},
		{"T05hwbreak:;thread:3;", Stop{Kind: StopHWBreak, Signal: SIGTRAP, Thread: 3}, false},
		{"T05watch:7ff000;thread:1;", Stop{Kind: StopWatch, Signal: SIGTRAP, Thread: 1, Addr: 0x7ff000}, false},
		{"T05rwatch:10;", Stop{Kind: StopRWatch, Signal: SIGTRAP, Addr: 0x10}, false},
		{"T05awatch:20;library:;", Stop{Kind: StopAWatch, Signal: SIGTRAP, Addr: 0x20, Library: true}, false},
		{"T02thread:1;description:6869;", Stop{Kind: StopSignal, Signal: SIGINT, Thread: 1, Description: "hi"}, false},
		{"T05thread:1;reason:breakpoint;", Stop{Kind: StopSWBreak, Signal: SIGTRAP, Thread: 1}, false},
		{"W00", Stop{Kind: StopExited}, false},
		{"W2a", Stop{Kind: StopExited, ExitCode: 42}, false},
		{"X09", Stop{Kind: StopTerminated, Signal: SIGKILL}, false},
		{"T", Stop{}, true},
		{"Tzz", Stop{}, true},
		{"OK", Stop{}, true},
		{"Q05", Stop{}, true},
	} {
		got, err := ParseStop([]byte(tc.in))
		if tc.bad {
			assert.Error(t, err, "%q", tc.in)
		} else if assert.NoError(t, err, "%q", tc.in) {
			assert.Equal(t, tc.want, got, "%q", tc.in)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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

func TestClientResumeBreakInterrupt(t *testing.T) {
	tt := newTestTarget()
	conn, _, _ := startPipe(t, tt)
	var console syncBuffer
	c, err := NewClient(conn, WithConsole(&console), WithTimeout(5*time.Second))
	require.NoError(t, err)
	st, err := c.Step()
	require.NoError(t, err, "step")
	require.Equal(t, StopSignal, st.Kind, "step: %+v", st)
	require.Equal(t, SIGTRAP, st.Signal, "step: %+v", st)
	require.Equal(t, 1, st.Thread, "step: %+v", st)
	require.NoError(t, c.SetBreakpoint(BreakSoftware, 0x140001100, 1))
	st, err = c.Continue()
	require.NoError(t, err, "continue")
	require.Equal(t, StopSWBreak, st.Kind, "continue: %+v", st)
	pc, _ := c.ReadRegisterUint("rip")
	require.Equal(t, uint64(0x140001100), pc, "pc")
	require.NoError(t, c.RemoveBreakpoint(BreakSoftware, 0x140001100, 1))
	st, err = c.Resume([]ResumeAction{{Thread: 1, Step: true, RangeStart: 0x140001100, RangeEnd: 0x140001104}})
	require.NoError(t, err, "range step: %+v", st)
	pc, _ = c.ReadRegisterUint("rip")
	require.Equal(t, uint64(0x140001104), pc, "range step: pc")
	go func() {
		time.Sleep(50 * time.Millisecond)
		c.Interrupt()
	}()
	st, err = c.Continue()
	require.NoError(t, err, "interrupted continue")
	require.Equal(t, SIGINT, st.Signal, "interrupted continue: %+v", st)
	require.Equal(t, "guest says hi\nguest says hi\ninterrupted\n", console.String(), "console")
	require.ErrorIs(t, c.SetBreakpoint(9, 0, 1), ErrUnsupported, "Z9")
	var re *RemoteError
	_, err = c.Request("m0,4")
	require.ErrorAs(t, err, &re, "m0,4")
	require.Equal(t, 0x0e, int(re.Code), "m0,4: error code")
	require.NoError(t, c.WriteMemory(testStackBase, bytes.Repeat([]byte{'}', '$', '#', '*'}, 1024)))
	back := make([]byte, 12000)
	n, err := c.ReadMemory(testStackBase, back[:0x1000])
	require.NoError(t, err, "read back")
	require.Equal(t, 0x1000, n, "read back")
	require.Equal(t, "}$#*}$#*", string(back[:8]), "read back")
	require.NoError(t, c.Detach())
}
