package guest

// KERNEL32.dll's file and console exports: their handlers, listed by
// kernel32Exports in api_kernel32.go.

// k32_GetStdHandle implements GetStdHandle.
func k32_GetStdHandle(c *call) error {
	switch int32(c.arg(0)) {
	case -10:
		return c.ret(stdInputHandle)
	case -11:
		return c.ret(stdOutputHandle)
	case -12:
		return c.ret(stdErrorHandle)
	}
	return c.ret(^uint64(0))
}

// k32_ReadFile implements ReadFile.
func k32_ReadFile(c *call) error {
	if c.arg(0) == stdInputHandle {
		c.w32(c.arg(3), 0)
		return c.ret(1)
	}
	return c.fail(errorInvalidHandle)
}

// k32_GetConsoleMode implements GetConsoleMode.
func k32_GetConsoleMode(c *call) error { return c.fail(errorInvalidHandle) }

// k32_SetConsoleMode implements SetConsoleMode.
func k32_SetConsoleMode(c *call) error { return c.fail(errorInvalidHandle) }

// k32_GetConsoleOutputCP implements GetConsoleOutputCP.
func k32_GetConsoleOutputCP(c *call) error { return c.ret(65001) }

// k32_GetConsoleCP implements GetConsoleCP.
func k32_GetConsoleCP(c *call) error { return c.ret(65001) }
