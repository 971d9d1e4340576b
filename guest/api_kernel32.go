package guest

import (
	"fmt"
	"time"

	"github.com/rspstub/rspstub/guest/process"
)

// Standard handles (the pseudo-handles are package process's).
const (
	stdInputHandle  = 0x50
	stdOutputHandle = 0x54
	stdErrorHandle  = 0x58
)

// Win32 error codes used here.
const (
	errorSuccess          = 0
	errorFileNotFound     = 2
	errorNotEnoughMemory  = 8
	errorInvalidHandle    = 6
	errorInvalidParameter = 87
	errorInsufficientBuf  = 122
	errorModNotFound      = 126
	errorProcNotFound     = 127
	errorEnvVarNotFound   = 203
	errorInvalidAddress   = 487
)

// win32State is what the API layer remembers between calls.
type win32State struct {
	processHeap  uint64
	nextHeap     uint64
	nextHandle   uint64
	tlsUsed      [64]bool
	fls          map[uint32]uint64
	nextFLS      uint32
	nextTLSIndex int
	unhandled    uint64
	ticks        uint64
	cmdA, cmdW   uint64
	envVars      []string // current environment, "NAME=value"
	envInit      bool
	crt          map[*module]*crtState
	onexit       []uint64            // msvcrt _onexit/atexit list (process wide)
	onexitTables map[uint64][]uint64 // ucrt _onexit_t tables
	randSeed     uint32
	aligned      map[uint64]uint64
	start        time.Time
	tsc0         uint64 // the TSC at start (native.go's clock)
}

func (w *win32State) init() {
	w.fls = map[uint32]uint64{}
	w.crt = map[*module]*crtState{}
	w.onexitTables = map[uint64][]uint64{}
	w.aligned = map[uint64]uint64{}
	w.nextHeap = 0x10000
	w.randSeed = 1
	w.start = time.Now()
	w.tsc0 = rdtsc()
}

func (c *call) setLastError(v uint32) {
	if err := c.p.mem.WriteU32(c.p.teb+process.TEBLastError, v); err != nil && c.err == nil {
		c.err = err
	}
}

// fail sets the last error and returns 0.
func (c *call) fail(code uint32) error {
	c.setLastError(code)
	return c.ret(0)
}

func (c *call) str(i int) string {
	if c.arg(i) == 0 {
		return ""
	}
	s, err := c.p.mem.ReadCString(c.arg(i), 0)
	if err != nil && c.err == nil {
		c.err = err
	}
	return s
}

func (c *call) wstr(i int) string {
	if c.arg(i) == 0 {
		return ""
	}
	s, err := c.p.mem.ReadWString(c.arg(i), 0)
	if err != nil && c.err == nil {
		c.err = err
	}
	return s
}

func (c *call) w64(addr, v uint64) {
	if addr == 0 {
		return
	}
	if err := c.p.mem.WriteU64(addr, v); err != nil && c.err == nil {
		c.err = err
	}
}

func (c *call) w32(addr uint64, v uint32) {
	if addr == 0 {
		return
	}
	if err := c.p.mem.WriteU32(addr, v); err != nil && c.err == nil {
		c.err = err
	}
}

func (c *call) wbytes(addr uint64, b []byte) {
	if err := c.p.mem.Write(addr, b); err != nil && c.err == nil {
		c.err = err
	}
}

func (c *call) rbytes(addr, n uint64) []byte {
	if n > 1<<28 {
		if c.err == nil {
			c.err = fmt.Errorf("buffer of %#x bytes too large", n)
		}
		return nil
	}
	b := make([]byte, n)
	if err := c.p.mem.Read(addr, b); err != nil && c.err == nil {
		c.err = err
	}
	return b
}

func ret0(c *call) error    { return c.ret(0) }
func ret1(c *call) error    { return c.ret(1) }
func retArg0(c *call) error { return c.ret(c.arg(0)) }

