package guest

import "github.com/rspstub/rspstub/guest/process"

// KERNEL32.dll's command line, environment and startup exports: their
// handlers, listed by kernel32Exports in api_kernel32.go.

// k32_GetCommandLineA implements GetCommandLineA.
func k32_GetCommandLineA(c *call) error {
	if c.p.win32.cmdA == 0 {
		a, err := c.p.heap.allocBytes(append([]byte(c.p.commandLine()), 0))
		if err != nil {
			return err
		}
		c.p.win32.cmdA = a
	}
	return c.ret(c.p.win32.cmdA)
}

// k32_GetCommandLineW implements GetCommandLineW.
func k32_GetCommandLineW(c *call) error {
	if c.p.win32.cmdW == 0 {
		a, err := c.p.heap.allocBytes(process.UTF16Bytes(c.p.commandLine(), true))
		if err != nil {
			return err
		}
		c.p.win32.cmdW = a
	}
	return c.ret(c.p.win32.cmdW)
}

// k32_GetEnvironmentStrings implements GetEnvironmentStrings.
func k32_GetEnvironmentStrings(c *call) error { return getEnvironmentStrings(c, false) }

// k32_GetEnvironmentStringsA implements GetEnvironmentStringsA.
func k32_GetEnvironmentStringsA(c *call) error { return getEnvironmentStrings(c, false) }

// k32_GetEnvironmentStringsW implements GetEnvironmentStringsW.
func k32_GetEnvironmentStringsW(c *call) error { return getEnvironmentStrings(c, true) }

// k32_FreeEnvironmentStringsA implements FreeEnvironmentStringsA.
func k32_FreeEnvironmentStringsA(c *call) error { c.p.heap.release(c.arg(0)); return c.ret(1) }

// k32_FreeEnvironmentStringsW implements FreeEnvironmentStringsW.
func k32_FreeEnvironmentStringsW(c *call) error { c.p.heap.release(c.arg(0)); return c.ret(1) }

// k32_GetEnvironmentVariableA implements GetEnvironmentVariableA.
func k32_GetEnvironmentVariableA(c *call) error { return getEnvironmentVariable(c, c.str(0), false) }

// k32_GetEnvironmentVariableW implements GetEnvironmentVariableW.
func k32_GetEnvironmentVariableW(c *call) error { return getEnvironmentVariable(c, c.wstr(0), true) }

// k32_SetEnvironmentVariableA implements SetEnvironmentVariableA.
func k32_SetEnvironmentVariableA(c *call) error {
	return setEnvironmentVariable(c, c.str(0), c.str(1), c.arg(1) == 0)
}

// k32_SetEnvironmentVariableW implements SetEnvironmentVariableW.
func k32_SetEnvironmentVariableW(c *call) error {
	return setEnvironmentVariable(c, c.wstr(0), c.wstr(1), c.arg(1) == 0)
}
