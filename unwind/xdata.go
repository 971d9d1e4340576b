package unwind

import (
	"encoding/binary"
	"fmt"

	"github.com/rspstub/rspstub/internal/arch"
)

// Unwind operation codes (UNWIND_CODE.UnwindOp), named as in the spec.
const (
	UWOP_PUSH_NONVOL     = 0
	UWOP_ALLOC_LARGE     = 1
	UWOP_ALLOC_SMALL     = 2
	UWOP_SET_FPREG       = 3
	UWOP_SAVE_NONVOL     = 4
	UWOP_SAVE_NONVOL_FAR = 5
	UWOP_EPILOG          = 6 // version 2; UWOP_SAVE_XMM in the earliest images
	UWOP_SPARE_CODE      = 7 // UWOP_SAVE_XMM_FAR in the earliest images
	UWOP_SAVE_XMM128     = 8
	UWOP_SAVE_XMM128_FAR = 9
	UWOP_PUSH_MACHFRAME  = 10
)

// UNWIND_INFO.Flags bits.
const (
	UNW_FLAG_NHANDLER  = 0x0
	UNW_FLAG_EHANDLER  = 0x1
	UNW_FLAG_UHANDLER  = 0x2
	UNW_FLAG_CHAININFO = 0x4
)

// RUNTIME_FUNCTION_INDIRECT marks a RUNTIME_FUNCTION whose UnwindData is the
// RVA (plus one) of another RUNTIME_FUNCTION rather than of an UNWIND_INFO.
const RUNTIME_FUNCTION_INDIRECT = 0x1

// ChainLimit bounds chained UNWIND_INFO, as UNWIND_CHAIN_LIMIT does in the
// Windows unwinder.
const ChainLimit = 32

// MaxUnwindInfoSize is the largest possible UNWIND_INFO without its
// language-specific handler data: header, 255 codes plus padding, and a
// chained RUNTIME_FUNCTION.
const MaxUnwindInfoSize = 4 + 2*256 + 12

// RuntimeFunction is one entry of the exception directory (.pdata): RVAs of
// a function's first byte, of the byte after its last, and of its UNWIND_INFO.
type RuntimeFunction struct {
	BeginAddress uint32
	EndAddress   uint32
	UnwindData   uint32
}

// Indirect reports whether UnwindData points at another RUNTIME_FUNCTION.
func (f RuntimeFunction) Indirect() bool { return f.UnwindData&RUNTIME_FUNCTION_INDIRECT != 0 }

// Contains reports whether rva lies in [BeginAddress, EndAddress).
func (f RuntimeFunction) Contains(rva uint32) bool {
	return rva >= f.BeginAddress && rva < f.EndAddress
}

func decodeRuntimeFunction(b []byte) RuntimeFunction {
	return RuntimeFunction{
		BeginAddress: binary.LittleEndian.Uint32(b[0:]),
		EndAddress:   binary.LittleEndian.Uint32(b[4:]),
		UnwindData:   binary.LittleEndian.Uint32(b[8:]),
	}
}

// UnwindCode is one unwind operation, which occupies Slots consecutive
// UNWIND_CODE slots starting at slot Index.
//
//	slot:  byte 0       byte 1
//	       CodeOffset   UnwindOp (bits 0-3) | OpInfo (bits 4-7)
//	extra slots: a 16-bit operand, or two slots forming a 32-bit one
type UnwindCode struct {
	Index      uint8 // first slot
	Slots      uint8
	CodeOffset uint8 // offset of the end of the prolog instruction
	Op         uint8 // UWOP_*
	OpInfo     uint8
	// Operand holds the decoded size or offset, in bytes:
	//   UWOP_ALLOC_LARGE, UWOP_ALLOC_SMALL: bytes allocated;
	//   UWOP_SAVE_NONVOL(_FAR), UWOP_SAVE_XMM128(_FAR): offset from the
	//     establisher frame;
	//   UWOP_EPILOG, UWOP_SPARE_CODE: the raw extra slot(s).
	Operand uint32
}

