package guest

import "github.com/rspstub/rspstub/guest/process"

// Machine is the emulator as the synthesized userland sees it: the
// process layer's Machine and trap ranges. *unicorn.Machine satisfies it;
// tests use an in-memory fake.
type Machine interface {
	process.Machine
	// AddTrapRange makes executing any address in [start,end) stop the
	// emulator before that instruction; the integrator then calls
	// Process.HandleTrap(pc).
	AddTrapRange(start, end uint64) error
}
