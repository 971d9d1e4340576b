// Package debuggeetest gives tests the process layer over a backend
// target they drive directly.
package debuggeetest

import (
	"sync"

	"github.com/rspstub/rspstub/debuggee"
)

var (
	mu    sync.Mutex
	views = map[debuggee.Backend]*debuggee.Target{}
)

// View is the layer over b, one per backend for the life of the test
// binary, so that its monitor keeps its symbol caches from one command to
// the next.
func View(b debuggee.Backend) *debuggee.Target {
	mu.Lock()
	defer mu.Unlock()
	v := views[b]
	if v == nil {
		v = debuggee.New(b)
		views[b] = v
	}
	return v
}
