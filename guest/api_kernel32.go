package guest

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/internal/arch"
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

// ldrInitializeThunk is the thread's first instruction: it runs the TLS
// callbacks and DllMain of every real DLL (in initialization order), then
// the program's TLS callbacks, all as guest code, and enters
// RtlUserThreadStart(entry, PEB).
func ldrInitializeThunk(c *call) error {
	p := c.p
	calls := p.initCalls(1)
	for _, cb := range p.exe.tlsCalls {
		calls = append(calls, guestCall{fn: cb, args: []uint64{p.exe.Base, 1, 0}})
	}
	return c.callSeq(calls, func(c *call) error {
		ntdll := p.findModule("ntdll.dll")
		c.jumped = true
		c.jumpRIP = ntdll.Base + uint64(ntdll.synth.codeRVA["RtlUserThreadStart"])
		c.jumpRSP = p.stackBase - 8
		if err := p.m.SetReg(arch.RCX, p.exe.entry); err != nil {
			return err
		}
		return p.m.SetReg(arch.RDX, p.peb)
	})
}

// initCalls returns the DLL_PROCESS_ATTACH calls of every DLL not yet
// initialized, in initialization order. reserved is DllMain's lpReserved:
// non-zero for static loads, 0 for LoadLibrary.
func (p *Process) initCalls(reserved uint64) []guestCall {
	var calls []guestCall
	for _, m := range p.initOrder {
		if m.inited || m.synth != nil {
			m.inited = true
			continue
		}
		m.inited = true
		for _, cb := range m.tlsCalls {
			calls = append(calls, guestCall{fn: cb, args: []uint64{m.Base, 1, 0}})
		}
		if m.entry != 0 {
			name := m.Name
			calls = append(calls, guestCall{fn: m.entry, args: []uint64{m.Base, 1, reserved}, then: func(c *call, ret uint64) error {
				if uint32(ret) == 0 {
					c.p.log.Warn("DllMain failed", "dll", name)
					return c.exit(int(int32(-1073741502))) // STATUS_DLL_INIT_FAILED
				}
				return nil
			}})
		}
	}
	return calls
}

func terminateProcess(c *call) error {
	h := c.arg(0)
	if h == process.CurrentProcessHandle || h == 0 {
		return c.exit(int(int32(c.arg(1))))
	}
	return c.fail(errorInvalidHandle)
}

func getLastError(c *call) error {
	v, err := c.p.mem.ReadU32(c.p.teb + process.TEBLastError)
	if err != nil {
		return err
	}
	return c.ret(uint64(v))
}

func setLastError(c *call) error {
	c.setLastError(uint32(c.arg(0)))
	return c.ret(0)
}

func initSListHead(c *call) error {
	c.wbytes(c.arg(0), make([]byte, 16))
	return c.ret(0)
}

func heapAlloc(c *call) error {
	a, err := c.p.heap.alloc(c.arg(2), c.arg(1)&0x8 != 0)
	if err != nil {
		return err
	}
	return c.ret(a)
}

func heapFree(c *call) error {
	if c.arg(2) == 0 {
		return c.ret(1)
	}
	if !c.p.heap.release(c.arg(2)) {
		c.p.log.Warn("HeapFree of a pointer that is not a live block", "ptr", fmt.Sprintf("%#x", c.arg(2)))
		return c.fail(errorInvalidParameter)
	}
	return c.ret(1)
}

// VirtualEpoch is the wall-clock time of a process start under a virtual
// clock (Config.Clock): 2026-01-01 00:00:00 UTC.
var VirtualEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// since is the time since the process started.
func (p *Process) since() time.Duration {
	if p.cfg.Clock != nil {
		return p.cfg.Clock()
	}
	return time.Since(p.win32.start)
}

// now is the wall-clock time.
func (p *Process) now() time.Time {
	if p.cfg.Clock != nil {
		return VirtualEpoch.Add(p.cfg.Clock())
	}
	return time.Now()
}

