package dwarf

import (
	"errors"
	"fmt"

	"github.com/rspstub/rspstub/internal/bytecur"
)

// Sentinel errors. Test for them with errors.Is; the typed errors below
// carry the section, byte offset or address where they happened.
var (
	// ErrTruncated: a field runs past the end of its entry, section or
	// expression.
	ErrTruncated = bytecur.ErrTruncated
	// ErrLength: an entry length that is too short for its header or runs
	// past the section.
	ErrLength = errors.New("bad entry length")
	// ErrCIEPointer: an FDE whose CIE pointer does not lead to a CIE.
	ErrCIEPointer = errors.New("FDE's CIE pointer does not lead to a CIE")
	// ErrVersion: a CIE version other than 1, 3 or 4, or an
	// .eh_frame_hdr version other than 1.
	ErrVersion = errors.New("unsupported version")
	// ErrAugmentation: an augmentation string we cannot skip (no 'z') or
	// augmentation data that disagrees with its length.
	ErrAugmentation = errors.New("unsupported augmentation")
	// ErrEncoding: a pointer encoding that is invalid or unsupported
	// where it is used.
	ErrEncoding = errors.New("bad pointer encoding")
	// ErrIndirect: a DW_EH_PE_indirect pointer where no memory was given
	// to read it.
	ErrIndirect = errors.New("indirect pointer without memory to read it")
	// ErrAddressSize: a CIE address size other than 4 or 8, or a segment
	// selector size above 8.
	ErrAddressSize = errors.New("unsupported address or segment size")
	// ErrNoFDE: no FDE covers the PC.
	ErrNoFDE = errors.New("no FDE covers the address")
	// ErrOpcode: a call frame instruction we do not know.
	ErrOpcode = errors.New("unknown call frame instruction")
	// ErrStateStack: DW_CFA_restore_state with nothing remembered, or
	// more DW_CFA_remember_state than MaxStateDepth.
	ErrStateStack = errors.New("remember/restore state stack misuse")
	// ErrProgramLimit: a CFA program longer than MaxInstructions.
	ErrProgramLimit = errors.New("call frame program exceeds the instruction limit")
	// ErrRegister: a register number the operation cannot use (a CFA or
	// return address register outside the tracked columns).
	ErrRegister = errors.New("register number out of range")
	// ErrUnknownRegister: a rule needs a register whose value is unknown.
	ErrUnknownRegister = errors.New("register value unknown")
	// ErrNoReturnAddress: the row leaves the return address column
	// unspecified.
	ErrNoReturnAddress = errors.New("return address rule unspecified")
	// ErrNoCFA: the row has no CFA rule.
	ErrNoCFA = errors.New("no CFA rule")

	// Expression evaluation errors.
	ErrStackUnderflow = errors.New("expression stack underflow")
	ErrStackOverflow  = errors.New("expression stack overflow")
	ErrStepLimit      = errors.New("expression exceeds the step limit")
	ErrDivideByZero   = errors.New("division by zero")
	ErrBranch         = errors.New("branch target outside the expression")
	ErrOpNotAllowed   = errors.New("operation not allowed in call frame information")
	ErrBadOp          = errors.New("unknown expression operation")
	ErrNoMemory       = errors.New("expression reads memory but none was given")
)

// FormatError reports malformed frame information: Section is ".eh_frame",
// ".debug_frame" or ".eh_frame_hdr", Offset the byte offset inside it where
// decoding failed, Entry the offset of the CIE or FDE being decoded (-1 when
// not inside an entry).
type FormatError struct {
	Section string
	Entry   int64
	Offset  int64
	Err     error
}

func (e *FormatError) Error() string {
	if e.Entry >= 0 {
		return fmt.Sprintf("%s entry at %#x, offset %#x: %v", e.Section, e.Entry, e.Offset, e.Err)
	}
	return fmt.Sprintf("%s offset %#x: %v", e.Section, e.Offset, e.Err)
}

func (e *FormatError) Unwrap() error { return e.Err }

// ProgramError reports a failure while interpreting a CFA program: Offset
// is the byte offset of the failing instruction in the FDE's (or, with CIE
// set, the CIE's) instruction bytes; Entry the section offset of that
// entry.
type ProgramError struct {
	Entry  int64
	CIE    bool
	Offset int
	Opcode byte
	Err    error
}

func (e *ProgramError) Error() string {
	what := "FDE"
	if e.CIE {
		what = "CIE"
	}
	return fmt.Sprintf("%s at %#x: instruction %#02x at offset %d: %v", what, e.Entry, e.Opcode, e.Offset, e.Err)
}

func (e *ProgramError) Unwrap() error { return e.Err }

// ExprError reports a failure while evaluating a DWARF expression: Offset
// is the byte offset of the failing operation inside the expression.
type ExprError struct {
	Offset int
	Op     byte
	Err    error
}

func (e *ExprError) Error() string {
	return fmt.Sprintf("expression operation %#02x at offset %d: %v", e.Op, e.Offset, e.Err)
}

func (e *ExprError) Unwrap() error { return e.Err }

// ReadError reports memory that could not be read: Got bytes of Want were
// readable at Addr ("saved rbx", "DW_OP_deref", ...).
type ReadError = bytecur.ReadError
