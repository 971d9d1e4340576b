package rsp

import (
	"strings"
	"testing"
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