// ntdllExports is ntdll.dll's export table: one line per export (its name,
// arity and handler; see apiExport).
var ntdllExports = []apiExport{
	{"LdrInitializeThunk", 0, ldrInitializeThunk},
	{"RtlExitUserThread", 1, func(c *call) error { return c.exit(int(int32(c.arg(0)))) }},
	{"RtlExitUserProcess", 1, func(c *call) error { return c.exit(int(int32(c.arg(0)))) }},
	{"NtTerminateProcess", 2, terminateProcess},
	{"RtlGetLastWin32Error", 0, getLastError},
	{"RtlSetLastWin32Error", 1, setLastError},
	{"RtlAllocateHeap", 3, heapAlloc},
	{"RtlFreeHeap", 3, heapFree},
	{"RtlEncodePointer", 1, retArg0},
	{"RtlDecodePointer", 1, retArg0},
	{"RtlInitializeSListHead", 1, initSListHead},
	{"RtlUnwindEx", 6, rtlUnwindEx},
	{"__C_specific_handler", 4, cSpecificHandler},
	{"RtlCaptureContext", 1, rtlCaptureContext},
	{"RtlLookupFunctionEntry", 3, rtlLookupFunctionEntry},
	{"RtlVirtualUnwind", 8, rtlVirtualUnwind},
}

func ntdllAPI() map[string]apiExport { return exportMap(ntdllExports) }