func (p *Process) tick() uint64 {
	p.win32.ticks++
	if p.cfg.Clock != nil {
		return uint64(p.cfg.Clock().Milliseconds())
	}
	// The native GetTickCount's formula (native.go), so both agree.
	if hz := tscHz(); hz > 0 {
		hi, lo := bits.Mul64(rdtsc()-p.win32.tsc0, uint64(1000*4294967296/hz))
		return hi<<32 | lo>>32
	}
	return uint64(time.Since(p.win32.start).Milliseconds())
}

func (p *Process) fileTimeNow() uint64 {
	return uint64(p.now().UnixNano()/100) + 116444736000000000
}

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

func initCS(c *call) error {
	// CRITICAL_SECTION: DebugInfo, LockCount=-1, RecursionCount, OwningThread, LockSemaphore, SpinCount.
	b := make([]byte, 40)
	binary.LittleEndian.PutUint32(b[8:], 0xFFFFFFFF)
	c.wbytes(c.arg(0), b)
	return c.ret(0)
}

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

// pageProtToPerm maps a page protection (PAGE_*) to the emulator's.
func pageProtToPerm(prot uint32) (arch.Perm, bool) {
	switch prot &^ (process.PAGE_GUARD | process.PAGE_NOCACHE | process.PAGE_WRITECOMBINE) {
	case process.PAGE_NOACCESS:
		return arch.PermNone, true
	case process.PAGE_READONLY:
		return arch.PermRead, true
	case process.PAGE_READWRITE, process.PAGE_WRITECOPY:
		return arch.PermRW, true
	case process.PAGE_EXECUTE:
		return arch.PermExec, true
	case process.PAGE_EXECUTE_READ:
		return arch.PermRX, true
	case process.PAGE_EXECUTE_READWRITE, process.PAGE_EXECUTE_WRITECOPY:
		return arch.PermRWX, true
	}
	return 0, false
}

func permToPageProt(p arch.Perm) uint32 {
	switch p {
	case arch.PermNone:
		return process.PAGE_NOACCESS
	case arch.PermRead:
		return process.PAGE_READONLY
	case arch.PermRW, arch.PermWrite:
		return process.PAGE_READWRITE
	case arch.PermExec:
		return process.PAGE_EXECUTE
	case arch.PermRX:
		return process.PAGE_EXECUTE_READ
	default:
		return process.PAGE_EXECUTE_READWRITE
	}
}

func virtualAlloc(c *call) error {
	p := c.p
	addr, size, typ := c.arg(0), c.arg(1), uint32(c.arg(2))
	perm, ok := pageProtToPerm(uint32(c.arg(3)))
	if !ok || size == 0 || size > 1<<36 {
		return c.fail(errorInvalidParameter)
	}
	if addr != 0 {
		if a := p.as.find(addr); a != nil && typ&process.MEM_RESERVE == 0 {
			// Commit inside an existing reservation.
			if process.PageUp(addr+size) > a.base+a.size {
				return c.fail(errorInvalidAddress)
			}
			if err := p.as.protect(addr, size, perm); err != nil {
				return c.fail(errorInvalidAddress)
			}
			for pg := process.PageDown(addr); pg < process.PageUp(addr+size); pg += process.PageSize {
				a.committed[(pg-a.base)/process.PageSize] = true
			}
			return c.ret(process.PageDown(addr))
		}
		addr &^= 0xFFFF
		if !p.as.isFree(addr, process.PageUp(size)) {
			return c.fail(errorInvalidAddress)
		}
	} else {
		var err error
		addr, err = p.as.findFree(size, virtualHint, 0x10000, process.UserLimit)
		if err != nil {
			return c.fail(errorNotEnoughMemory)
		}
	}
	mapPerm := perm
	if typ&process.MEM_COMMIT == 0 {
		mapPerm = arch.PermNone
	}
	a, err := p.as.mapRange(addr, size, mapPerm, "VirtualAlloc")
	if err != nil {
		return c.fail(errorNotEnoughMemory)
	}
	a.virtual = true
	if typ&process.MEM_COMMIT == 0 {
		for i := range a.committed {
			a.committed[i] = false
		}
	}
	a.initPerm = perm
	return c.ret(addr)
}

