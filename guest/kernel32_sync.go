package guest

import "encoding/binary"

// KERNEL32.dll's synchronization exports: their handlers, listed by
// kernel32Exports in api_kernel32.go.

// k32_InitializeCriticalSectionAndSpinCount implements InitializeCriticalSectionAndSpinCount.
func k32_InitializeCriticalSectionAndSpinCount(c *call) error {
	initCS(c)
	return c.ret(1)
}

// k32_InitializeCriticalSectionEx implements InitializeCriticalSectionEx.
func k32_InitializeCriticalSectionEx(c *call) error { initCS(c); return c.ret(1) }

// k32_InitializeSRWLock implements InitializeSRWLock.
func k32_InitializeSRWLock(c *call) error { c.w64(c.arg(0), 0); return c.ret(0) }

// k32_InitializeConditionVariable implements InitializeConditionVariable.
func k32_InitializeConditionVariable(c *call) error { c.w64(c.arg(0), 0); return c.ret(0) }

// k32_DuplicateHandle implements DuplicateHandle: the same handle value.
func k32_DuplicateHandle(c *call) error {
	c.w64(c.arg(3), c.arg(1))
	return c.ret(1)
}

// newHandle gives each kernel object a new handle value.
func newHandle(c *call) error {
	c.p.win32.nextHandle += 4
	return c.ret(0x100 + c.p.win32.nextHandle)
}

func initCS(c *call) error {
	// CRITICAL_SECTION: DebugInfo, LockCount=-1, RecursionCount, OwningThread, LockSemaphore, SpinCount.
	b := make([]byte, 40)
	binary.LittleEndian.PutUint32(b[8:], 0xFFFFFFFF)
	c.wbytes(c.arg(0), b)
	return c.ret(0)
}
