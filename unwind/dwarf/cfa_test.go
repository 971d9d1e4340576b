package dwarf

import (
	"errors"
	"testing"
)

// ehCIE is a GCC-style .eh_frame CIE at offset 0, 24 bytes.
var ehCIE = cat(
	u32(20),        // length
	u32(0),         // CIE id 0: a CIE
	b(1),           // version 1
	b('z', 'R', 0), // augmentation "zR"
	b(1),           // code alignment factor 1
	b(0x78),        // data alignment factor -8 (SLEB128)
	b(16),          // return address column 16 (rip), a byte in version 1
	b(1),           // augmentation data length
	b(0x1b),        // R: FDE pointers DW_EH_PE_pcrel|DW_EH_PE_sdata4
	b(0x0c, 7, 8),  // DW_CFA_def_cfa rsp+8
	b(0x90, 1),     // DW_CFA_offset r16 (rip) at cfa-8 (1 * -8)
	b(0, 0),        // DW_CFA_nop padding
)

// ehSectionAddr is where the test sections are loaded.
const ehSectionAddr = 0x2000

// ehFDE builds an FDE at offset 24 that follows ehCIE and covers
// [begin, begin+size), with the given instructions. It is not padded to
// the address size (the format does not require it), so a truncated
// operand at the end stays truncated.
func ehFDE(begin uint64, size uint32, prog []byte) []byte {
	const fdeOff = 24
	pcField := uint64(ehSectionAddr + fdeOff + 8)
	return cat(
		u32(uint32(4+4+4+1+len(prog))), // length
		u32(fdeOff+4),                  // CIE pointer: back from this field to offset 0
		u32(uint32(begin-pcField)),     // pc_begin, pcrel sdata4: begin - address of this field
		u32(size),                      // pc_range, sdata4 (no pcrel applied)
		b(0),                           // augmentation data length 0
		prog,
	)
}

