package guest

import (
	"encoding/binary"

	"github.com/rspstub/rspstub/guest/process"
)

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

func initSListHead(c *call) error {
	c.wbytes(c.arg(0), make([]byte, 16))
	return c.ret(0)
}

func isProcessorFeaturePresent(c *call) error {
	switch c.arg(0) {
	case 2, 3, 6, 7, 10, 12, 13, 17, 20: // cmpxchg, mmx, xmmi, 3dnow?, xmmi64, nx, sse3, ...
		return c.ret(1)
	}
	return c.ret(0)
}

// getSystemInfo fills SYSTEM_INFO (48 bytes).
func getSystemInfo(c *call) error {
	b := make([]byte, 48)
	le := binary.LittleEndian
	le.PutUint16(b[0:], 9) // PROCESSOR_ARCHITECTURE_AMD64
	le.PutUint32(b[4:], process.PageSize)
	le.PutUint64(b[8:], process.LowestAddress)
	le.PutUint64(b[16:], process.UserLimit-1)
	le.PutUint64(b[24:], 1)
	le.PutUint32(b[32:], 1)
	le.PutUint32(b[36:], 8664)
	le.PutUint32(b[40:], 0x10000)
	le.PutUint16(b[44:], 6)
	c.wbytes(c.arg(0), b)
	return c.ret(0)
}
