package wine

import "fmt"

// NTSTATUS values the kernel returns, with their ntstatus.h names.
type ntstatus uint32

const (
	STATUS_SUCCESS                  ntstatus = 0x00000000
	STATUS_WAIT_0                   ntstatus = 0x00000000
	STATUS_ABANDONED_WAIT_0         ntstatus = 0x00000080
	STATUS_USER_APC                 ntstatus = 0x000000C0
	STATUS_ALERTED                  ntstatus = 0x00000101
	STATUS_TIMEOUT                  ntstatus = 0x00000102
	STATUS_PENDING                  ntstatus = 0x00000103
	STATUS_MORE_ENTRIES             ntstatus = 0x00000105
	STATUS_OBJECT_NAME_EXISTS       ntstatus = 0x40000000
	STATUS_IMAGE_NOT_AT_BASE        ntstatus = 0x40000003
	STATUS_BUFFER_OVERFLOW          ntstatus = 0x80000005
	STATUS_NO_MORE_FILES            ntstatus = 0x80000006
	STATUS_NO_MORE_ENTRIES          ntstatus = 0x8000001A
	STATUS_GUARD_PAGE_VIOLATION     ntstatus = 0x80000001
	STATUS_BREAKPOINT               ntstatus = 0x80000003
	STATUS_SINGLE_STEP              ntstatus = 0x80000004
	STATUS_UNSUCCESSFUL             ntstatus = 0xC0000001
	STATUS_NOT_IMPLEMENTED          ntstatus = 0xC0000002
	STATUS_INVALID_INFO_CLASS       ntstatus = 0xC0000003
	STATUS_INFO_LENGTH_MISMATCH     ntstatus = 0xC0000004
	STATUS_ACCESS_VIOLATION         ntstatus = 0xC0000005
	STATUS_INVALID_HANDLE           ntstatus = 0xC0000008
	STATUS_INVALID_CID              ntstatus = 0xC000000B
	STATUS_INVALID_PARAMETER        ntstatus = 0xC000000D
	STATUS_NO_SUCH_FILE             ntstatus = 0xC000000F
	STATUS_INVALID_DEVICE_REQUEST   ntstatus = 0xC0000010
	STATUS_END_OF_FILE              ntstatus = 0xC0000011
	STATUS_NO_MEMORY                ntstatus = 0xC0000017
	STATUS_CONFLICTING_ADDRESSES    ntstatus = 0xC0000018
	STATUS_NOT_MAPPED_VIEW          ntstatus = 0xC0000019
	STATUS_UNABLE_TO_FREE_VM        ntstatus = 0xC000001A
	STATUS_ILLEGAL_INSTRUCTION      ntstatus = 0xC000001D
	STATUS_INVALID_VIEW_SIZE        ntstatus = 0xC000001F
	STATUS_ALREADY_COMMITTED        ntstatus = 0xC0000021
	STATUS_ACCESS_DENIED            ntstatus = 0xC0000022
	STATUS_BUFFER_TOO_SMALL         ntstatus = 0xC0000023
	STATUS_OBJECT_TYPE_MISMATCH     ntstatus = 0xC0000024
	STATUS_NONCONTINUABLE_EXCEPTION ntstatus = 0xC0000025
	STATUS_OBJECT_NAME_INVALID      ntstatus = 0xC0000033
	STATUS_OBJECT_NAME_NOT_FOUND    ntstatus = 0xC0000034
	STATUS_OBJECT_NAME_COLLISION    ntstatus = 0xC0000035
	STATUS_OBJECT_PATH_INVALID      ntstatus = 0xC0000039
	STATUS_OBJECT_PATH_NOT_FOUND    ntstatus = 0xC000003A
	STATUS_OBJECT_PATH_SYNTAX_BAD   ntstatus = 0xC000003B
	STATUS_SHARING_VIOLATION        ntstatus = 0xC0000043
	STATUS_EAS_NOT_SUPPORTED        ntstatus = 0xC000004F
	STATUS_MUTANT_NOT_OWNED         ntstatus = 0xC0000046
	STATUS_SEMAPHORE_LIMIT_EXCEEDED ntstatus = 0xC0000047
	STATUS_SECTION_NOT_IMAGE        ntstatus = 0xC0000049
	STATUS_SUSPEND_COUNT_EXCEEDED   ntstatus = 0xC000004A
	STATUS_THREAD_IS_TERMINATING    ntstatus = 0xC000004B
	STATUS_INVALID_PAGE_PROTECTION  ntstatus = 0xC0000045
	STATUS_DELETE_PENDING           ntstatus = 0xC0000056
	STATUS_NO_TOKEN                 ntstatus = 0xC000007C
	STATUS_INVALID_IMAGE_FORMAT     ntstatus = 0xC000007B
	STATUS_DISK_FULL                ntstatus = 0xC000007F
	STATUS_INTEGER_DIVIDE_BY_ZERO   ntstatus = 0xC0000094
	STATUS_PRIVILEGED_INSTRUCTION   ntstatus = 0xC0000096
	STATUS_MEDIA_WRITE_PROTECTED    ntstatus = 0xC00000A2
	STATUS_INSTANCE_NOT_AVAILABLE   ntstatus = 0xC00000AB
	STATUS_PIPE_BROKEN              ntstatus = 0xC00000B0
	STATUS_FILE_IS_A_DIRECTORY      ntstatus = 0xC00000BA
	STATUS_NOT_SUPPORTED            ntstatus = 0xC00000BB
	STATUS_INVALID_PARAMETER_1      ntstatus = 0xC00000EF
	STATUS_INVALID_PARAMETER_2      ntstatus = 0xC00000F0
	STATUS_STACK_OVERFLOW           ntstatus = 0xC00000FD
	STATUS_DIRECTORY_NOT_EMPTY      ntstatus = 0xC0000101
	STATUS_NOT_A_DIRECTORY          ntstatus = 0xC0000103
	STATUS_NAME_TOO_LONG            ntstatus = 0xC0000106
	STATUS_CANNOT_DELETE            ntstatus = 0xC0000121
	STATUS_FILE_CLOSED              ntstatus = 0xC0000128
	STATUS_INVALID_DEVICE_STATE     ntstatus = 0xC0000184
	STATUS_DLL_NOT_FOUND            ntstatus = 0xC0000135
	STATUS_NOT_FOUND                ntstatus = 0xC0000225
	STATUS_INVALID_ADDRESS          ntstatus = 0xC0000141
	STATUS_INVALID_LEVEL            ntstatus = 0xC0000148
	STATUS_PROCESS_IS_TERMINATING   ntstatus = 0xC000010A
	STATUS_INVALID_SYSTEM_SERVICE   ntstatus = 0xC000001C
	STATUS_NOT_SAME_DEVICE          ntstatus = 0xC00000D4
	STATUS_HANDLE_NOT_CLOSABLE      ntstatus = 0xC0000235
	STATUS_NOT_ALL_ASSIGNED         ntstatus = 0x00000106
	STATUS_OBJECT_NAME_EXISTS_OK    ntstatus = STATUS_OBJECT_NAME_EXISTS
)

