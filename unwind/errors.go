package unwind

import (
	"errors"
	"fmt"

	"github.com/rspstub/rspstub/internal/bytecur"
)

// Sentinel errors. Test for them with errors.Is; the typed errors below carry
// the address or RVA at which they happened.
var (
	// ErrVersion: an UNWIND_INFO whose version is neither 1 nor 2.
	ErrVersion = errors.New("unsupported UNWIND_INFO version")
	// ErrTruncated: a structure ends before its stated length.
	ErrTruncated = bytecur.ErrTruncated
	// ErrUnknownOp: an unwind code with an operation above UWOP_PUSH_MACHFRAME.
	ErrUnknownOp = errors.New("unknown unwind operation")
	// ErrCodeOverrun: the last unwind code needs more slots than CountOfCodes has.
	ErrCodeOverrun = errors.New("unwind code runs past CountOfCodes")
	// ErrNoFrameRegister: UWOP_SET_FPREG in an UNWIND_INFO with FrameRegister 0.
	ErrNoFrameRegister = errors.New("UWOP_SET_FPREG without a frame register")
	// ErrChainTooDeep: more than ChainLimit chained UNWIND_INFO structures.
	ErrChainTooDeep = errors.New("chained unwind info deeper than the chain limit")
	// ErrChainLoop: a chained UNWIND_INFO leads back to one already on the
	// chain (Windows would run the loop to UNWIND_CHAIN_LIMIT, popping
	// stack words each time; a debugger says what it is instead). The
	// error also matches ErrChainTooDeep: a loop is an endless chain.
	ErrChainLoop = errors.New("chained unwind info loops")
	// ErrIndirect: an indirect RUNTIME_FUNCTION that points at another
	// indirect entry, or outside the function table.
	ErrIndirect = errors.New("bad indirect RUNTIME_FUNCTION")
	// ErrNotPE: the module does not start with a PE32+ image.
	ErrNotPE = errors.New("not a PE32+ image")
	// ErrNoModule: the address lies outside every module the caller supplied.
	ErrNoModule = errors.New("address outside every module")
	// ErrMissingUnwindData: the RUNTIME_FUNCTION table is partly unreadable or
	// zeroed around the address, so it cannot tell a leaf function from a
	// function whose entry is missing.
	ErrMissingUnwindData = errors.New("unwind data missing (unreadable or zeroed .pdata)")
	// ErrNoCFI: an ELF module's CFI has no entry for the address (hand-
	// written assembly such as the dynamic linker's _start has none).
	ErrNoCFI = errors.New("no CFI covers the address")
	// ErrUnknownRegister: an unwind step needs a register whose value is not
	// known in this frame (a frame register that is volatile, or lost by a scan).
	ErrUnknownRegister = errors.New("register value unknown in this frame")
	// ErrUnproven: code without unwind data, and no word on the stack
	// above it is a return address that follows a call which could have
	// entered it (WalkOptions.Validate).
	ErrUnproven = errors.New("no unwind data, and no return address on the stack follows a call that could have entered this code")
)

// InfoError reports a malformed UNWIND_INFO. Offset is the byte offset inside
// the structure where decoding failed.
type InfoError struct {
	RVA    uint32
	Offset int
	Err    error
}

func (e *InfoError) Error() string {
	return fmt.Sprintf("UNWIND_INFO at rva %#x, offset %d: %v", e.RVA, e.Offset, e.Err)
}

func (e *InfoError) Unwrap() error { return e.Err }

// ReadError reports guest memory that could not be read: Got bytes of Want
// were readable at Addr ("stack", "UNWIND_INFO", ".pdata", "PE header", ...).
type ReadError = bytecur.ReadError
