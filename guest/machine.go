package guest

import "github.com/rspstub/rspstub/guest/process"

// Machine is the emulator as the synthesized userland sees it: the
// process layer's Machine and trap ranges. *unicorn.Machine satisfies it;
// tests use an in-memory fake.
type Machine interface {
	process.Machine
	// AddTrapRange makes the stubs' hlt instructions in [start,end) stop
	// the emulator on the hlt, before it runs (rspstub's machine needs no
	// code hook for that); the integrator then calls
	// Process.HandleTrap(pc).
	AddTrapRange(start, end uint64) error
}
