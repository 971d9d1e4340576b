package process

// Offsets of the x64 structures Windows keeps for a process and its
// threads, which the userlands build and debuggers read. From the public
// headers (winternl.h, winnt.h); TestStructLayoutAgainstMinGWHeaders
// checks those mingw-w64's headers name against offsetof.
const (
	// NT_TIB, at the start of the TEB (gs:0).
	TEBExceptionList = 0x00
	TEBStackBase     = 0x08
	TEBStackLimit    = 0x10
	TEBSelf          = 0x30
	// TEB
	TEBEnvironmentPointer   = 0x38
	TEBClientID             = 0x40 // CLIENT_ID: UniqueProcess, then UniqueThread at +8
	TEBTLSPointer           = 0x58 // ThreadLocalStoragePointer
	TEBPEB                  = 0x60 // ProcessEnvironmentBlock
	TEBLastError            = 0x68 // LastErrorValue
	TEBCurrentLocale        = 0x108
	TEBActCtxStack          = 0x290 // ACTIVATION_CONTEXT_STACK; FrameListCache LIST_ENTRY at +8
	TEBActCtxStackPointer   = 0x2C8
	TEBStaticUnicodeString  = 0x1258
	TEBStaticUnicodeBuffer  = 0x1268
	TEBStaticUnicodeBufSize = 261 * 2
	TEBDeallocationStack    = 0x1478
	TEBTLSSlots             = 0x1480 // 64 slots
	TEBTLSLinks             = 0x1680
	TEBTLSExpansion         = 0x1780 // TlsExpansionSlots
	TEBWowTebOffset         = 0x180C

	// PEB
	PEBBeingDebugged       = 0x02
	PEBImageBase           = 0x10 // ImageBaseAddress
	PEBLdr                 = 0x18
	PEBProcessParameters   = 0x20
	PEBProcessHeap         = 0x30
	PEBApiSetMap           = 0x68
	PEBTLSBitmapBits       = 0x80
	PEBAnsiCodePage        = 0xA0 // AnsiCodePageData
	PEBOemCodePage         = 0xA8 // OemCodePageData
	PEBCaseTable           = 0xB0 // UnicodeCaseTableData
	PEBNumberOfProcessors  = 0xB8
	PEBNtGlobalFlag        = 0xBC
	PEBCritSecTimeout      = 0xC0 // CriticalSectionTimeout
	PEBHeapSegmentReserve  = 0xC8
	PEBHeapSegmentCommit   = 0xD0
	PEBHeapDecommitTotal   = 0xD8 // HeapDeCommitTotalFreeThreshold
	PEBHeapDecommitFree    = 0xE0 // HeapDeCommitFreeBlockThreshold
	PEBMaxHeaps            = 0xEC // MaximumNumberOfHeaps
	PEBOSMajorVersion      = 0x118
	PEBOSMinorVersion      = 0x11C
	PEBOSBuildNumber       = 0x120
	PEBOSPlatformID        = 0x124
	PEBImageSubsystem      = 0x128
	PEBImageSubsystemMajor = 0x12C
	PEBImageSubsystemMinor = 0x130
	PEBAffinityMask        = 0x134 // ActiveProcessAffinityMask
	PEBSessionID           = 0x2C0

	// PEB_LDR_DATA
	LdrLength        = 0x00
	LdrInitialized   = 0x04
	LdrInLoadOrder   = 0x10 // InLoadOrderModuleList
	LdrInMemoryOrder = 0x20 // InMemoryOrderModuleList
	LdrInInitOrder   = 0x30 // InInitializationOrderModuleList
	LdrDataSize      = 0x58

	// LDR_DATA_TABLE_ENTRY
	LTEInLoadOrderLinks   = 0x00
	LTEInMemoryOrderLinks = 0x10
	LTEInInitOrderLinks   = 0x20
	LTEDllBase            = 0x30
	LTEEntryPoint         = 0x38
	LTESizeOfImage        = 0x40
	LTEFullDllName        = 0x48
	LTEBaseDllName        = 0x58
	LTEFlags              = 0x68
	LTELoadCount          = 0x6C
	LTETLSIndex           = 0x6E
	LTEHashLinks          = 0x70
	LTETimeDateStamp      = 0x80
	LTESize               = 0x120

	// RTL_USER_PROCESS_PARAMETERS
	RPPMaximumLength    = 0x00 // AllocationSize in Wine's headers
	RPPLength           = 0x04 // Size
	RPPFlags            = 0x08
	RPPConsoleHandle    = 0x10
	RPPConsoleFlags     = 0x18
	RPPStandardInput    = 0x20
	RPPStandardOutput   = 0x28
	RPPStandardError    = 0x30
	RPPCurrentDirectory = 0x38 // CURDIR: UNICODE_STRING DosPath, then the HANDLE
	RPPCurrentDirHandle = 0x48
	RPPDllPath          = 0x50
	RPPImagePathName    = 0x60
	RPPCommandLine      = 0x70
	RPPEnvironment      = 0x80
	RPPWindowTitle      = 0xB0
	RPPDesktop          = 0xC0 // DesktopInfo
	RPPShellInfo        = 0xD0
	RPPRuntimeInfo      = 0xE0 // RuntimeData
	RPPEnvironmentSize  = 0x3F0
)

// ThreadBlock is what both userlands put in a new thread's TEB: the
// NT_TIB (stack bounds and the self pointer), the CLIENT_ID, the PEB and
// the stack's allocation base.
type ThreadBlock struct {
	TEB, PEB              uint64
	StackBase, StackLimit uint64 // the committed stack: StackLimit <= RSP < StackBase
	DeallocationStack     uint64 // the base of the stack's allocation
	ProcessID, ThreadID   uint64
}

// Fields returns the block's fields as (offset in the TEB, 64-bit value)
// pairs, for the userland to write however it builds the TEB.
func (t ThreadBlock) Fields() [7][2]uint64 {
	return [7][2]uint64{
		{TEBStackBase, t.StackBase},
		{TEBStackLimit, t.StackLimit},
		{TEBSelf, t.TEB},
		{TEBClientID, t.ProcessID},
		{TEBClientID + 8, t.ThreadID},
		{TEBPEB, t.PEB},
		{TEBDeallocationStack, t.DeallocationStack},
	}
}
