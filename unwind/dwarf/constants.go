package dwarf

// Call frame instructions (DWARF 5 section 7.24, table 7.29; GNU
// extensions from binutils include/dwarf2.def). The three "primary"
// opcodes keep their operand in the low six bits.
const (
	DW_CFA_advance_loc = 0x40 // high 2 bits 01, low 6: delta
	DW_CFA_offset      = 0x80 // high 2 bits 10, low 6: register; ULEB128 offset
	DW_CFA_restore     = 0xc0 // high 2 bits 11, low 6: register

	DW_CFA_nop                = 0x00
	DW_CFA_set_loc            = 0x01 // address
	DW_CFA_advance_loc1       = 0x02 // 1-byte delta
	DW_CFA_advance_loc2       = 0x03 // 2-byte delta
	DW_CFA_advance_loc4       = 0x04 // 4-byte delta
	DW_CFA_offset_extended    = 0x05 // ULEB128 register, ULEB128 offset
	DW_CFA_restore_extended   = 0x06 // ULEB128 register
	DW_CFA_undefined          = 0x07 // ULEB128 register
	DW_CFA_same_value         = 0x08 // ULEB128 register
	DW_CFA_register           = 0x09 // ULEB128 register, ULEB128 register
	DW_CFA_remember_state     = 0x0a
	DW_CFA_restore_state      = 0x0b
	DW_CFA_def_cfa            = 0x0c // ULEB128 register, ULEB128 offset
	DW_CFA_def_cfa_register   = 0x0d // ULEB128 register
	DW_CFA_def_cfa_offset     = 0x0e // ULEB128 offset
	DW_CFA_def_cfa_expression = 0x0f // block
	DW_CFA_expression         = 0x10 // ULEB128 register, block
	DW_CFA_offset_extended_sf = 0x11 // ULEB128 register, SLEB128 offset
	DW_CFA_def_cfa_sf         = 0x12 // ULEB128 register, SLEB128 offset
	DW_CFA_def_cfa_offset_sf  = 0x13 // SLEB128 offset
	DW_CFA_val_offset         = 0x14 // ULEB128, ULEB128
	DW_CFA_val_offset_sf      = 0x15 // ULEB128, SLEB128
	DW_CFA_val_expression     = 0x16 // ULEB128, block

	DW_CFA_MIPS_advance_loc8            = 0x1d // 8-byte delta
	DW_CFA_GNU_window_save              = 0x2d // SPARC; AArch64 negate_ra_state
	DW_CFA_GNU_args_size                = 0x2e // ULEB128 size
	DW_CFA_GNU_negative_offset_extended = 0x2f // ULEB128 register, ULEB128 offset (negated)
)

// DWARF expression operations accepted in call frame information
// (DWARF 5 section 2.5, table 7.9).
const (
	DW_OP_addr        = 0x03
	DW_OP_deref       = 0x06
	DW_OP_const1u     = 0x08
	DW_OP_const1s     = 0x09
	DW_OP_const2u     = 0x0a
	DW_OP_const2s     = 0x0b
	DW_OP_const4u     = 0x0c
	DW_OP_const4s     = 0x0d
	DW_OP_const8u     = 0x0e
	DW_OP_const8s     = 0x0f
	DW_OP_constu      = 0x10
	DW_OP_consts      = 0x11
	DW_OP_dup         = 0x12
	DW_OP_drop        = 0x13
	DW_OP_over        = 0x14
	DW_OP_pick        = 0x15
	DW_OP_swap        = 0x16
	DW_OP_rot         = 0x17
	DW_OP_xderef      = 0x18
	DW_OP_abs         = 0x19
	DW_OP_and         = 0x1a
	DW_OP_div         = 0x1b
	DW_OP_minus       = 0x1c
	DW_OP_mod         = 0x1d
	DW_OP_mul         = 0x1e
	DW_OP_neg         = 0x1f
	DW_OP_not         = 0x20
	DW_OP_or          = 0x21
	DW_OP_plus        = 0x22
	DW_OP_plus_uconst = 0x23
	DW_OP_shl         = 0x24
	DW_OP_shr         = 0x25
	DW_OP_shra        = 0x26
	DW_OP_xor         = 0x27
	DW_OP_bra         = 0x28
	DW_OP_eq          = 0x29
	DW_OP_ge          = 0x2a
	DW_OP_gt          = 0x2b
	DW_OP_le          = 0x2c
	DW_OP_lt          = 0x2d
	DW_OP_ne          = 0x2e
	DW_OP_skip        = 0x2f
	DW_OP_lit0        = 0x30 // .. DW_OP_lit31 = 0x4f
	DW_OP_lit31       = 0x4f
	DW_OP_reg0        = 0x50 // .. DW_OP_reg31 = 0x6f
	DW_OP_reg31       = 0x6f
	DW_OP_breg0       = 0x70 // .. DW_OP_breg31 = 0x8f
	DW_OP_breg31      = 0x8f
	DW_OP_regx        = 0x90
	DW_OP_fbreg       = 0x91
	DW_OP_bregx       = 0x92
	DW_OP_piece       = 0x93
	DW_OP_deref_size  = 0x94
	DW_OP_xderef_size = 0x95
	DW_OP_nop         = 0x96

	DW_OP_push_object_address = 0x97
	DW_OP_call2               = 0x98
	DW_OP_call4               = 0x99
	DW_OP_call_ref            = 0x9a
	DW_OP_form_tls_address    = 0x9b
	DW_OP_call_frame_cfa      = 0x9c
	DW_OP_bit_piece           = 0x9d
	DW_OP_implicit_value      = 0x9e
	DW_OP_stack_value         = 0x9f
)

