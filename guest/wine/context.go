package wine

import (
	"encoding/binary"

	"github.com/rspstub/rspstub/internal/arch"
)

// CONTEXT (winnt.h, x64, 0x4d0 bytes) to and from arch.Context.
//
//	0x30 ContextFlags  0x34 MxCsr  0x38 SegCs SegDs SegEs SegFs SegGs SegSs
//	0x44 EFlags        0x48 Dr0-Dr3, Dr6, Dr7
//	0x78 Rax Rcx Rdx Rbx Rsp Rbp Rsi Rdi R8-R15 (the hardware order)
//	0xf8 Rip           0x100 FltSave (XSAVE_FORMAT: x87, MXCSR, XMM0-15)

func encodeContext(b memw, c *arch.Context, flags uint32) {
	b.u32(ctxFlags, flags)
	b.u32(ctxMxCsr, c.MXCSR)
	b.u16(ctxSegCs, uint16(c.CS))
	b.u16(ctxSegDs, uint16(c.DS))
	b.u16(ctxSegEs, uint16(c.ES))
	b.u16(ctxSegFs, uint16(c.FS))
	b.u16(ctxSegGs, uint16(c.GS))
	b.u16(ctxSegSs, uint16(c.SS))
	b.u32(ctxEFlags, uint32(c.RFLAGS))
	for i := 0; i < 16; i++ {
		b.u64(ctxRax+8*i, c.GPR[i])
	}
	b.u64(ctxRip, c.RIP)
	f := b[ctxFltSave : ctxFltSave+0x200]
	fw := memw(f)
	fw.u16(xsaveControl, uint16(c.FCTRL))
	fw.u16(xsaveStatus, uint16(c.FSTAT))
	fw.u8(xsaveTag, abridgedTag(c.FTAG))
	fw.u16(xsaveErrorOp, uint16(c.FOP))
	fw.u32(xsaveErrorOff, c.FIOFF)
	fw.u16(xsaveErrorSel, uint16(c.FISEG))
	fw.u32(xsaveDataOff, c.FOOFF)
	fw.u16(xsaveDataSel, uint16(c.FOSEG))
	fw.u32(xsaveMxCsr, c.MXCSR)
	fw.u32(xsaveMxCsr+4, 0xffff) // MxCsr_Mask
	for i := 0; i < 8; i++ {
		copy(f[xsaveFloatRegs+16*i:], c.ST[i][:])
	}
	for i := 0; i < 16; i++ {
		copy(f[xsaveXmmRegs+16*i:], c.XMM[i][:])
	}
}

// decodeContext loads the parts of a CONTEXT its flags select into c.
func decodeContext(b []byte, c *arch.Context) {
	flags := binary.LittleEndian.Uint32(b[ctxFlags:])
	u16 := func(off int) uint32 { return uint32(binary.LittleEndian.Uint16(b[off:])) }
	u64 := func(off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }
	if flags&CONTEXT_CONTROL == CONTEXT_CONTROL {
		c.GPR[arch.RSP] = u64(ctxRax + 8*int(arch.RSP))
		c.GPR[arch.RBP] = u64(ctxRax + 8*int(arch.RBP))
		c.RIP = u64(ctxRip)
		c.RFLAGS = uint64(binary.LittleEndian.Uint32(b[ctxEFlags:]))
	}
	if flags&CONTEXT_INTEGER == CONTEXT_INTEGER {
		for i := 0; i < 16; i++ {
			if i == int(arch.RSP) || i == int(arch.RBP) {
				continue
			}
			c.GPR[i] = u64(ctxRax + 8*i)
		}
	}
	if flags&CONTEXT_FLOATING_POINT == CONTEXT_FLOATING_POINT {
		f := b[ctxFltSave : ctxFltSave+0x200]
		c.FCTRL = uint32(binary.LittleEndian.Uint16(f[xsaveControl:]))
		c.FSTAT = uint32(binary.LittleEndian.Uint16(f[xsaveStatus:]))
		c.FTAG = fullTag(f[xsaveTag])
		c.FOP = uint32(binary.LittleEndian.Uint16(f[xsaveErrorOp:]))
		c.FIOFF = binary.LittleEndian.Uint32(f[xsaveErrorOff:])
		c.FISEG = uint32(binary.LittleEndian.Uint16(f[xsaveErrorSel:]))
		c.FOOFF = binary.LittleEndian.Uint32(f[xsaveDataOff:])
		c.FOSEG = uint32(binary.LittleEndian.Uint16(f[xsaveDataSel:]))
		c.MXCSR = binary.LittleEndian.Uint32(f[xsaveMxCsr:])
		for i := 0; i < 8; i++ {
			copy(c.ST[i][:], f[xsaveFloatRegs+16*i:])
		}
		for i := 0; i < 16; i++ {
			copy(c.XMM[i][:], f[xsaveXmmRegs+16*i:])
		}
	}
	_ = u16
}

// abridgedTag turns the x87 tag word (2 bits a register, 3 = empty) into
// FXSAVE's abridged form (1 bit a register, 1 = not empty).
func abridgedTag(full uint32) uint8 {
	var t uint8
	for i := 0; i < 8; i++ {
		if (full>>(2*i))&3 != 3 {
			t |= 1 << i
		}
	}
	return t
}

// fullTag is the inverse of abridgedTag (valid registers read as
// "valid", the hardware's own classification is not kept by FXSAVE).
func fullTag(ab uint8) uint32 {
	var t uint32
	for i := 0; i < 8; i++ {
		if ab&(1<<i) == 0 {
			t |= 3 << (2 * i)
		}
	}
	return t
}