// kernel32Exports is KERNEL32.dll's export table: one line per export (its
// name, arity and handler), in groups named after the files that hold their
// implementations. Later lines win over earlier ones of the same name.
var kernel32Exports = []apiExport{
	// errors, process and threads (guest/kernel32_process.go)
	{"GetLastError", 0, getLastError},
	{"SetLastError", 1, setLastError},
	{"GetCurrentProcess", 0, k32_GetCurrentProcess},
	{"GetCurrentThread", 0, k32_GetCurrentThread},
	{"GetCurrentProcessId", 0, k32_GetCurrentProcessId},
	{"GetCurrentThreadId", 0, k32_GetCurrentThreadId},
	{"ExitProcess", 1, k32_ExitProcess},
	{"ExitThread", 1, k32_ExitThread},
	{"TerminateProcess", 2, terminateProcess},
	{"Sleep", 1, ret0},
	{"SleepEx", 2, ret0},
	{"SwitchToThread", 0, ret0},
	// time (guest/kernel32_time.go)
	{"GetTickCount", 0, k32_GetTickCount},
	{"GetTickCount64", 0, k32_GetTickCount64},
	{"QueryPerformanceCounter", 1, k32_QueryPerformanceCounter},
	{"QueryPerformanceFrequency", 1, k32_QueryPerformanceFrequency},
	{"GetSystemTimeAsFileTime", 1, k32_GetSystemTimeAsFileTime},
	{"GetSystemTimePreciseAsFileTime", 1, k32_GetSystemTimePreciseAsFileTime},
	// synchronization (guest/kernel32_sync.go)
	{"InitializeCriticalSection", 1, initCS},
	{"InitializeCriticalSectionAndSpinCount", 2, k32_InitializeCriticalSectionAndSpinCount},
	{"InitializeCriticalSectionEx", 3, k32_InitializeCriticalSectionEx},
	{"EnterCriticalSection", 1, ret0}, // one thread: never contended
	{"LeaveCriticalSection", 1, ret0},
	{"TryEnterCriticalSection", 1, ret1},
	{"DeleteCriticalSection", 1, ret0},
	{"InitializeSRWLock", 1, k32_InitializeSRWLock},
	{"AcquireSRWLockExclusive", 1, ret0},
	{"ReleaseSRWLockExclusive", 1, ret0},
	{"AcquireSRWLockShared", 1, ret0},
	{"ReleaseSRWLockShared", 1, ret0},
	{"InitializeConditionVariable", 1, k32_InitializeConditionVariable},
	{"WakeAllConditionVariable", 1, ret0},
	{"WakeConditionVariable", 1, ret0},
	// thread and fiber local storage (guest/kernel32_tls.go)
	{"TlsAlloc", 0, tlsAlloc},
	{"TlsFree", 1, k32_TlsFree},
	{"TlsGetValue", 1, k32_TlsGetValue},
	{"TlsSetValue", 2, k32_TlsSetValue},
	{"FlsAlloc", 1, k32_FlsAlloc},
	{"FlsGetValue", 1, k32_FlsGetValue},
	{"FlsSetValue", 2, k32_FlsSetValue},
	{"FlsFree", 1, k32_FlsFree},
	// memory (guest/kernel32_memory.go)
	{"VirtualAlloc", 4, virtualAlloc},
	{"VirtualFree", 3, virtualFree},
	{"VirtualProtect", 4, virtualProtect},
	{"VirtualQuery", 3, virtualQuery},
	{"GetProcessHeap", 0, k32_GetProcessHeap},
	{"GetProcessHeaps", 2, k32_GetProcessHeaps},
	{"HeapCreate", 3, k32_HeapCreate},
	{"HeapDestroy", 1, ret1},
	{"HeapValidate", 3, ret1},
	{"HeapSetInformation", 4, ret1},
	{"HeapAlloc", 3, heapAlloc},
	{"HeapFree", 3, heapFree},
	{"HeapReAlloc", 4, k32_HeapReAlloc},
	{"HeapSize", 3, k32_HeapSize},
	{"LocalAlloc", 2, k32_LocalAlloc},
	{"LocalFree", 1, k32_LocalFree},
	{"GlobalAlloc", 2, k32_GlobalAlloc},
	{"GlobalFree", 1, k32_GlobalFree},
	// modules (guest/kernel32_module.go)
	{"GetModuleHandleA", 1, k32_GetModuleHandleA},
	{"GetModuleHandleW", 1, k32_GetModuleHandleW},
	{"GetModuleHandleExA", 3, k32_GetModuleHandleExA},
	{"GetModuleHandleExW", 3, k32_GetModuleHandleExW},
	{"GetModuleFileNameA", 3, k32_GetModuleFileNameA},
	{"GetModuleFileNameW", 3, k32_GetModuleFileNameW},
	{"LoadLibraryA", 1, k32_LoadLibraryA},
	{"LoadLibraryW", 1, k32_LoadLibraryW},
	{"LoadLibraryExA", 3, k32_LoadLibraryExA},
	{"LoadLibraryExW", 3, k32_LoadLibraryExW},
	{"FreeLibrary", 1, ret1},
	{"GetProcAddress", 2, getProcAddress},
	// files and console (guest/kernel32_console.go)
	{"GetStdHandle", 1, k32_GetStdHandle},
	{"SetStdHandle", 2, ret1},
	{"WriteFile", 5, writeFile},
	{"WriteConsoleA", 5, writeFile},
	{"WriteConsoleW", 5, writeConsoleW},
	{"ReadFile", 5, k32_ReadFile},
	{"GetConsoleMode", 2, k32_GetConsoleMode},
	{"SetConsoleMode", 2, k32_SetConsoleMode},
	{"GetFileType", 1, getFileType},
	{"FlushFileBuffers", 1, ret1},
	{"CloseHandle", 1, ret1},
	{"GetConsoleOutputCP", 0, k32_GetConsoleOutputCP},
	{"GetConsoleCP", 0, k32_GetConsoleCP},
	{"SetConsoleOutputCP", 1, ret1},
	{"SetConsoleCP", 1, ret1},
	{"SetConsoleCtrlHandler", 2, ret1},
	// code pages (guest/kernel32_codepage.go)
	{"GetACP", 0, k32_GetACP},
	{"GetOEMCP", 0, k32_GetOEMCP},
	{"IsValidCodePage", 1, ret1},
	{"GetCPInfo", 2, k32_GetCPInfo},
	{"IsDBCSLeadByte", 1, ret0},
	{"IsDBCSLeadByteEx", 2, ret0},
	{"MultiByteToWideChar", 6, multiByteToWideChar},
	{"WideCharToMultiByte", 8, wideCharToMultiByte},
	// command line, environment and startup (guest/kernel32_environment.go)
	{"GetCommandLineA", 0, k32_GetCommandLineA},
	{"GetCommandLineW", 0, k32_GetCommandLineW},
	{"GetEnvironmentStrings", 0, k32_GetEnvironmentStrings},
	{"GetEnvironmentStringsA", 0, k32_GetEnvironmentStringsA},
	{"GetEnvironmentStringsW", 0, k32_GetEnvironmentStringsW},
	{"FreeEnvironmentStringsA", 1, k32_FreeEnvironmentStringsA},
	{"FreeEnvironmentStringsW", 1, k32_FreeEnvironmentStringsW},
	{"GetEnvironmentVariableA", 3, k32_GetEnvironmentVariableA},
	{"GetEnvironmentVariableW", 3, k32_GetEnvironmentVariableW},
	{"SetEnvironmentVariableA", 2, k32_SetEnvironmentVariableA},
	{"SetEnvironmentVariableW", 2, k32_SetEnvironmentVariableW},
	{"GetStartupInfoA", 1, getStartupInfo},
	{"GetStartupInfoW", 1, getStartupInfo},
	// system information and exceptions (guest/kernel32_system.go)
	{"SetUnhandledExceptionFilter", 1, k32_SetUnhandledExceptionFilter},
	{"UnhandledExceptionFilter", 1, ret0},
	{"IsDebuggerPresent", 0, ret0},
	{"IsProcessorFeaturePresent", 1, isProcessorFeaturePresent},
	{"GetSystemInfo", 1, getSystemInfo},
	{"GetNativeSystemInfo", 1, getSystemInfo},
	{"GetVersion", 0, k32_GetVersion},
	{"InitializeSListHead", 1, initSListHead},
	{"EncodePointer", 1, retArg0},
	{"DecodePointer", 1, retArg0},
	{"SetErrorMode", 1, ret0},
	{"GetErrorMode", 0, ret0},
	{"AreFileApisANSI", 0, ret1},
	{"OutputDebugStringA", 1, k32_OutputDebugStringA},
	{"OutputDebugStringW", 1, k32_OutputDebugStringW},
	{"GetCurrentDirectoryA", 2, k32_GetCurrentDirectoryA},
	{"GetCurrentDirectoryW", 2, k32_GetCurrentDirectoryW},
	// kernel objects (guest/kernel32_sync.go): one thread never waits, so
	// every wait succeeds at once
	{"CreateSemaphoreA", 4, newHandle},
	{"CreateSemaphoreW", 4, newHandle},
	{"CreateSemaphoreExW", 6, newHandle},
	{"CreateEventA", 4, newHandle},
	{"CreateEventW", 4, newHandle},
	{"CreateEventExW", 4, newHandle},
	{"CreateMutexA", 3, newHandle},
	{"CreateMutexW", 3, newHandle},
	{"CreateMutexExW", 4, newHandle},
	{"ReleaseSemaphore", 3, ret1},
	{"SetEvent", 1, ret1},
	{"ResetEvent", 1, ret1},
	{"ReleaseMutex", 1, ret1},
	{"WaitForSingleObject", 2, ret0}, // WAIT_OBJECT_0
	{"WaitForSingleObjectEx", 3, ret0},
	{"WaitForMultipleObjects", 4, ret0},
	{"DuplicateHandle", 7, k32_DuplicateHandle},
	// exceptions and unwinding (guest/seh.go)
	{"RaiseException", 4, raiseException},
	{"__C_specific_handler", 4, cSpecificHandler},
	{"RtlUnwindEx", 6, rtlUnwindEx},
	{"RtlCaptureContext", 1, rtlCaptureContext},
	{"RtlLookupFunctionEntry", 3, rtlLookupFunctionEntry},
	{"RtlVirtualUnwind", 8, rtlVirtualUnwind},
}

func kernel32API() map[string]apiExport { return exportMap(kernel32Exports) }

// copyOutString writes s (NUL-terminated) into a guest buffer of size
// units; it returns the length without the NUL, or the needed size when the
// buffer is too small (GetCurrentDirectory convention).
func copyOutString(c *call, s string, buf, size uint64, wide bool) error {
	var b []byte
	if wide {
		b = process.UTF16Bytes(s, true)
	} else {
		b = append([]byte(s), 0)
	}
	unit := uint64(1)
	if wide {
		unit = 2
	}
	need := uint64(len(b)) / unit
	if size < need {
		return c.ret(need)
	}
	c.wbytes(buf, b)
	return c.ret(need - 1)
}