// Exception codes (not returned by system calls, but raised).
const (
	EXCEPTION_ACCESS_VIOLATION     = 0xC0000005
	EXCEPTION_BREAKPOINT           = 0x80000003
	EXCEPTION_SINGLE_STEP          = 0x80000004
	EXCEPTION_ILLEGAL_INSTRUCTION  = 0xC000001D
	EXCEPTION_INT_DIVIDE_BY_ZERO   = 0xC0000094
	EXCEPTION_PRIV_INSTRUCTION     = 0xC0000096
	EXCEPTION_STACK_OVERFLOW       = 0xC00000FD
	EXCEPTION_GUARD_PAGE           = 0x80000001
	EXCEPTION_NONCONTINUABLE       = 1
	EXCEPTION_INT_OVERFLOW         = 0xC0000095
	EXCEPTION_FLT_DIVIDE_BY_ZERO   = 0xC000008E
	EXCEPTION_FLT_INVALID_OPERATON = 0xC0000090
)

var statusNames = map[ntstatus]string{
	STATUS_SUCCESS: "STATUS_SUCCESS", STATUS_TIMEOUT: "STATUS_TIMEOUT", STATUS_PENDING: "STATUS_PENDING",
	STATUS_USER_APC: "STATUS_USER_APC", STATUS_ALERTED: "STATUS_ALERTED", STATUS_ABANDONED_WAIT_0: "STATUS_ABANDONED_WAIT_0",
	STATUS_MORE_ENTRIES: "STATUS_MORE_ENTRIES", STATUS_OBJECT_NAME_EXISTS: "STATUS_OBJECT_NAME_EXISTS",
	STATUS_IMAGE_NOT_AT_BASE: "STATUS_IMAGE_NOT_AT_BASE", STATUS_BUFFER_OVERFLOW: "STATUS_BUFFER_OVERFLOW",
	STATUS_NO_MORE_FILES: "STATUS_NO_MORE_FILES", STATUS_NO_MORE_ENTRIES: "STATUS_NO_MORE_ENTRIES",
	STATUS_UNSUCCESSFUL: "STATUS_UNSUCCESSFUL", STATUS_NOT_IMPLEMENTED: "STATUS_NOT_IMPLEMENTED",
	STATUS_INVALID_INFO_CLASS: "STATUS_INVALID_INFO_CLASS", STATUS_INFO_LENGTH_MISMATCH: "STATUS_INFO_LENGTH_MISMATCH",
	STATUS_ACCESS_VIOLATION: "STATUS_ACCESS_VIOLATION", STATUS_INVALID_HANDLE: "STATUS_INVALID_HANDLE",
	STATUS_INVALID_PARAMETER: "STATUS_INVALID_PARAMETER", STATUS_NO_SUCH_FILE: "STATUS_NO_SUCH_FILE",
	STATUS_INVALID_DEVICE_REQUEST: "STATUS_INVALID_DEVICE_REQUEST", STATUS_END_OF_FILE: "STATUS_END_OF_FILE",
	STATUS_NO_MEMORY: "STATUS_NO_MEMORY", STATUS_CONFLICTING_ADDRESSES: "STATUS_CONFLICTING_ADDRESSES",
	STATUS_NOT_MAPPED_VIEW: "STATUS_NOT_MAPPED_VIEW", STATUS_ACCESS_DENIED: "STATUS_ACCESS_DENIED",
	STATUS_BUFFER_TOO_SMALL: "STATUS_BUFFER_TOO_SMALL", STATUS_OBJECT_TYPE_MISMATCH: "STATUS_OBJECT_TYPE_MISMATCH",
	STATUS_OBJECT_NAME_INVALID: "STATUS_OBJECT_NAME_INVALID", STATUS_OBJECT_NAME_NOT_FOUND: "STATUS_OBJECT_NAME_NOT_FOUND",
	STATUS_OBJECT_NAME_COLLISION: "STATUS_OBJECT_NAME_COLLISION", STATUS_OBJECT_PATH_NOT_FOUND: "STATUS_OBJECT_PATH_NOT_FOUND",
	STATUS_OBJECT_PATH_SYNTAX_BAD: "STATUS_OBJECT_PATH_SYNTAX_BAD", STATUS_SHARING_VIOLATION: "STATUS_SHARING_VIOLATION",
	STATUS_INVALID_IMAGE_FORMAT: "STATUS_INVALID_IMAGE_FORMAT", STATUS_NOT_SUPPORTED: "STATUS_NOT_SUPPORTED",
	STATUS_FILE_IS_A_DIRECTORY: "STATUS_FILE_IS_A_DIRECTORY", STATUS_NOT_A_DIRECTORY: "STATUS_NOT_A_DIRECTORY",
	STATUS_DIRECTORY_NOT_EMPTY: "STATUS_DIRECTORY_NOT_EMPTY", STATUS_DLL_NOT_FOUND: "STATUS_DLL_NOT_FOUND",
	STATUS_NOT_FOUND: "STATUS_NOT_FOUND", STATUS_MUTANT_NOT_OWNED: "STATUS_MUTANT_NOT_OWNED",
	STATUS_SEMAPHORE_LIMIT_EXCEEDED: "STATUS_SEMAPHORE_LIMIT_EXCEEDED", STATUS_INVALID_PAGE_PROTECTION: "STATUS_INVALID_PAGE_PROTECTION",
	STATUS_NO_TOKEN: "STATUS_NO_TOKEN", STATUS_INVALID_CID: "STATUS_INVALID_CID", STATUS_PIPE_BROKEN: "STATUS_PIPE_BROKEN",
	STATUS_INVALID_PARAMETER_1: "STATUS_INVALID_PARAMETER_1", STATUS_INVALID_PARAMETER_2: "STATUS_INVALID_PARAMETER_2",
	STATUS_SECTION_NOT_IMAGE: "STATUS_SECTION_NOT_IMAGE", STATUS_ALREADY_COMMITTED: "STATUS_ALREADY_COMMITTED",
	STATUS_INVALID_ADDRESS: "STATUS_INVALID_ADDRESS", STATUS_OBJECT_PATH_INVALID: "STATUS_OBJECT_PATH_INVALID",
	STATUS_MEDIA_WRITE_PROTECTED: "STATUS_MEDIA_WRITE_PROTECTED", STATUS_CANNOT_DELETE: "STATUS_CANNOT_DELETE",
	STATUS_NAME_TOO_LONG: "STATUS_NAME_TOO_LONG", STATUS_DELETE_PENDING: "STATUS_DELETE_PENDING",
	STATUS_UNABLE_TO_FREE_VM: "STATUS_UNABLE_TO_FREE_VM", STATUS_INVALID_VIEW_SIZE: "STATUS_INVALID_VIEW_SIZE",
	STATUS_THREAD_IS_TERMINATING: "STATUS_THREAD_IS_TERMINATING", STATUS_INVALID_LEVEL: "STATUS_INVALID_LEVEL",
	STATUS_NOT_ALL_ASSIGNED: "STATUS_NOT_ALL_ASSIGNED", STATUS_EAS_NOT_SUPPORTED: "STATUS_EAS_NOT_SUPPORTED",
	STATUS_INVALID_DEVICE_STATE: "STATUS_INVALID_DEVICE_STATE", STATUS_PROCESS_IS_TERMINATING: "STATUS_PROCESS_IS_TERMINATING",
	STATUS_HANDLE_NOT_CLOSABLE: "STATUS_HANDLE_NOT_CLOSABLE", STATUS_INSTANCE_NOT_AVAILABLE: "STATUS_INSTANCE_NOT_AVAILABLE",
}

