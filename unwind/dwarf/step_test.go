package dwarf

import (
	"errors"
	"testing"
)

// drapProgram is what GCC 12 -O2 emits for a function that realigns its
// stack with a dynamic realignment argument pointer (testdata/frames.c,
// drap()), trimmed to rbp and r15:
//
//	lea r10, [rsp+8]; and rsp, -64; push qword [r10-8]   ; 0x1000
//	push rbp; mov rbp, rsp                                 ; 0x1026
//	push r15                                               ; 0x1028
//	... push r10 (at rbp-40)                               ; 0x1039
var drapProgram = cat(
	b(0x45),                      // DW_CFA_advance_loc 5 -> 0x1005
	b(0x0c, 10, 0),               // DW_CFA_def_cfa r10+0
	b(0x61),                      // DW_CFA_advance_loc 33 -> 0x1026
	b(0x10, 6, 2, 0x76, 0x00),    // DW_CFA_expression rbp: DW_OP_breg6 0
	b(0x42),                      // DW_CFA_advance_loc 2 -> 0x1028
	b(0x10, 15, 2, 0x76, 0x78),   // DW_CFA_expression r15: DW_OP_breg6 -8
	b(0x51),                      // DW_CFA_advance_loc 17 -> 0x1039
	b(0x0f, 3, 0x76, 0x58, 0x06), // DW_CFA_def_cfa_expression: DW_OP_breg6 -40; DW_OP_deref
)

// drapStack is the stack of a frame stopped in drap() after 0x1039.
func drapStack() (*Registers, *fakeMem) {
	const cfa, rbp = 0x7fff1000, 0x7fff0f80
	mem := &fakeMem{}
	mem.Put64(cfa-8, 0x401234) // the return address, below the CFA
	mem.Put64(cfa, 0xbadbad)   // what a second dereference would read
	mem.Put64(rbp, 0x7fff2000) // saved rbp
	mem.Put64(rbp-8, 0x1515)   // saved r15
	mem.Put64(rbp-40, cfa)     // saved r10 = the CFA (DRAP)
	regs := &Registers{}
	regs.Set(RBP, rbp)
	regs.Set(RSP, rbp-0x100)
	regs.Set(R10, 0xdead) // clobbered since
	regs.Set(RA, 0x1040)
	return regs, mem
}

// TestDRAP unwinds GCC's stack-realignment pattern. It is also the
// regression test for delve's first bug: the value of a
// DW_CFA_def_cfa_expression is the CFA itself; delve dereferences it once
// more (here it would get 0xbadbad).
func TestDRAP(t *testing.T) {
	tab, _ := ehTable(t, drapProgram)
	regs, mem := drapStack()
	fr, err := Unwind(tab, regs, mem, true, SysVPreserved)
	if err != nil {
		t.Fatal(err)
	}
	c := &fr.Caller
	if fr.CFA != 0x7fff1000 {
		t.Fatalf("CFA %#x, want 0x7fff1000 (0xbadbad is one dereference too many)", fr.CFA)
	}
	for _, tc := range []struct {
		reg        uint64
		val, addr  uint64
		fromMemory bool
	}{
		{RA, 0x401234, 0x7fff0ff8, true},
		{RSP, 0x7fff1000, 0, false},
		{RBP, 0x7fff2000, 0x7fff0f80, true},
		{R15, 0x1515, 0x7fff0f78, true},
	} {
		v, ok := c.Get(tc.reg)
		if !ok || v != tc.val || c.Saved.Has(tc.reg) != tc.fromMemory || c.Addr[tc.reg] != tc.addr {
			t.Errorf("%s: %#x known %v saved %v at %#x; want %#x at %#x", RegName(tc.reg), v, ok, c.Saved.Has(tc.reg), c.Addr[tc.reg], tc.val, tc.addr)
		}
	}
	if _, ok := c.Get(R10); ok {
		t.Error("r10 (volatile, unspecified) known in the caller")
	}
	// Before the expression row: CFA is r10+0.
	regs.Set(RA, 0x1030)
	regs.Set(R10, 0x7fff1000)
	fr, err = Unwind(tab, regs, mem, true, SysVPreserved)
	if err != nil || fr.CFA != 0x7fff1000 || fr.Caller.Val[RA] != 0x401234 {
		t.Fatalf("at 0x1030: %+v, %v", fr, err)
	}
}

