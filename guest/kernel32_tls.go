package guest

import "github.com/rspstub/rspstub/guest/process"

// KERNEL32.dll's thread and fiber local storage exports: their handlers,
// listed by kernel32Exports in api_kernel32.go.

// k32_TlsFree implements TlsFree.
func k32_TlsFree(c *call) error {
	i := c.arg(0)
	if i >= 64 || !c.p.win32.tlsUsed[i] {
		return c.fail(errorInvalidParameter)
	}
	c.p.win32.tlsUsed[i] = false
	return c.ret(1)
}

// k32_TlsGetValue implements TlsGetValue.
func k32_TlsGetValue(c *call) error {
	i := uint32(c.arg(0))
	if i >= 64 {
		return c.fail(errorInvalidParameter)
	}
	v, err := c.p.mem.ReadU64(c.p.teb + process.TEBTLSSlots + 8*uint64(i))
	if err != nil {
		return err
	}
	c.setLastError(0)
	return c.ret(v)
}

// k32_TlsSetValue implements TlsSetValue.
func k32_TlsSetValue(c *call) error {
	i := uint32(c.arg(0))
	if i >= 64 {
		return c.fail(errorInvalidParameter)
	}
	c.w64(c.p.teb+process.TEBTLSSlots+8*uint64(i), c.arg(1))
	return c.ret(1)
}

// k32_FlsAlloc implements FlsAlloc.
func k32_FlsAlloc(c *call) error {
	c.p.win32.nextFLS++
	c.p.win32.fls[c.p.win32.nextFLS] = 0
	return c.ret(uint64(c.p.win32.nextFLS))
}

// k32_FlsGetValue implements FlsGetValue.
func k32_FlsGetValue(c *call) error { return c.ret(c.p.win32.fls[uint32(c.arg(0))]) }

// k32_FlsSetValue implements FlsSetValue.
func k32_FlsSetValue(c *call) error { c.p.win32.fls[uint32(c.arg(0))] = c.arg(1); return c.ret(1) }

// k32_FlsFree implements FlsFree.
func k32_FlsFree(c *call) error { delete(c.p.win32.fls, uint32(c.arg(0))); return c.ret(1) }

func tlsAlloc(c *call) error {
	for i := range c.p.win32.tlsUsed {
		if !c.p.win32.tlsUsed[i] {
			c.p.win32.tlsUsed[i] = true
			c.w64(c.p.teb+process.TEBTLSSlots+8*uint64(i), 0)
			return c.ret(uint64(i))
		}
	}
	c.setLastError(errorNotEnoughMemory)
	return c.ret(0xFFFFFFFF) // TLS_OUT_OF_INDEXES
}
