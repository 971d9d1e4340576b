package wine

import (
	"encoding/binary"
	"time"
)

// The guest's clock. By default it is virtual, so that a program with the
// same inputs executes the same instructions on every run: it starts at a
// fixed date, moves forward by a microsecond each time the guest reads it
// (so polling loops make progress), and jumps forward when every thread is
// waiting with a timeout or sleeping. With RealClock it follows the host.
//
// KUSER_SHARED_DATA's InterruptTime, SystemTime and TickCount are written
// at the end of every system call that moved the clock; code that polls
// them without making any system call sees time stand still.

// virtualEpoch is the guest's boot time: 2026-01-01 00:00:00 UTC.
var virtualEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// filetimeOffset is 1601-01-01 to 1970-01-01 in 100 ns units.
const filetimeOffset = 116444736000000000

type clock struct {
	real    bool
	start   time.Time // host time at boot (real clock)
	elapsed int64     // virtual: 100 ns units since boot
	dirty   bool      // KUSER needs an update
	// kuserMS is the tick count KUSER_SHARED_DATA holds; kuserInit forces
	// the first write.
	kuserMS   int64
	kuserInit bool
}

func newClock(real bool) *clock {
	return &clock{real: real, start: time.Now(), dirty: true, kuserInit: true}
}

// sinceBoot is the interrupt time: 100 ns units since boot.
func (c *clock) sinceBoot() int64 {
	if c.real {
		return int64(time.Since(c.start) / 100)
	}
	return c.elapsed
}

// read returns the time since boot and moves a virtual clock by 1 µs.
func (c *clock) read() int64 {
	v := c.sinceBoot()
	if !c.real {
		c.elapsed += 10
		c.dirty = true
	}
	return v
}

// advance moves a virtual clock forward by d (100 ns units).
func (c *clock) advance(d int64) {
	if !c.real && d > 0 {
		c.elapsed += d
		c.dirty = true
	}
}

// systemTime is the current time as a FILETIME (100 ns since 1601, UTC).
func (c *clock) systemTime() int64 {
	if c.real {
		return time.Now().UnixNano()/100 + filetimeOffset
	}
	return virtualEpoch.UnixNano()/100 + filetimeOffset + c.elapsed
}

// updateUserShared writes the time fields of KUSER_SHARED_DATA when the
// tick count (milliseconds) moved.
func (p *Process) updateUserShared() {
	c := p.clock
	if !c.real && !c.dirty {
		return
	}
	c.dirty = false
	ms := c.sinceBoot() / 10000
	if ms == c.kuserMS && !c.kuserInit {
		return
	}
	c.kuserMS, c.kuserInit = ms, false
	var b [0x28]byte
	it := c.sinceBoot()
	st := c.systemTime()
	putKSystemTime(b[0:], it)   // InterruptTime at 0x8
	putKSystemTime(b[0xc:], st) // SystemTime at 0x14
	p.mem.Write(kuserBase+kuserInterruptTime, b[:0x18])
	var tc [12]byte
	putKSystemTime(tc[:], it/10000) // TickCount in ms (TickCountMultiplier 1<<24)
	p.mem.Write(kuserBase+kuserTickCount, tc[:])
}

// putKSystemTime writes a KSYSTEM_TIME {LowPart, High1Time, High2Time}.
func putKSystemTime(b []byte, v int64) {
	binary.LittleEndian.PutUint32(b[0:], uint32(v))
	binary.LittleEndian.PutUint32(b[4:], uint32(v>>32))
	binary.LittleEndian.PutUint32(b[8:], uint32(v>>32))
}