// TestValOffsetIsScaled is the regression test for delve's second bug:
// DW_CFA_val_offset's operand is factored by the data alignment factor
// like DW_CFA_offset's (DWARF 5 6.4.2.3); delve uses it unscaled.
func TestValOffsetIsScaled(t *testing.T) {
	tab, _ := ehTable(t, cat(
		b(0x0e, 32),   // DW_CFA_def_cfa_offset 32
		b(0x14, 3, 2), // DW_CFA_val_offset rbx, 2: value CFA + 2*-8
		b(0x15, 6, 1), // DW_CFA_val_offset_sf rbp, 1: value CFA + 1*-8
	))
	mem := &fakeMem{}
	mem.Put64(0x5018, 0x401000) // return address at CFA-8
	var regs Registers
	regs.Set(RSP, 0x5000)
	regs.Set(RA, 0x1000)
	fr, err := Unwind(tab, &regs, mem, true, SysVPreserved)
	if err != nil {
		t.Fatal(err)
	}
	if fr.CFA != 0x5020 {
		t.Fatalf("CFA %#x", fr.CFA)
	}
	if v, _ := fr.Caller.Get(RBX); v != 0x5020-16 {
		t.Errorf("rbx %#x, want CFA-16 = %#x (CFA+2 is the unscaled bug)", v, 0x5020-16)
	}
	if v, _ := fr.Caller.Get(RBP); v != 0x5020-8 {
		t.Errorf("rbp %#x, want CFA-8", v)
	}
	if fr.Caller.Saved.Has(RBX) {
		t.Error("a val_offset register is not read from memory")
	}
}

func TestStepRules(t *testing.T) {
	tab, _ := ehTable(t, cat(
		b(0x0e, 64),                     // DW_CFA_def_cfa_offset 64
		b(0x83, 2),                      // DW_CFA_offset rbx at c-16
		b(0x09, 12, 14),                 // DW_CFA_register r12 in r14
		b(0x08, 13),                     // DW_CFA_same_value r13
		b(0x07, 15),                     // DW_CFA_undefined r15
		b(0x16, 4, 2, 0x23, 0x10),       // DW_CFA_val_expression rsi: CFA; DW_OP_plus_uconst 16
		b(0x10, 5, 3, 0x09, 0xe8, 0x22), // DW_CFA_expression rdi: CFA; DW_OP_const1s -24; DW_OP_plus
		b(0x05, 23, 6),                  // DW_CFA_offset_extended xmm6 at c-48
		b(0x86, 7),                      // DW_CFA_offset rbp at c-56: unreadable below
	))
	const cfa = 0x8040
	mem := &fakeMem{}
	mem.Put64(cfa-48, 0x6666, 0x6667, 0, 0x2424, 0xbbbb, 0x401000) // xmm6 lo/hi, -, rdi, rbx, ra
	var regs Registers
	for r := uint64(0); r <= R15; r++ {
		regs.Set(r, 0x100+r)
	}
	regs.Set(RSP, 0x8000)
	regs.Set(RA, 0x1010)
	fr, err := Unwind(tab, &regs, mem, true, SysVPreserved)
	if err != nil {
		t.Fatal(err)
	}
	c := &fr.Caller
	check := func(r, want uint64, known bool) {
		t.Helper()
		v, ok := c.Get(r)
		if ok != known || (known && v != want) {
			t.Errorf("%s: %#x known %v, want %#x known %v", RegName(r), v, ok, want, known)
		}
	}
	check(RA, 0x401000, true)
	check(RSP, cfa, true)
	check(RBX, 0xbbbb, true)
	check(R12, 0x100+R14, true)
	check(R13, 0x100+R13, true)
	check(R15, 0, false)
	check(RSI, cfa+16, true)
	check(RDI, 0x2424, true)
	check(RAX, 0, false) // volatile and unspecified
	check(RBP, 0, false) // lost: unreadable
	check(XMM0+6, 0x6666, true)
	if c.High[XMM0+6] != 0x6667 || c.Addr[XMM0+6] != cfa-48 {
		t.Errorf("xmm6 high %#x at %#x", c.High[XMM0+6], c.Addr[XMM0+6])
	}
	if c.Addr[RDI] != cfa-24 || !c.Saved.Has(RDI) {
		t.Errorf("rdi from %#x", c.Addr[RDI])
	}
	if !fr.Lost.Has(RBP) || fr.LostErr == nil {
		t.Errorf("rbp not reported lost: %v", fr.LostErr)
	}
	var re *ReadError
	if !errors.As(fr.LostErr, &re) || re.Addr != cfa-56 {
		t.Errorf("LostErr %v", fr.LostErr)
	}
	// Windows: rsi and rdi are preserved too; here both have rules, so
	// check rax stays unknown and r14 (unspecified, preserved) is kept.
	fr, err = Unwind(tab, &regs, mem, true, WindowsPreserved)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := fr.Caller.Get(R14); !ok || v != 0x100+R14 {
		t.Errorf("r14 under WindowsPreserved: %#x %v", v, ok)
	}
	if _, ok := fr.Caller.Get(RAX); ok {
		t.Error("rax known")
	}
}

