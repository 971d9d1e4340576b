package rsp

import (
	"fmt"
	"io"
	"runtime"
	"time"
)

// StubStatsCommand is the monitor command the server answers itself, on
// every backend, before the target's own monitor sees the line:
// "stub-stats" prints Stats, "stub-stats -gc" collects garbage first so
// that heap figures of two calls compare.
const StubStatsCommand = "stub-stats"

// Stats are the stub process's own figures: what a soak test watches to
// see that nothing leaks across sessions.
type Stats struct {
	Goroutines int           // runtime.NumGoroutine
	HeapInUse  uint64        // bytes in in-use heap spans (runtime.MemStats.HeapInuse)
	HeapAlloc  uint64        // bytes of live and not yet freed heap objects
	Packets    uint64        // packets dispatched, all sessions
	Sessions   uint64        // sessions accepted
	Uptime     time.Duration // since NewServer
	// CondFalse counts breakpoint hits whose conditions were all false:
	// the stub evaluated them and went on without telling the client.
	CondFalse uint64
}

// Stats returns the current figures. It stops the world briefly (as
// runtime.ReadMemStats does); it is for a command, not the packet path.
func (s *Server) Stats() Stats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Stats{
		Goroutines: runtime.NumGoroutine(),
		HeapInUse:  ms.HeapInuse,
		HeapAlloc:  ms.HeapAlloc,
		Packets:    s.packets.Load(),
		Sessions:   s.sessions.Load(),
		Uptime:     time.Since(s.started),
		CondFalse:  s.condFalse.Load(),
	}
}

// WriteTo writes the figures one "name value" per line, values in
// decimal (bytes, counts) and the uptime in seconds.
func (st Stats) WriteTo(w io.Writer) (int64, error) {
	n, err := fmt.Fprintf(w, "goroutines %d\nheap-inuse %d\nheap-alloc %d\npackets %d\nsessions %d\nuptime %.1f\nconditions-false %d\n",
		st.Goroutines, st.HeapInUse, st.HeapAlloc, st.Packets, st.Sessions, st.Uptime.Seconds(), st.CondFalse)
	return int64(n), err
}
