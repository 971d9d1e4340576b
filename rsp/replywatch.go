package rsp

import (
	"net"
	"sync"
	"time"
)

// Request timeouts. Setting a read deadline before every reply and
// clearing it after adds and removes a runtime timer per request, and
// adding one wakes the thread parked in the network poller so that it
// sleeps for the new timer instead: a thread switch per packet, which
// on a virtual machine costs about as much as the packet itself. A
// client instead notes when it began to wait, and a replyWatch goroutine,
// ticking at a quarter of the timeout, expires the read of a wait that
// has lasted longer than the timeout (so a wait fails between one and
// one and a quarter timeouts). The replyWatch ends itself after a few
// idle ticks and starts again with the next request: a client that is
// dropped without Close leaves nothing running.
type replyWatch struct {
	conn    net.Conn
	timeout time.Duration

	mu      sync.Mutex
	since   time.Time // when the current wait began; zero: none
	fired   bool      // the current wait's read was expired
	running bool
}

// replyWatchIdle is how many ticks without a wait end the replyWatch.
const replyWatchIdle = 8

func (w *replyWatch) tick() time.Duration {
	return min(max(w.timeout/4, 10*time.Millisecond), time.Second)
}

// begin marks the start of a wait for a reply.
func (w *replyWatch) begin() {
	w.mu.Lock()
	w.since = time.Now()
	if !w.running {
		w.running = true
		go w.loop()
	}
	w.mu.Unlock()
}

// end marks its end; it reports whether the replyWatch expired the read,
// and makes the connection readable again if so.
func (w *replyWatch) end() bool {
	w.mu.Lock()
	fired := w.fired
	if fired {
		w.conn.SetReadDeadline(time.Time{})
		w.fired = false
	}
	w.since = time.Time{}
	w.mu.Unlock()
	return fired
}

func (w *replyWatch) loop() {
	t := time.NewTicker(w.tick())
	defer t.Stop()
	idle := 0
	for range t.C {
		w.mu.Lock()
		switch {
		case w.since.IsZero():
			idle++
			if idle >= replyWatchIdle {
				w.running = false
				w.mu.Unlock()
				return
			}
		case !w.fired && time.Since(w.since) > w.timeout:
			idle = 0
			w.conn.SetReadDeadline(time.Unix(1, 0)) // in the past: the read fails now
			w.fired = true
		default:
			idle = 0
		}
		w.mu.Unlock()
	}
}
