package rsp

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
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
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("%q: got %+v, %v; want %+v", tc.in, got, err, tc.want)
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
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Step()
	if err != nil || st.Kind != StopSignal || st.Signal != SIGTRAP || st.Thread != 1 {
		t.Fatalf("step: %+v %v", st, err)
	}
	if err := c.SetBreakpoint(BreakSoftware, 0x140001100, 1); err != nil {
		t.Fatal(err)
	}
	st, err = c.Continue()
	if err != nil || st.Kind != StopSWBreak {
		t.Fatalf("continue: %+v %v", st, err)
	}
	if pc, _ := c.ReadRegisterUint("rip"); pc != 0x140001100 {
		t.Fatalf("pc %#x", pc)
	}
	if err := c.RemoveBreakpoint(BreakSoftware, 0x140001100, 1); err != nil {
		t.Fatal(err)
	}
	st, err = c.Resume([]ResumeAction{{Thread: 1, Step: true, RangeStart: 0x140001100, RangeEnd: 0x140001104}})
	if pc, _ := c.ReadRegisterUint("rip"); err != nil || pc != 0x140001104 {
		t.Fatalf("range step: %+v %v pc %#x", st, err, pc)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		c.Interrupt()
	}()
	st, err = c.Continue()
	if err != nil || st.Signal != SIGINT {
		t.Fatalf("interrupted continue: %+v %v", st, err)
	}
	if got := console.String(); got != "guest says hi\nguest says hi\ninterrupted\n" {
		t.Fatalf("console: %q", got)
	}
	if err := c.SetBreakpoint(9, 0, 1); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Z9: %v", err)
	}
	var re *RemoteError
	if _, err := c.Request("m0,4"); !errors.As(err, &re) || re.Code != 0x0e {
		t.Fatalf("m0,4: %v", err)
	}
	if err := c.WriteMemory(testStackBase, bytes.Repeat([]byte{'}', '$', '#', '*'}, 1024)); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, 12000)
	if n, err := c.ReadMemory(testStackBase, back[:0x1000]); err != nil || n != 0x1000 || !bytes.Equal(back[:8], []byte("}$#*}$#*")) {
		t.Fatalf("read back: %d %v", n, err)
	}
	if err := c.Detach(); err != nil {
		t.Fatal(err)
	}
}