func virtualFree(c *call) error {
	a := c.p.as.find(c.arg(0))
	if a == nil || !a.virtual {
		return c.fail(errorInvalidAddress)
	}
	if uint32(c.arg(2))&process.MEM_RELEASE != 0 {
		if c.arg(0) != a.base {
			return c.fail(errorInvalidParameter)
		}
		if err := c.p.as.unmapAlloc(a); err != nil {
			return c.fail(errorInvalidAddress)
		}
		return c.ret(1)
	}
	// MEM_DECOMMIT
	if err := c.p.as.protect(c.arg(0), c.arg(1), arch.PermNone); err != nil {
		return c.fail(errorInvalidAddress)
	}
	return c.ret(1)
}

func virtualProtect(c *call) error {
	addr, size := c.arg(0), c.arg(1)
	perm, ok := pageProtToPerm(uint32(c.arg(2)))
	if !ok {
		return c.fail(errorInvalidParameter)
	}
	a := c.p.as.find(addr)
	if a == nil {
		return c.fail(errorInvalidAddress)
	}
	old := a.perms[(process.PageDown(addr)-a.base)/process.PageSize]
	if err := c.p.as.protect(addr, size, perm); err != nil {
		return c.fail(errorInvalidAddress)
	}
	c.w32(c.arg(3), permToPageProt(old))
	return c.ret(1)
}

// virtualQuery fills a MEMORY_BASIC_INFORMATION (48 bytes):
// BaseAddress, AllocationBase, AllocationProtect(+pad), RegionSize, State,
// Protect, Type.
func virtualQuery(c *call) error {
	addr, buf, n := c.arg(0), c.arg(1), c.arg(2)
	if n < 48 {
		return c.fail(errorInsufficientBuf)
	}
	p := c.p
	b := make([]byte, 48)
	le := binary.LittleEndian
	pg := process.PageDown(addr)
	if a := p.as.find(addr); a != nil {
		i := (pg - a.base) / process.PageSize
		j := i
		for j < uint64(len(a.perms)) && a.perms[j] == a.perms[i] && a.committed[j] == a.committed[i] {
			j++
		}
		le.PutUint64(b[0:], pg)
		le.PutUint64(b[8:], a.base)
		le.PutUint32(b[16:], permToPageProt(a.initPerm))
		le.PutUint64(b[24:], (j-i)*process.PageSize)
		typ := uint32(process.MEM_PRIVATE)
		if p.moduleAt(addr) != nil {
			typ = process.MEM_IMAGE
		}
		if a.committed[i] {
			le.PutUint32(b[32:], process.MEM_COMMIT)
			le.PutUint32(b[36:], permToPageProt(a.perms[i]))
		} else {
			le.PutUint32(b[32:], process.MEM_RESERVE)
		}
		le.PutUint32(b[40:], typ)
	} else {
		if addr >= process.UserLimit {
			return c.fail(errorInvalidParameter)
		}
		// A free range up to the next allocation.
		end := uint64(process.UserLimit)
		for _, a := range p.as.allocs {
			if a.base > pg {
				end = a.base
				break
			}
		}
		le.PutUint64(b[0:], pg)
		le.PutUint64(b[24:], end-pg)
		le.PutUint32(b[32:], process.MEM_FREE)
		le.PutUint32(b[36:], process.PAGE_NOACCESS)
	}
	c.wbytes(buf, b)
	return c.ret(48)
}

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