func TestStepEnds(t *testing.T) {
	// _start's CIE marks the return address undefined.
	tab, _ := ehTable(t, b(0x07, 16)) // DW_CFA_undefined rip
	var regs Registers
	regs.Set(RSP, 0x9000)
	regs.Set(RA, 0x1004)
	fr, err := Unwind(tab, &regs, &fakeMem{}, false, SysVPreserved)
	if err != nil {
		t.Fatal(err)
	}
	if !fr.End || fr.CFA != 0x9008 {
		t.Errorf("End %v CFA %#x", fr.End, fr.CFA)
	}
}

func TestStepErrors(t *testing.T) {
	tab, _ := ehTable(t, nil)
	var regs Registers
	regs.Set(RA, 0x1004)
	// rsp unknown: no CFA.
	if _, err := Unwind(tab, &regs, &fakeMem{}, true, SysVPreserved); !errors.Is(err, ErrUnknownRegister) {
		t.Errorf("unknown rsp: %v", err)
	}
	// The return address unreadable.
	regs.Set(RSP, 0x9000)
	_, err := Unwind(tab, &regs, &fakeMem{}, true, SysVPreserved)
	var re *ReadError
	if !errors.As(err, &re) || re.Addr != 0x9000 {
		t.Errorf("unreadable return address: %v", err)
	}
	// No FDE.
	regs.Set(RA, 0x5000)
	if _, err := Unwind(tab, &regs, &fakeMem{}, true, SysVPreserved); !errors.Is(err, ErrNoFDE) {
		t.Errorf("no FDE: %v", err)
	}
	// PC unknown.
	if _, err := Unwind(tab, &Registers{}, &fakeMem{}, true, SysVPreserved); !errors.Is(err, ErrUnknownRegister) {
		t.Errorf("no pc: %v", err)
	}
	// A CFA expression that fails.
	tab2, _ := ehTable(t, b(0x0f, 1, 0x06)) // DW_CFA_def_cfa_expression: DW_OP_deref on nothing
	regs.Set(RA, 0x1000)
	if _, err := Unwind(tab2, &regs, &fakeMem{}, true, SysVPreserved); !errors.Is(err, ErrStackUnderflow) {
		t.Errorf("bad CFA expression: %v", err)
	}
}

// TestLookupPC: a return address can be the first byte past its function
// (a call to a noreturn function ends it); the caller's FDE is found with
// PC-1, except for the innermost frame and after a signal frame.
func TestLookupPC(t *testing.T) {
	tab, _ := ehTable(t, nil) // FDE [0x1000, 0x1200)
	mem := &fakeMem{}
	mem.Put64(0x9000, 0x401000)
	var regs Registers
	regs.Set(RSP, 0x9000)
	regs.Set(RA, 0x1200)
	if _, err := Unwind(tab, &regs, mem, false, SysVPreserved); err != nil {
		t.Errorf("caller frame at the end of its function: %v", err)
	}
	if _, err := Unwind(tab, &regs, mem, true, SysVPreserved); !errors.Is(err, ErrNoFDE) {
		t.Errorf("exact lookup past the end: %v", err)
	}
	if LookupPC(0x1200, false) != 0x11ff || LookupPC(0x1200, true) != 0x1200 || LookupPC(0, false) != 0 {
		t.Error("LookupPC")
	}
}

// TestSignalFrame: the 'S' augmentation marks the frame; Step reports it
// so the walker looks the interrupted PC up exactly.
func TestSignalFrame(t *testing.T) {
	cie := cat(
		u32(20),             // length
		u32(0),              // CIE id
		b(1),                // version 1
		b('z', 'R', 'S', 0), // augmentation "zRS"
		b(1),                // code alignment 1
		b(0x78),             // data alignment -8
		b(16),               // return address column
		b(1),                // augmentation data length
		b(0x1b),             // R: pcrel sdata4
		b(0x0c, 7, 8),       // DW_CFA_def_cfa rsp+8
		b(0x90, 1),          // DW_CFA_offset rip at c-8
		b(0),                // DW_CFA_nop
	)
	tab, err := ParseEHFrame(cat(cie, ehFDE(0x1000, 0x10, nil)), ehSectionAddr, Bases{})
	if err != nil {
		t.Fatal(err)
	}
	if !tab.FDEs[0].CIE.Signal {
		t.Fatal("CIE not a signal frame")
	}
	mem := &fakeMem{}
	mem.Put64(0x9000, 0x401000)
	var regs Registers
	regs.Set(RSP, 0x9000)
	regs.Set(RA, 0x1004)
	fr, err := Unwind(tab, &regs, mem, false, SysVPreserved)
	if err != nil || !fr.Signal {
		t.Fatalf("%+v %v", fr, err)
	}
}
