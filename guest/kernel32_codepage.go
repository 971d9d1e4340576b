package guest

import (
	"encoding/binary"
)

// KERNEL32.dll's code page exports: their handlers, listed by kernel32Exports
// in api_kernel32.go.

// k32_GetACP implements GetACP.
func k32_GetACP(c *call) error { return c.ret(1252) }

// k32_GetOEMCP implements GetOEMCP.
func k32_GetOEMCP(c *call) error { return c.ret(437) }

// k32_GetCPInfo implements GetCPInfo.
func k32_GetCPInfo(c *call) error {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b, 1)
	b[4] = '?'
	c.wbytes(c.arg(1), b)
	return c.ret(1)
}
