package guest

// KERNEL32.dll's memory exports: their handlers, listed by kernel32Exports in
// api_kernel32.go.

// k32_GetProcessHeap implements GetProcessHeap.
func k32_GetProcessHeap(c *call) error { return c.ret(c.p.win32.processHeap) }

// k32_GetProcessHeaps implements GetProcessHeaps.
func k32_GetProcessHeaps(c *call) error {
	if c.arg(0) >= 1 {
		c.w64(c.arg(1), c.p.win32.processHeap)
	}
	return c.ret(1)
}

// k32_HeapCreate implements HeapCreate.
func k32_HeapCreate(c *call) error {
	c.p.win32.nextHeap += 0x10000
	return c.ret(c.p.win32.processHeap + c.p.win32.nextHeap)
}

// k32_HeapReAlloc implements HeapReAlloc.
func k32_HeapReAlloc(c *call) error {
	a, err := c.p.heap.realloc(c.arg(2), c.arg(3))
	if err != nil {
		return err
	}
	return c.ret(a)
}

// k32_HeapSize implements HeapSize.
func k32_HeapSize(c *call) error {
	n, ok := c.p.heap.size(c.arg(2))
	if !ok {
		return c.ret(^uint64(0))
	}
	return c.ret(n)
}

// k32_LocalAlloc implements LocalAlloc.
func k32_LocalAlloc(c *call) error {
	a, err := c.p.heap.alloc(c.arg(1), c.arg(0)&0x40 != 0)
	if err != nil {
		return err
	}
	return c.ret(a)
}

// k32_LocalFree implements LocalFree.
func k32_LocalFree(c *call) error { c.p.heap.release(c.arg(0)); return c.ret(0) }

// k32_GlobalAlloc implements GlobalAlloc.
func k32_GlobalAlloc(c *call) error {
	a, err := c.p.heap.alloc(c.arg(1), c.arg(0)&0x40 != 0)
	if err != nil {
		return err
	}
	return c.ret(a)
}

// k32_GlobalFree implements GlobalFree.
func k32_GlobalFree(c *call) error { c.p.heap.release(c.arg(0)); return c.ret(0) }