// Reg is the integer register of UWOP_PUSH_NONVOL and UWOP_SAVE_NONVOL(_FAR).
func (c UnwindCode) Reg() arch.Reg { return arch.Reg(c.OpInfo) }

// String renders the operation in the style of llvm-readobj --unwind.
func (c UnwindCode) String() string {
	switch c.Op {
	case UWOP_PUSH_NONVOL:
		return fmt.Sprintf("%#02x: UWOP_PUSH_NONVOL %v", c.CodeOffset, c.Reg())
	case UWOP_ALLOC_LARGE:
		return fmt.Sprintf("%#02x: UWOP_ALLOC_LARGE %#x", c.CodeOffset, c.Operand)
	case UWOP_ALLOC_SMALL:
		return fmt.Sprintf("%#02x: UWOP_ALLOC_SMALL %#x", c.CodeOffset, c.Operand)
	case UWOP_SET_FPREG:
		return fmt.Sprintf("%#02x: UWOP_SET_FPREG", c.CodeOffset)
	case UWOP_SAVE_NONVOL:
		return fmt.Sprintf("%#02x: UWOP_SAVE_NONVOL %v [%#x]", c.CodeOffset, c.Reg(), c.Operand)
	case UWOP_SAVE_NONVOL_FAR:
		return fmt.Sprintf("%#02x: UWOP_SAVE_NONVOL_FAR %v [%#x]", c.CodeOffset, c.Reg(), c.Operand)
	case UWOP_EPILOG:
		return fmt.Sprintf("%#02x: UWOP_EPILOG info=%d", c.CodeOffset, c.OpInfo)
	case UWOP_SPARE_CODE:
		return fmt.Sprintf("%#02x: UWOP_SPARE_CODE", c.CodeOffset)
	case UWOP_SAVE_XMM128:
		return fmt.Sprintf("%#02x: UWOP_SAVE_XMM128 xmm%d [%#x]", c.CodeOffset, c.OpInfo, c.Operand)
	case UWOP_SAVE_XMM128_FAR:
		return fmt.Sprintf("%#02x: UWOP_SAVE_XMM128_FAR xmm%d [%#x]", c.CodeOffset, c.OpInfo, c.Operand)
	case UWOP_PUSH_MACHFRAME:
		return fmt.Sprintf("%#02x: UWOP_PUSH_MACHFRAME error-code=%v", c.CodeOffset, c.OpInfo != 0)
	}
	return fmt.Sprintf("%#02x: op %d", c.CodeOffset, c.Op)
}

var opNames = [...]string{"UWOP_PUSH_NONVOL", "UWOP_ALLOC_LARGE", "UWOP_ALLOC_SMALL", "UWOP_SET_FPREG",
	"UWOP_SAVE_NONVOL", "UWOP_SAVE_NONVOL_FAR", "UWOP_EPILOG", "UWOP_SPARE_CODE", "UWOP_SAVE_XMM128",
	"UWOP_SAVE_XMM128_FAR", "UWOP_PUSH_MACHFRAME"}

// opSlots is the number of slots an operation occupies: the table of the
// Windows unwinder (UnwindOpExtraSlotTable plus one), where
// UWOP_ALLOC_LARGE with any non-zero OpInfo takes the 32-bit form.
func opSlots(op, info uint8) int {
	switch op {
	case UWOP_ALLOC_LARGE:
		if info != 0 {
			return 3
		}
		return 2
	case UWOP_SAVE_NONVOL, UWOP_EPILOG, UWOP_SAVE_XMM128:
		return 2
	case UWOP_SAVE_NONVOL_FAR, UWOP_SPARE_CODE, UWOP_SAVE_XMM128_FAR:
		return 3
	}
	return 1
}