func multiByteToWideChar(c *call) error {
	cp, src, srcLen, dst, dstLen := uint32(c.arg(0)), c.arg(2), int32(c.arg(3)), c.arg(4), int32(c.arg(5))
	var b []byte
	if srcLen < 0 {
		s, err := c.p.mem.ReadCString(src, 0)
		if err != nil {
			return err
		}
		b = append([]byte(s), 0)
	} else {
		b = c.rbytes(src, uint64(srcLen))
	}
	var runes []rune
	if cp == 65001 {
		for len(b) > 0 {
			r, n := utf8.DecodeRune(b)
			runes = append(runes, r)
			b = b[n:]
		}
	} else {
		for _, x := range b {
			runes = append(runes, rune(x))
		}
	}
	u := utf16.Encode(runes)
	if dstLen == 0 {
		return c.ret(uint64(len(u)))
	}
	if int(dstLen) < len(u) {
		return c.fail(errorInsufficientBuf)
	}
	out := make([]byte, 2*len(u))
	for i, v := range u {
		binary.LittleEndian.PutUint16(out[2*i:], v)
	}
	c.wbytes(dst, out)
	return c.ret(uint64(len(u)))
}

func wideCharToMultiByte(c *call) error {
	cp, src, srcLen, dst, dstLen := uint32(c.arg(0)), c.arg(2), int32(c.arg(3)), c.arg(4), int32(c.arg(5))
	var s string
	var err error
	if srcLen < 0 {
		s, err = c.p.mem.ReadWString(src, 0)
		s += "\x00"
	} else {
		s, err = c.p.mem.ReadWStringN(src, int(srcLen))
	}
	if err != nil {
		return err
	}
	var out []byte
	if cp == 65001 {
		out = []byte(s)
	} else {
		for _, r := range s {
			if r > 0xFF {
				r = '?'
			}
			out = append(out, byte(r))
		}
	}
	if dstLen == 0 {
		return c.ret(uint64(len(out)))
	}
	if int(dstLen) < len(out) {
		return c.fail(errorInsufficientBuf)
	}
	c.wbytes(dst, out)
	return c.ret(uint64(len(out)))
}

func (p *Process) envList() []string {
	if !p.win32.envInit {
		p.win32.envVars = append([]string(nil), p.environment()...)
		p.win32.envInit = true
	}
	return p.win32.envVars
}

func getEnvironmentStrings(c *call, wide bool) error {
	var b []byte
	for _, e := range c.p.envList() {
		if wide {
			b = append(b, process.UTF16Bytes(e, true)...)
		} else {
			b = append(append(b, e...), 0)
		}
	}
	if wide {
		b = append(b, 0, 0, 0, 0)
	} else {
		b = append(b, 0, 0)
	}
	a, err := c.p.heap.allocBytes(b)
	if err != nil {
		return err
	}
	return c.ret(a)
}

func (p *Process) getenv(name string) (string, bool) {
	for _, e := range p.envList() {
		if k, v, ok := strings.Cut(e, "="); ok && strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

func getEnvironmentVariable(c *call, name string, wide bool) error {
	v, ok := c.p.getenv(name)
	if !ok {
		return c.fail(errorEnvVarNotFound)
	}
	c.setLastError(0)
	return copyOutString(c, v, c.arg(1), c.arg(2), wide)
}

func setEnvironmentVariable(c *call, name, value string, del bool) error {
	p := c.p
	env := p.envList()
	out := env[:0:0]
	for _, e := range env {
		if k, _, ok := strings.Cut(e, "="); ok && strings.EqualFold(k, name) {
			continue
		}
		out = append(out, e)
	}
	if !del {
		out = append(out, name+"="+value)
	}
	p.win32.envVars = out
	return c.ret(1)
}

// getStartupInfo fills a STARTUPINFO (104 bytes): cb, then zeroes, with
// the standard handles at 0x50/0x58/0x60.
func getStartupInfo(c *call) error {
	b := make([]byte, 104)
	binary.LittleEndian.PutUint32(b, 104)
	binary.LittleEndian.PutUint64(b[0x50:], stdInputHandle)
	binary.LittleEndian.PutUint64(b[0x58:], stdOutputHandle)
	binary.LittleEndian.PutUint64(b[0x60:], stdErrorHandle)
	c.wbytes(c.arg(0), b)
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
