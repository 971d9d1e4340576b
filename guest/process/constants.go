package process

// Memory allocation types and states, and page protections (winnt.h), as
// the Win32 and NT memory functions take and report them.
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
)

// The pseudo-handles every process has: (HANDLE)-1 and (HANDLE)-2.
const (
	CurrentProcessHandle = ^uint64(0)
	CurrentThreadHandle  = ^uint64(0) - 1
)