func (s ntstatus) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("%#x", uint32(s))
}

// Memory constants (winnt.h).
const (
	MEM_COMMIT      = 0x00001000
	MEM_RESERVE     = 0x00002000
	MEM_DECOMMIT    = 0x00004000
	MEM_RELEASE     = 0x00008000
	MEM_FREE        = 0x00010000
	MEM_PRIVATE     = 0x00020000
	MEM_MAPPED      = 0x00040000
	MEM_RESET       = 0x00080000
	MEM_TOP_DOWN    = 0x00100000
	MEM_WRITE_WATCH = 0x00200000
	MEM_PHYSICAL    = 0x00400000
	MEM_RESET_UNDO  = 0x01000000
	MEM_LARGE_PAGES = 0x20000000
	MEM_IMAGE       = 0x01000000

	PAGE_NOACCESS          = 0x01
	PAGE_READONLY          = 0x02
	PAGE_READWRITE         = 0x04
	PAGE_WRITECOPY         = 0x08
	PAGE_EXECUTE           = 0x10
	PAGE_EXECUTE_READ      = 0x20
	PAGE_EXECUTE_READWRITE = 0x40
	PAGE_EXECUTE_WRITECOPY = 0x80
	PAGE_GUARD             = 0x100
	PAGE_NOCACHE           = 0x200
	PAGE_WRITECOMBINE      = 0x400

	SEC_FILE    = 0x00800000
	SEC_IMAGE   = 0x01000000
	SEC_RESERVE = 0x04000000
	SEC_COMMIT  = 0x08000000
)

