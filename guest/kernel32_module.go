package guest

import "github.com/rspstub/rspstub/guest/process"

// KERNEL32.dll's module exports: their handlers, listed by kernel32Exports in
// api_kernel32.go.

// k32_GetModuleHandleA implements GetModuleHandleA.
func k32_GetModuleHandleA(c *call) error { return getModuleHandle(c, c.str(0), c.arg(0) == 0) }

// k32_GetModuleHandleW implements GetModuleHandleW.
func k32_GetModuleHandleW(c *call) error { return getModuleHandle(c, c.wstr(0), c.arg(0) == 0) }

// k32_GetModuleHandleExA implements GetModuleHandleExA.
func k32_GetModuleHandleExA(c *call) error { return getModuleHandleEx(c, false) }

// k32_GetModuleHandleExW implements GetModuleHandleExW.
func k32_GetModuleHandleExW(c *call) error { return getModuleHandleEx(c, true) }

// k32_GetModuleFileNameA implements GetModuleFileNameA.
func k32_GetModuleFileNameA(c *call) error { return getModuleFileName(c, false) }

// k32_GetModuleFileNameW implements GetModuleFileNameW.
func k32_GetModuleFileNameW(c *call) error { return getModuleFileName(c, true) }

// k32_LoadLibraryA implements LoadLibraryA.
func k32_LoadLibraryA(c *call) error { return loadLibrary(c, c.str(0)) }

// k32_LoadLibraryW implements LoadLibraryW.
func k32_LoadLibraryW(c *call) error { return loadLibrary(c, c.wstr(0)) }

// k32_LoadLibraryExA implements LoadLibraryExA.
func k32_LoadLibraryExA(c *call) error { return loadLibrary(c, c.str(0)) }

// k32_LoadLibraryExW implements LoadLibraryExW.
func k32_LoadLibraryExW(c *call) error { return loadLibrary(c, c.wstr(0)) }

func (p *Process) moduleAt(addr uint64) *module {
	for _, m := range p.modules {
		if addr >= m.Base && addr < m.Base+m.Size {
			return m
		}
	}
	return nil
}

func getModuleHandle(c *call, name string, null bool) error {
	if null {
		return c.ret(c.p.exe.Base)
	}
	if m := c.p.findModule(name); m != nil {
		return c.ret(m.Base)
	}
	return c.fail(errorModNotFound)
}

func getModuleHandleEx(c *call, wide bool) error {
	flags := c.arg(0)
	var m *module
	switch {
	case flags&4 != 0: // GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS
		m = c.p.moduleAt(c.arg(1))
	case c.arg(1) == 0:
		m = c.p.exe
	case wide:
		m = c.p.findModule(c.wstr(1))
	default:
		m = c.p.findModule(c.str(1))
	}
	if m == nil {
		c.w64(c.arg(2), 0)
		return c.fail(errorModNotFound)
	}
	c.w64(c.arg(2), m.Base)
	return c.ret(1)
}

func getModuleFileName(c *call, wide bool) error {
	h, buf, size := c.arg(0), c.arg(1), c.arg(2)
	var m *module
	if h == 0 {
		m = c.p.exe
	} else {
		m = c.p.moduleAt(h)
	}
	if m == nil {
		return c.fail(errorModNotFound)
	}
	unit := uint64(1)
	var b []byte
	if wide {
		unit = 2
		b = process.UTF16Bytes(m.Path, false)
	} else {
		b = []byte(m.Path)
	}
	n := uint64(len(b)) / unit
	if size == 0 {
		return c.fail(errorInsufficientBuf)
	}
	if n >= size { // truncated, NUL-terminated
		b = b[:(size-1)*unit]
		c.wbytes(buf, append(b, make([]byte, unit)...))
		c.setLastError(errorInsufficientBuf)
		return c.ret(size)
	}
	c.wbytes(buf, append(b, make([]byte, unit)...))
	c.setLastError(0)
	return c.ret(n)
}

// loadLibrary loads a DLL at run time and runs its initialization as guest
// code before returning its base.
func loadLibrary(c *call, name string) error {
	p := c.p
	if name == "" {
		return c.fail(errorInvalidParameter)
	}
	if m := p.findModule(name); m != nil {
		return c.ret(m.Base)
	}
	before := len(p.modules)
	m, err := p.loadByName(name, 0)
	if err != nil {
		p.log.Info("LoadLibrary failed", "name", name, "err", err)
		return c.fail(errorModNotFound)
	}
	for _, nm := range p.modules[before:] {
		if err := p.linkModule(nm, true); err != nil {
			return err
		}
		if err := p.allocTLS(nm); err != nil {
			return err
		}
	}
	c.changed = len(p.modules) != before
	return c.callSeq(p.initCalls(0), func(c *call) error { return c.ret(m.Base) })
}

func getProcAddress(c *call) error {
	m := c.p.moduleAt(c.arg(0))
	if m == nil || m.Base != c.arg(0) {
		return c.fail(errorModNotFound)
	}
	var addr uint64
	var err error
	if c.arg(1) < 0x10000 {
		addr, err = c.p.resolveExport(m, "", uint32(c.arg(1)), true, false, 0)
	} else {
		addr, err = c.p.resolveExport(m, c.str(1), 0, false, false, 0)
	}
	if err != nil || addr == 0 {
		return c.fail(errorProcNotFound)
	}
	return c.ret(addr)
}
