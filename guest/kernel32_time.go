package guest

import (
	"math/bits"
	"time"
)

// KERNEL32.dll's time exports: their handlers, listed by kernel32Exports in
// api_kernel32.go.

// k32_GetTickCount implements GetTickCount.
func k32_GetTickCount(c *call) error { return c.ret(uint64(uint32(c.p.tick()))) }

// k32_GetTickCount64 implements GetTickCount64.
func k32_GetTickCount64(c *call) error { return c.ret(c.p.tick()) }

// k32_QueryPerformanceCounter implements QueryPerformanceCounter.
func k32_QueryPerformanceCounter(c *call) error {
	c.w64(c.arg(0), uint64(c.p.since().Nanoseconds()/100))
	return c.ret(1)
}

// k32_QueryPerformanceFrequency implements QueryPerformanceFrequency.
func k32_QueryPerformanceFrequency(c *call) error { c.w64(c.arg(0), 10_000_000); return c.ret(1) }

// k32_GetSystemTimeAsFileTime implements GetSystemTimeAsFileTime.
func k32_GetSystemTimeAsFileTime(c *call) error { c.w64(c.arg(0), c.p.fileTimeNow()); return c.ret(0) }

// k32_GetSystemTimePreciseAsFileTime implements GetSystemTimePreciseAsFileTime.
func k32_GetSystemTimePreciseAsFileTime(c *call) error {
	c.w64(c.arg(0), c.p.fileTimeNow())
	return c.ret(0)
}

// VirtualEpoch is the wall-clock time of a process start under a virtual
// clock (Config.Clock): 2026-01-01 00:00:00 UTC.
var VirtualEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// since is the time since the process started.
func (p *Process) since() time.Duration {
	if p.cfg.Clock != nil {
		return p.cfg.Clock()
	}
	return time.Since(p.win32.start)
}

// now is the wall-clock time.
func (p *Process) now() time.Time {
	if p.cfg.Clock != nil {
		return VirtualEpoch.Add(p.cfg.Clock())
	}
	return time.Now()
}

func (p *Process) tick() uint64 {
	p.win32.ticks++
	if p.cfg.Clock != nil {
		return uint64(p.cfg.Clock().Milliseconds())
	}
	// The native GetTickCount's formula (native.go), so both agree.
	if hz := tscHz(); hz > 0 {
		hi, lo := bits.Mul64(rdtsc()-p.win32.tsc0, uint64(1000*4294967296/hz))
		return hi<<32 | lo>>32
	}
	return uint64(time.Since(p.win32.start).Milliseconds())
}

func (p *Process) fileTimeNow() uint64 {
	return uint64(p.now().UnixNano()/100) + 116444736000000000
}
