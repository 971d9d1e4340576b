package rsp

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// growingTarget knows its memory map but may map more while it runs.
type growingTarget struct {
	Target
	MemoryMapper
}

// TestMemoryMapOnlyWhenFixed: a map that can grow answers
// qMemoryRegionInfo but never advertises or serves qXfer:memory-map,
// which would make GDB refuse memory mapped after it connected.
func TestMemoryMapOnlyWhenFixed(t *testing.T) {
	tt := newTestTarget()
	for _, tc := range []struct {
		name  string
		tgt   Target
		fixed bool
	}{
		{"fixed", tt, true},
		{"growing", growingTarget{tt, tt}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := discover(tc.tgt)
			if f.mm == nil {
				t.Fatal("MemoryMapper not discovered")
			}
			adv := strings.Contains(f.supported(DefaultPacketSize), "qXfer:memory-map:read+")
			if adv != tc.fixed || f.xferReadable("memory-map") != tc.fixed {
				t.Errorf("memory-map advertised=%v readable=%v, want %v",
					adv, f.xferReadable("memory-map"), tc.fixed)
			}
		})
	}
}

// TestServeEndsAfterExit: once the target has exited and its debugger
// leaves, Serve returns ErrExited instead of waiting for clients that
// would find nothing to debug.
func TestServeEndsAfterExit(t *testing.T) {
	tt := newTestTarget()
	tt.stop = Stop{Kind: StopExited, ExitCode: 3}
	srv := NewServer(tt, WithLogger(quietLogger()))
	l, err := Listen("127.0.0.1:0", quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	c, err := Dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.StopReason()
	if err != nil || st.Kind != StopExited || st.ExitCode != 3 {
		t.Fatalf("stop reason %+v, %v", st, err)
	}
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrExited) {
			t.Fatalf("Serve returned %v, want ErrExited", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve kept running after the exited target's debugger left")
	}
}