// Pointer encodings of .eh_frame and .eh_frame_hdr (LSB 5.0, "DWARF
// Exception Header Encoding"). The low nibble is the format, bits 4-6 the
// application, bit 7 an indirection.
const (
	DW_EH_PE_absptr  = 0x00
	DW_EH_PE_uleb128 = 0x01
	DW_EH_PE_udata2  = 0x02
	DW_EH_PE_udata4  = 0x03
	DW_EH_PE_udata8  = 0x04
	DW_EH_PE_sleb128 = 0x09
	DW_EH_PE_sdata2  = 0x0a
	DW_EH_PE_sdata4  = 0x0b
	DW_EH_PE_sdata8  = 0x0c
	DW_EH_PE_signed  = 0x08

	DW_EH_PE_pcrel   = 0x10
	DW_EH_PE_textrel = 0x20
	DW_EH_PE_datarel = 0x30
	DW_EH_PE_funcrel = 0x40
	DW_EH_PE_aligned = 0x50

	DW_EH_PE_indirect = 0x80
	DW_EH_PE_omit     = 0xff
)

// x86-64 DWARF register numbers (System V psABI, figure 3.36). Windows
// x64 code built by GCC and clang uses the same numbering.
const (
	RAX = 0
	RDX = 1
	RCX = 2
	RBX = 3
	RSI = 4
	RDI = 5
	RBP = 6
	RSP = 7
	R8  = 8
	R9  = 9
	R10 = 10
	R11 = 11
	R12 = 12
	R13 = 13
	R14 = 14
	R15 = 15
	// RA is the return address column; its value in a caller is that
	// frame's RIP.
	RA     = 16
	XMM0   = 17 // XMM0..XMM15 are 17..32
	XMM15  = 32
	ST0    = 33 // 33..40
	MM0    = 41 // 41..48
	RFLAGS = 49
	ES     = 50 // ES, CS, SS, DS, FS, GS: 50..55
	FSBase = 58
	GSBase = 59
	MXCSR  = 64
	FCW    = 65
	FSW    = 66

	// NumRegs is the number of register columns a Row tracks
	// (0..FSW). Rules for higher numbers are counted in Row.Untracked
	// and otherwise ignored: nothing an unwinder restores lives there.
	NumRegs = 67
)

var regNames = [...]string{
	"rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip",
}

// RegName returns the psABI name of a DWARF register number ("rbx",
// "xmm6", "r33" for numbers without a short name).
func RegName(r uint64) string {
	switch {
	case r < uint64(len(regNames)):
		return regNames[r]
	case r >= XMM0 && r <= XMM15:
		return "xmm" + itoa(r-XMM0)
	case r >= ST0 && r < ST0+8:
		return "st" + itoa(r-ST0)
	case r >= MM0 && r < MM0+8:
		return "mm" + itoa(r-MM0)
	case r == RFLAGS:
		return "rflags"
	}
	return "r" + itoa(r)
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(b[i:])
}
