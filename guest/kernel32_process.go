package guest

import "github.com/rspstub/rspstub/guest/process"

// KERNEL32.dll's error, process and thread exports: their handlers, listed by
// kernel32Exports in api_kernel32.go.

// k32_GetCurrentProcess implements GetCurrentProcess.
func k32_GetCurrentProcess(c *call) error { return c.ret(process.CurrentProcessHandle) }

// k32_GetCurrentThread implements GetCurrentThread.
func k32_GetCurrentThread(c *call) error { return c.ret(process.CurrentThreadHandle) }

// k32_GetCurrentProcessId implements GetCurrentProcessId.
func k32_GetCurrentProcessId(c *call) error { return c.ret(guestPID) }

// k32_GetCurrentThreadId implements GetCurrentThreadId.
func k32_GetCurrentThreadId(c *call) error { return c.ret(guestTID) }

// k32_ExitProcess implements ExitProcess.
func k32_ExitProcess(c *call) error { return c.exit(int(int32(c.arg(0)))) }

// k32_ExitThread implements ExitThread.
func k32_ExitThread(c *call) error { return c.exit(int(int32(c.arg(0)))) }

func terminateProcess(c *call) error {
	h := c.arg(0)
	if h == process.CurrentProcessHandle || h == 0 {
		return c.exit(int(int32(c.arg(1))))
	}
	return c.fail(errorInvalidHandle)
}

func getLastError(c *call) error {
	v, err := c.p.mem.ReadU32(c.p.teb + process.TEBLastError)
	if err != nil {
		return err
	}
	return c.ret(uint64(v))
}

func setLastError(c *call) error {
	c.setLastError(uint32(c.arg(0)))
	return c.ret(0)
}