// UnwindInfo is a decoded UNWIND_INFO:
//
//	byte 0: Version (bits 0-2) | Flags (bits 3-7)
//	byte 1: SizeOfProlog
//	byte 2: CountOfCodes (slots, not operations)
//	byte 3: FrameRegister (bits 0-3) | FrameOffset (bits 4-7, scaled by 16)
//	CountOfCodes 2-byte slots, padded to an even count
//	then, by Flags: a chained RUNTIME_FUNCTION (12 bytes), or the RVA of the
//	language-specific handler (4 bytes) followed by its data.
type UnwindInfo struct {
	RVA           uint32
	Version       uint8
	Flags         uint8
	SizeOfProlog  uint8
	CountOfCodes  uint8
	FrameRegister uint8 // 0: no frame register
	FrameOffset   uint8 // unscaled; the frame register is RSP+16*FrameOffset

	// Codes are the operations in slot order (the reverse of prolog order).
	Codes []UnwindCode

	// Version 2 epilog descriptors, from the leading UWOP_EPILOG slots.
	EpilogSize   uint8    // bytes of each epilog (pops and ret only)
	EpilogAtEnd  bool     // an epilog ends the function
	EpilogOffset []uint16 // distance of further epilogs from the function end

	// HandlerRVA and HandlerDataRVA are set with UNW_FLAG_EHANDLER or
	// UNW_FLAG_UHANDLER (and no UNW_FLAG_CHAININFO).
	HandlerRVA     uint32
	HandlerDataRVA uint32

	// Chained is the parent entry when Flags has UNW_FLAG_CHAININFO.
	Chained RuntimeFunction
}

// Chain reports whether the structure has UNW_FLAG_CHAININFO.
func (u *UnwindInfo) Chain() bool { return u.Flags&UNW_FLAG_CHAININFO != 0 }

// HasHandler reports whether a language-specific handler follows the codes.
func (u *UnwindInfo) HasHandler() bool {
	return !u.Chain() && u.Flags&(UNW_FLAG_EHANDLER|UNW_FLAG_UHANDLER) != 0
}

// FrameReg is the frame register, meaningful only when FrameRegister != 0.
func (u *UnwindInfo) FrameReg() arch.Reg { return arch.Reg(u.FrameRegister) }

// Size is the number of bytes the structure occupies, up to and including
// the handler RVA or chained entry (not the handler data).
func (u *UnwindInfo) Size() int { return unwindInfoSize(u.Flags, u.CountOfCodes) }

func unwindInfoSize(flags, count uint8) int {
	// The slots are padded to an even count only before a trailer.
	padded := 4 + 2*((int(count)+1)&^1)
	if flags&UNW_FLAG_CHAININFO != 0 {
		return padded + 12
	} else if flags&(UNW_FLAG_EHANDLER|UNW_FLAG_UHANDLER) != 0 {
		return padded + 4
	}
	return 4 + 2*int(count)
}