func ehTable(t *testing.T, prog []byte) (*Table, *FDE) {
	t.Helper()
	sec := cat(ehCIE, ehFDE(0x1000, 0x200, prog), u32(0)) // zero terminator
	tab, err := ParseEHFrame(sec, ehSectionAddr, Bases{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.FDEs) != 1 {
		t.Fatalf("%d FDEs", len(tab.FDEs))
	}
	return tab, tab.FDEs[0]
}

// TestCFAProgram runs one annotated program through every kind of
// instruction and checks the row at addresses inside each region.
func TestCFAProgram(t *testing.T) {
	prog := cat(
		// 0x1000: CIE row: rsp+8, ra at c-8.
		b(0x41),                      // DW_CFA_advance_loc 1 -> 0x1001 (push rbp)
		b(0x0e, 16),                  // DW_CFA_def_cfa_offset 16
		b(0x86, 2),                   // DW_CFA_offset r6 (rbp) at c-16
		b(0x43),                      // DW_CFA_advance_loc 3 -> 0x1004 (mov rbp, rsp)
		b(0x0d, 6),                   // DW_CFA_def_cfa_register rbp
		b(0x11, 12, 3),               // DW_CFA_offset_extended_sf r12, 3*-8 = c-24
		b(0x02, 0x10),                // DW_CFA_advance_loc1 16 -> 0x1014
		b(0x0a),                      // DW_CFA_remember_state
		b(0x0c, 7, 8),                // DW_CFA_def_cfa rsp+8 (an epilogue)
		b(0xc6),                      // DW_CFA_restore rbp -> the CIE's rule: unspecified
		b(0x06, 12),                  // DW_CFA_restore_extended r12
		b(0x41),                      // DW_CFA_advance_loc 1 -> 0x1015
		b(0x0b),                      // DW_CFA_restore_state: rbp+16, rbp c-16, r12 c-24 again
		b(0x14, 3, 2),                // DW_CFA_val_offset rbx, 2*-8: value cfa-16
		b(0x09, 13, 14),              // DW_CFA_register r13 in r14
		b(0x08, 15),                  // DW_CFA_same_value r15
		b(0x07, 0),                   // DW_CFA_undefined rax
		b(0x03, 0xeb, 0x00),          // DW_CFA_advance_loc2 0xeb -> 0x1100
		b(0x2e, 0x20),                // DW_CFA_GNU_args_size 32
		b(0x2f, 14, 2),               // DW_CFA_GNU_negative_offset_extended r14, -(2*-8) = c+16
		b(0x15, 3, 0x7f),             // DW_CFA_val_offset_sf rbx, -1*-8: value cfa+8
		b(0x10, 15, 2, 0x77, 0x08),   // DW_CFA_expression r15: DW_OP_breg7 +8
		b(0x16, 13, 1, 0x31),         // DW_CFA_val_expression r13: DW_OP_lit1
		b(0x04, 0x80, 0, 0, 0),       // DW_CFA_advance_loc4 0x80 -> 0x1180
		b(0x0f, 3, 0x76, 0x58, 0x06), // DW_CFA_def_cfa_expression: DW_OP_breg6 -40; DW_OP_deref
		b(0x05, 3, 4),                // DW_CFA_offset_extended rbx, 4*-8 = c-32
		b(0x5f),                      // DW_CFA_advance_loc 31 -> 0x119f
		b(0x12, 7, 0x7e),             // DW_CFA_def_cfa_sf rsp, -2*-8 = +16
		b(0x13, 0x7d),                // DW_CFA_def_cfa_offset_sf -3*-8 = +24
		b(0x41),                      // DW_CFA_advance_loc 1 -> 0x11a0
		b(0x0c, 7, 8),                // DW_CFA_def_cfa rsp+8
		b(0x07, 16),                  // DW_CFA_undefined rip: outermost frame
	)
	_, fde := ehTable(t, prog)
	regs := []uint64{RAX, RBX, RBP, R12, R13, R14, R15, RA}
	for _, tc := range []struct {
		pc   uint64
		want string
	}{
		{0x1000, "rsp+8 rax=u rbx=u rbp=u r12=u r13=u r14=u r15=u ra=c-8"},
		{0x1001, "rsp+16 rax=u rbx=u rbp=c-16 r12=u r13=u r14=u r15=u ra=c-8"},
		{0x1003, "rsp+16 rax=u rbx=u rbp=c-16 r12=u r13=u r14=u r15=u ra=c-8"},
		{0x1004, "rbp+16 rax=u rbx=u rbp=c-16 r12=c-24 r13=u r14=u r15=u ra=c-8"},
		{0x1013, "rbp+16 rax=u rbx=u rbp=c-16 r12=c-24 r13=u r14=u r15=u ra=c-8"},
		{0x1014, "rsp+8 rax=u rbx=u rbp=u r12=u r13=u r14=u r15=u ra=c-8"},
		{0x1015, "rbp+16 rax=u rbx=v-16 rbp=c-16 r12=c-24 r13=r14 (r14) r14=u r15=s ra=c-8"},
		{0x10ff, "rbp+16 rax=u rbx=v-16 rbp=c-16 r12=c-24 r13=r14 (r14) r14=u r15=s ra=c-8"},
		{0x1100, "rbp+16 rax=u rbx=v+8 rbp=c-16 r12=c-24 r13=vexp r14=c+16 r15=exp ra=c-8"},
		{0x1180, "exp rax=u rbx=c-32 rbp=c-16 r12=c-24 r13=vexp r14=c+16 r15=exp ra=c-8"},
		{0x119f, "rsp+24 rax=u rbx=c-32 rbp=c-16 r12=c-24 r13=vexp r14=c+16 r15=exp ra=c-8"},
		{0x11ff, "rsp+8 rax=u rbx=c-32 rbp=c-16 r12=c-24 r13=vexp r14=c+16 r15=exp ra=u"},
	} {
		row, err := fde.RowAt(tc.pc)
		if err != nil {
			t.Fatalf("RowAt(%#x): %v", tc.pc, err)
		}
		if got := rowString(row, regs...); got != tc.want {
			t.Errorf("RowAt(%#x):\n got %s\nwant %s", tc.pc, got, tc.want)
		}
		if row.Loc > tc.pc || row.End <= tc.pc {
			t.Errorf("RowAt(%#x): range [%#x,%#x)", tc.pc, row.Loc, row.End)
		}
	}
	row, _ := fde.RowAt(0x1100)
	if row.ArgsSize != 32 || row.Regs[RAX].Kind != RuleUndefined || row.Regs[RBP].Kind != RuleOffset {
		t.Errorf("row at 0x1100: %+v", row)
	}
	// The undefined rax rule and the unspecified r12 at 0x1014 differ
	// though binutils prints both as "u".
	row, _ = fde.RowAt(0x1014)
	if row.Regs[R12].Kind != RuleUnspecified {
		t.Errorf("restored r12: %v", row.Regs[R12].Kind)
	}
	rows, err := fde.Rows()
	if err != nil {
		t.Fatal(err)
	}
	locs := []uint64{0x1000, 0x1001, 0x1004, 0x1014, 0x1015, 0x1100, 0x1180, 0x119f, 0x11a0}
	if len(rows) != len(locs) {
		t.Fatalf("%d rows, want %d", len(rows), len(locs))
	}
	for i, r := range rows {
		end := uint64(0x1200)
		if i+1 < len(locs) {
			end = locs[i+1]
		}
		if r.Loc != locs[i] || r.End != end {
			t.Errorf("row %d: [%#x,%#x), want [%#x,%#x)", i, r.Loc, r.End, locs[i], end)
		}
	}
	if _, err := fde.RowAt(0x1200); !errors.Is(err, ErrNoFDE) {
		t.Errorf("RowAt(end): %v", err)
	}
}

// TestRememberStateIsACopy: remembering then changing a rule must not
// change what restore_state brings back. An interpreter that remembers a
// reference to its rule map (delve) restores the changed rules.
func TestRememberStateIsACopy(t *testing.T) {
	_, fde := ehTable(t, cat(
		b(0x0a),     // DW_CFA_remember_state (rbx unspecified, rsp+8)
		b(0x83, 2),  // DW_CFA_offset rbx at c-16
		b(0x0e, 32), // DW_CFA_def_cfa_offset 32
		b(0x41),     // DW_CFA_advance_loc 1 -> 0x1001
		b(0x0a),     // DW_CFA_remember_state (rbx c-16, rsp+32)
		b(0x0a),     // DW_CFA_remember_state (same, nested)
		b(0x83, 3),  // DW_CFA_offset rbx at c-24
		b(0x41),     // DW_CFA_advance_loc 1 -> 0x1002
		b(0x0b),     // DW_CFA_restore_state -> rbx c-16, rsp+32
		b(0x41),     // DW_CFA_advance_loc 1 -> 0x1003
		b(0x0b),     // DW_CFA_restore_state -> the same again
		b(0x0b),     // DW_CFA_restore_state -> rbx unspecified, rsp+8
	))
	for pc, want := range map[uint64]string{
		0x1000: "rsp+32 rbx=c-16",
		0x1001: "rsp+32 rbx=c-24",
		0x1002: "rsp+32 rbx=c-16",
		0x1003: "rsp+8 rbx=u",
	} {
		row, err := fde.RowAt(pc)
		if err != nil {
			t.Fatal(err)
		}
		if got := rowString(row, RBX); got != want {
			t.Errorf("%#x: %s, want %s", pc, got, want)
		}
	}
}

// TestRestoreRestoresAnyRule: DW_CFA_restore brings back the CIE's rule
// whatever its kind (delve turns every restored rule into an offset).
func TestRestoreRestoresAnyRule(t *testing.T) {
	cie := cat(
		u32(20), u32(0), b(1), b('z', 'R', 0), b(1), b(0x78), b(16), b(1), b(0x1b),
		b(0x0c, 7, 8), // DW_CFA_def_cfa rsp+8
		b(0x90, 1),    // DW_CFA_offset rip at c-8
		b(0x08, 3),    // DW_CFA_same_value rbx (CIE rule)
	)
	sec := cat(cie, ehFDE(0x1000, 0x10, cat(
		b(0x83, 2), // DW_CFA_offset rbx at c-16
		b(0x41),    // DW_CFA_advance_loc 1
		b(0xc3),    // DW_CFA_restore rbx -> same_value
	)))
	tab, err := ParseEHFrame(sec, ehSectionAddr, Bases{})
	if err != nil {
		t.Fatal(err)
	}
	row, err := tab.FDEs[0].RowAt(0x1001)
	if err != nil {
		t.Fatal(err)
	}
	if row.Regs[RBX].Kind != RuleSameValue {
		t.Errorf("restored rbx: %v", row.Regs[RBX].Kind)
	}
}

func TestSetLoc(t *testing.T) {
	// The FDE's instructions start at offset 24+17 = 41, address 0x2029;
	// the DW_CFA_set_loc operand follows its opcode at 0x202a.
	_, fde := ehTable(t, cat(
		b(0x01), s32(0x1080-0x202a), // DW_CFA_set_loc 0x1080 (pcrel sdata4, the FDE encoding)
		b(0x0e, 24), // DW_CFA_def_cfa_offset 24
	))
	for pc, want := range map[uint64]string{0x107f: "rsp+8", 0x1080: "rsp+24", 0x11ff: "rsp+24"} {
		row, err := fde.RowAt(pc)
		if err != nil {
			t.Fatal(err)
		}
		if got := rowString(row); got != want {
			t.Errorf("%#x: %s, want %s", pc, got, want)
		}
	}
}

func TestCFAProgramErrors(t *testing.T) {
	deep := make([]byte, MaxStateDepth+1)
	for i := range deep {
		deep[i] = 0x0a // DW_CFA_remember_state
	}
	for _, tc := range []struct {
		name string
		prog []byte
		want error
	}{
		{"restore_state with nothing remembered", b(0x0b), ErrStateStack},
		{"remember_state too deep", deep, ErrStateStack},
		{"unknown opcode 0x3f", b(0x3f), ErrOpcode},
		{"DW_CFA_GNU_window_save is not x86", b(0x2d), ErrOpcode},
		{"truncated ULEB128", b(0x0e, 0x80), ErrTruncated},
		{"truncated advance_loc4", b(0x04, 1, 0), ErrTruncated},
		{"expression longer than the FDE", b(0x10, 3, 0x40, 0x30), ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, fde := ehTable(t, tc.prog)
			_, err := fde.RowAt(0x11ff)
			wantErr(t, err, tc.want)
			var pe *ProgramError
			if !errors.As(err, &pe) || pe.Entry != 24 {
				t.Errorf("error %v is not a ProgramError for the FDE at 24", err)
			}
		})
	}
}