// Pseudo handles.
const (
	currentProcess = ^uint64(0)     // -1
	currentThread  = ^uint64(0) - 1 // -2
	// -3 is the current process token, -4 the thread token, -5 the
	// effective token in recent Windows.
	currentProcessToken   = ^uint64(0) - 3
	currentThreadToken    = ^uint64(0) - 4
	currentEffectiveToken = ^uint64(0) - 5
)

// Structure offsets on x64, from the public headers (winternl.h, winnt.h,
// ddk/wdm.h) as Wine 8 defines them.
const (
	// TEB
	tebExceptionList        = 0x0
	tebStackBase            = 0x8
	tebStackLimit           = 0x10
	tebSelf                 = 0x30
	tebClientID             = 0x40 // UniqueProcess, then UniqueThread at 0x48
	tebTLSPointer           = 0x58
	tebPeb                  = 0x60
	tebLastError            = 0x68
	tebCurrentLocale        = 0x108
	tebActCtxStack          = 0x290 // ACTIVATION_CONTEXT_STACK; FrameListCache LIST_ENTRY at +8
	tebActCtxStackPointer   = 0x2c8
	tebStaticUnicodeString  = 0x1258
	tebStaticUnicodeBuffer  = 0x1268
	tebStaticUnicodeBufSize = 261 * 2
	tebDeallocationStack    = 0x1478
	tebTLSSlots             = 0x1480
	tebTLSLinks             = 0x1680
	tebWowTebOffset         = 0x180c
	// Wine keeps a 32-bit TEB at TEB+0x2000 and the debug channel state
	// right after it; the block is 64 KiB.
	tebBlockSize  = 0x10000
	teb32Offset   = 0x2000
	teb32Peb      = 0x30
	teb32Self     = 0x18
	teb32ExcList  = 0x0
	teb32WowTebOf = 0xfbc // TEB32.WowTebOffset, negative offset back to the 64-bit TEB

	// PEB
	pebBeingDebugged   = 0x2
	pebImageBase       = 0x10
	pebLdr             = 0x18
	pebParams          = 0x20
	pebProcessHeap     = 0x30
	pebApiSetMap       = 0x68
	pebTLSBitmapBits   = 0x80
	pebAnsiCodePage    = 0xa0
	pebOemCodePage     = 0xa8
	pebCaseTable       = 0xb0
	pebNumProcessors   = 0xb8
	pebNtGlobalFlag    = 0xbc
	pebCritSecTimeout  = 0xc0
	pebHeapSegReserve  = 0xc8
	pebHeapSegCommit   = 0xd0
	pebHeapDecommitTot = 0xd8
	pebHeapDecommitFre = 0xe0
	pebMaxHeaps        = 0xec
	pebOSMajor         = 0x118
	pebOSMinor         = 0x11c
	pebOSBuild         = 0x120
	pebOSPlatformID    = 0x124
	pebImageSubsystem  = 0x128
	pebImageSubsysMaj  = 0x12c
	pebImageSubsysMin  = 0x130
	pebAffinityMask    = 0x134
	pebSessionID       = 0x2c0
	pebCloudFileFlags  = 0x7a8 // Wine: the unix side's image address
	pebBlockSize       = 0x10000
	pebDebugOptions    = 0x2000 // Wine: debug channel table

	// RTL_USER_PROCESS_PARAMETERS
	ppAllocationSize  = 0x0
	ppSize            = 0x4
	ppFlags           = 0x8
	ppConsoleHandle   = 0x10
	ppConsoleFlags    = 0x18
	ppStdInput        = 0x20
	ppStdOutput       = 0x28
	ppStdError        = 0x30
	ppCurDirDosPath   = 0x38 // CURDIR: UNICODE_STRING DosPath, HANDLE at 0x48
	ppCurDirHandle    = 0x48
	ppDllPath         = 0x50
	ppImagePathName   = 0x60
	ppCommandLine     = 0x70
	ppEnvironment     = 0x80
	ppWindowTitle     = 0xb0
	ppDesktop         = 0xc0
	ppShellInfo       = 0xd0
	ppRuntimeInfo     = 0xe0
	ppEnvironmentSize = 0x3f0
	ppStructSize      = 0x410

	// KUSER_SHARED_DATA
	kuserBase              = 0x7ffe0000
	kuserTickCountMult     = 0x4
	kuserInterruptTime     = 0x8
	kuserSystemTime        = 0x14
	kuserTimeZoneBias      = 0x20
	kuserImageNumberLow    = 0x2c
	kuserNtSystemRoot      = 0x30
	kuserMaxStackDepth     = 0x238
	kuserNtBuildNumber     = 0x260
	kuserNtProductType     = 0x264
	kuserProductTypeValid  = 0x268
	kuserNativeArch        = 0x26a
	kuserNtMajorVersion    = 0x26c
	kuserNtMinorVersion    = 0x270
	kuserProcessorFeatures = 0x274
	kuserActiveConsoleID   = 0x2d8
	kuserNumPhysicalPages  = 0x2e8
	kuserQpcFrequency      = 0x300
	kuserSystemCall        = 0x308
	kuserTickCount         = 0x320
	kuserCookie            = 0x330
	kuserActiveProcessors  = 0x3c0
	kuserActiveGroupCount  = 0x3c4

	// CONTEXT
	ctxSize        = 0x4d0
	ctxFlags       = 0x30
	ctxMxCsr       = 0x34
	ctxSegCs       = 0x38
	ctxSegDs       = 0x3a
	ctxSegEs       = 0x3c
	ctxSegFs       = 0x3e
	ctxSegGs       = 0x40
	ctxSegSs       = 0x42
	ctxEFlags      = 0x44
	ctxRax         = 0x78 // then Rcx, Rdx, Rbx, Rsp, Rbp, Rsi, Rdi, R8..R15 (hardware order)
	ctxRip         = 0xf8
	ctxFltSave     = 0x100 // XSAVE_FORMAT, 0x200 bytes
	ctxDebugCtl    = 0x4a8
	xsaveControl   = 0x0
	xsaveStatus    = 0x2
	xsaveTag       = 0x4
	xsaveErrorOp   = 0x6
	xsaveErrorOff  = 0x8
	xsaveErrorSel  = 0xc
	xsaveDataOff   = 0x10
	xsaveDataSel   = 0x14
	xsaveMxCsr     = 0x18
	xsaveFloatRegs = 0x20 // 8 x 16 bytes
	xsaveXmmRegs   = 0xa0 // 16 x 16 bytes

	CONTEXT_AMD64           = 0x100000
	CONTEXT_CONTROL         = CONTEXT_AMD64 | 0x1
	CONTEXT_INTEGER         = CONTEXT_AMD64 | 0x2
	CONTEXT_SEGMENTS        = CONTEXT_AMD64 | 0x4
	CONTEXT_FLOATING_POINT  = CONTEXT_AMD64 | 0x8
	CONTEXT_DEBUG_REGISTERS = CONTEXT_AMD64 | 0x10
	CONTEXT_FULL            = CONTEXT_CONTROL | CONTEXT_INTEGER | CONTEXT_FLOATING_POINT
	CONTEXT_ALL             = CONTEXT_FULL | CONTEXT_SEGMENTS | CONTEXT_DEBUG_REGISTERS

	// EXCEPTION_RECORD
	erCode       = 0x0
	erFlags      = 0x4
	erRecord     = 0x8
	erAddress    = 0x10
	erNumParams  = 0x18
	erInfo       = 0x20
	erSize       = 0x98
	erMaxParams  = 15
	contextExLen = 0x18 // CONTEXT_EX after the CONTEXT

	// SECTION_IMAGE_INFORMATION, 0x40 bytes.
	siiSize = 0x40
)