// DecodeUnwindInfo decodes the UNWIND_INFO at the start of b; rva is where
// it lives, for errors and for HandlerDataRVA. Bytes after the structure are
// ignored. It never panics; a malformed structure gives an *InfoError.
func DecodeUnwindInfo(b []byte, rva uint32) (*UnwindInfo, error) {
	c := cursor{B: b}
	fail := func(off int, err error) (*UnwindInfo, error) {
		return nil, &InfoError{RVA: rva, Offset: off, Err: err}
	}
	vf := c.U8()
	u := &UnwindInfo{
		RVA:          rva,
		Version:      vf & 7,
		Flags:        vf >> 3,
		SizeOfProlog: c.U8(),
		CountOfCodes: c.U8(),
	}
	fr := c.U8()
	if c.Err != nil {
		return fail(c.Off, c.Err)
	}
	if u.Version != 1 && u.Version != 2 {
		return fail(0, fmt.Errorf("%w %d", ErrVersion, u.Version))
	}
	u.FrameRegister, u.FrameOffset = fr&15, fr>>4

	n := int(u.CountOfCodes)
	if !c.Need(2 * n) {
		return fail(c.Off, c.Err)
	}
	slots := b[4 : 4+2*n]
	slot := func(i int) (off, op, info uint8) { return slots[2*i], slots[2*i+1] & 15, slots[2*i+1] >> 4 }
	u16 := func(i int) uint32 { return uint32(binary.LittleEndian.Uint16(slots[2*i:])) }

	// Walk operations exactly as the Windows unwinder steps its slot index.
	u.Codes = make([]UnwindCode, 0, n)
	for i := 0; i < n; {
		off, op, info := slot(i)
		if op > UWOP_PUSH_MACHFRAME {
			return fail(4+2*i, fmt.Errorf("%w %d in slot %d", ErrUnknownOp, op, i))
		}
		k := opSlots(op, info)
		if i+k > n {
			return fail(4+2*i, fmt.Errorf("%w: op %d in slot %d needs %d slots", ErrCodeOverrun, op, i, k))
		}
		uc := UnwindCode{Index: uint8(i), Slots: uint8(k), CodeOffset: off, Op: op, OpInfo: info}
		switch op {
		case UWOP_ALLOC_LARGE:
			if info == 0 {
				uc.Operand = u16(i+1) * 8
			} else {
				uc.Operand = u16(i+1) | u16(i+2)<<16
			}
		case UWOP_ALLOC_SMALL:
			uc.Operand = uint32(info)*8 + 8
		case UWOP_SET_FPREG:
			if u.FrameRegister == 0 {
				return fail(4+2*i, ErrNoFrameRegister)
			}
		case UWOP_SAVE_NONVOL:
			uc.Operand = u16(i+1) * 8
		case UWOP_SAVE_XMM128:
			uc.Operand = u16(i+1) * 16
		case UWOP_SAVE_NONVOL_FAR, UWOP_SAVE_XMM128_FAR, UWOP_SPARE_CODE:
			uc.Operand = u16(i+1) | u16(i+2)<<16
		case UWOP_EPILOG:
			uc.Operand = u16(i + 1)
		}
		u.Codes = append(u.Codes, uc)
		i += k
	}

	// Version 2 epilog descriptors are read one slot at a time, unlike the
	// two-slot stride above: the first gives the size and the "at end" bit,
	// each further one an offset from the function end, 0 being padding.
	if u.Version == 2 && n > 0 {
		if off, op, info := slot(0); op == UWOP_EPILOG {
			u.EpilogSize = off
			u.EpilogAtEnd = info&1 != 0
			for i := 1; i < n; i++ {
				lo, op, hi := slot(i)
				if op != UWOP_EPILOG {
					break
				}
				d := uint16(lo) | uint16(hi)<<8
				if d == 0 {
					break
				}
				u.EpilogOffset = append(u.EpilogOffset, d)
			}
		}
	}

	c.Off = 4 + 2*((n+1)&^1)
	switch {
	case u.Chain():
		if !c.Need(12) {
			return fail(c.Off, c.Err)
		}
		u.Chained = decodeRuntimeFunction(b[c.Off:])
	case u.Flags&(UNW_FLAG_EHANDLER|UNW_FLAG_UHANDLER) != 0:
		u.HandlerRVA = c.U32()
		if c.Err != nil {
			return fail(c.Off, c.Err)
		}
		u.HandlerDataRVA = rva + uint32(c.Off)
	}
	return u, nil
}

// setFPRegOffset returns the CodeOffset of the UWOP_SET_FPREG code.
func (u *UnwindInfo) setFPRegOffset() (uint8, bool) {
	for _, c := range u.Codes {
		if c.Op == UWOP_SET_FPREG {
			return c.CodeOffset, true
		}
	}
	return 0, false
}

// ReadUnwindInfo reads and decodes the UNWIND_INFO at base+rva from guest
// memory, reading only as many bytes as its header says it has.
func ReadUnwindInfo(m Memory, base uint64, rva uint32) (*UnwindInfo, error) {
	var hdr [4]byte
	if err := readFull(m, "UNWIND_INFO", base+uint64(rva), hdr[:]); err != nil {
		return nil, &InfoError{RVA: rva, Err: err}
	}
	size := unwindInfoSize(hdr[0]>>3, hdr[2])
	var buf [MaxUnwindInfoSize]byte
	b := buf[:size]
	if err := readFull(m, "UNWIND_INFO", base+uint64(rva), b); err != nil {
		return nil, &InfoError{RVA: rva, Err: err}
	}
	return DecodeUnwindInfo(b, rva)
}
