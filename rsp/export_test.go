package rsp

// NewTestTarget exposes the package's in-memory test target (every
// optional interface, a trivial CPU) to the external tests, which run the
// contract test of rsp/rsptest on it.
func NewTestTarget() Target { return newTestTarget() }

// TestCodeBase is where the test target's code starts.
const TestCodeBase = testCodeBase
