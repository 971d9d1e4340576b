package guest

import "io"

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

// writerFor maps a handle to the guest's output streams.
func (p *Process) writerFor(h uint64) io.Writer {
	switch h {
	case stdOutputHandle:
		return p.cfg.Stdout
	case stdErrorHandle:
		return p.cfg.Stderr
	}
	return nil
}

func writeFile(c *call) error {
	h, buf, n := c.arg(0), c.arg(1), uint32(c.arg(2))
	w := c.p.writerFor(h)
	if w == nil {
		return c.fail(errorInvalidHandle)
	}
	b := c.rbytes(buf, uint64(n))
	if c.err != nil {
		return nil
	}
	w.Write(b)
	c.w32(c.arg(3), n)
	return c.ret(1)
}

func writeConsoleW(c *call) error {
	h, buf, n := c.arg(0), c.arg(1), uint32(c.arg(2))
	w := c.p.writerFor(h)
	if w == nil {
		return c.fail(errorInvalidHandle)
	}
	s, err := c.p.mem.ReadWStringN(buf, int(n))
	if err != nil {
		return err
	}
	io.WriteString(w, s)
	c.w32(c.arg(3), n)
	return c.ret(1)
}

func getFileType(c *call) error {
	switch c.arg(0) {
	case stdInputHandle, stdOutputHandle, stdErrorHandle:
		return c.ret(3) // FILE_TYPE_PIPE: output is redirected to the stub
	}
	return c.fail(errorInvalidHandle)
}
