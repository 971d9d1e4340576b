package guest

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