// TestRegisterBeyondColumns: rules for registers past the tracked columns
// are counted, not stored, and never fail the program.
func TestRegisterBeyondColumns(t *testing.T) {
	_, fde := ehTable(t, cat(
		b(0x05, 0x80, 0x01, 2), // DW_CFA_offset_extended r128 at c-16
		b(0x07, 0xff, 0x7f),    // DW_CFA_undefined r16383
	))
	row, err := fde.RowAt(0x1000)
	if err != nil {
		t.Fatal(err)
	}
	if row.Untracked != 2 {
		t.Errorf("Untracked %d", row.Untracked)
	}
}

// TestDefCFARegisterAfterExpression: DW_CFA_def_cfa_register after a
// DW_CFA_def_cfa_expression makes the CFA register+offset again, with the
// offset the register+offset rule had before the expression (libgcc's
// execute_cfa_program and GDB's keep it). Delve only changes the register
// and leaves the expression in force.
func TestDefCFARegisterAfterExpression(t *testing.T) {
	_, fde := ehTable(t, cat(
		b(0x0e, 16),                  // DW_CFA_def_cfa_offset 16: rsp+16
		b(0x41),                      // DW_CFA_advance_loc 1 -> 0x1001
		b(0x0f, 3, 0x76, 0x58, 0x06), // DW_CFA_def_cfa_expression: DW_OP_breg6 -40; DW_OP_deref
		b(0x41),                      // DW_CFA_advance_loc 1 -> 0x1002
		b(0x0d, 6),                   // DW_CFA_def_cfa_register rbp: rbp+16
		b(0x41),                      // DW_CFA_advance_loc 1 -> 0x1003
		b(0x0f, 3, 0x76, 0x58, 0x06), // DW_CFA_def_cfa_expression again
		b(0x41),                      // DW_CFA_advance_loc 1 -> 0x1004
		b(0x0e, 32),                  // DW_CFA_def_cfa_offset 32: rbp+32
	))
	for pc, want := range map[uint64]string{
		0x1000: "rsp+16",
		0x1001: "exp",
		0x1002: "rbp+16",
		0x1003: "exp",
		0x1004: "rbp+32",
	} {
		row, err := fde.RowAt(pc)
		if err != nil {
			t.Fatal(err)
		}
		if got := rowString(row); got != want {
			t.Errorf("%#x: CFA %s, want %s", pc, got, want)
		}
	}
}
