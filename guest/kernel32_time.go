package guest

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
