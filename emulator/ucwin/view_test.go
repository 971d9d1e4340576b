package ucwin

import (
	"sync"

	"github.com/rspstub/rspstub/debuggee"
)

var (
	viewsMu sync.Mutex
	views   = map[*Target]*debuggee.Target{}
)

// view is the process layer over tg, one per target, so that its
// monitor keeps its symbol caches from one command to the next.
func view(tg *Target) *debuggee.Target {
	viewsMu.Lock()
	defer viewsMu.Unlock()
	v := views[tg]
	if v == nil {
		v = debuggee.New(tg)
		views[tg] = v
	}
	return v
}
