package guest

// KERNEL32.dll's system information and exception exports: their handlers,
// listed by kernel32Exports in api_kernel32.go.

// k32_SetUnhandledExceptionFilter implements SetUnhandledExceptionFilter.
func k32_SetUnhandledExceptionFilter(c *call) error {
	old := c.p.win32.unhandled
	c.p.win32.unhandled = c.arg(0)
	return c.ret(old)
}

// k32_GetVersion implements GetVersion.
func k32_GetVersion(c *call) error { return c.ret(19045<<16 | 10) }

// k32_OutputDebugStringA implements OutputDebugStringA.
func k32_OutputDebugStringA(c *call) error {
	c.p.log.Info("OutputDebugString", "text", c.str(0))
	return c.ret(0)
}

// k32_OutputDebugStringW implements OutputDebugStringW.
func k32_OutputDebugStringW(c *call) error {
	c.p.log.Info("OutputDebugString", "text", c.wstr(0))
	return c.ret(0)
}

// k32_GetCurrentDirectoryA implements GetCurrentDirectoryA.
func k32_GetCurrentDirectoryA(c *call) error {
	return copyOutString(c, `C:\rspstub`, c.arg(1), c.arg(0), false)
}

// k32_GetCurrentDirectoryW implements GetCurrentDirectoryW.
func k32_GetCurrentDirectoryW(c *call) error {
	return copyOutString(c, `C:\rspstub`, c.arg(1), c.arg(0), true)
}
