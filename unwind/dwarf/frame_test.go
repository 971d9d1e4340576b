package dwarf

import (
	"errors"
	"testing"
)

// TestAugmentationPLR parses a C++-style CIE "zPLR" and its FDE's LSDA.
func TestAugmentationPLR(t *testing.T) {
	const addr = 0x3000
	sec := cat(
		// CIE at 0 (addr 0x3000)
		u32(28),                  // length
		u32(0),                   // CIE id
		b(1),                     // version
		b('z', 'P', 'L', 'R', 0), // augmentation "zPLR" (offsets 9..13)
		b(1),                     // code alignment 1 (14)
		b(0x78),                  // data alignment -8 (15)
		b(16),                    // return address column (16)
		b(7),                     // augmentation data length (17)
		b(0x9b),                  // P: DW_EH_PE_indirect|pcrel|sdata4 (18)
		s32(0x5000-0x3013),       // personality pointer at 0x5000: field at 0x3013 (19)
		b(0x1b),                  // L: pcrel sdata4 (23)
		b(0x1b),                  // R: pcrel sdata4 (24)
		b(0x0c, 7, 8),            // DW_CFA_def_cfa rsp+8 (25)
		b(0x90, 1),               // DW_CFA_offset rip c-8 (28)
		b(0, 0),                  // padding (30..31)
		// FDE at 32 (addr 0x3020)
		u32(24),            // length
		u32(36),            // CIE pointer: 36 back from this field
		s32(0x1000-0x3028), // pc_begin 0x1000 (field at 0x3028)
		u32(0x80),          // pc_range
		b(4),               // augmentation data length
		s32(0x6000-0x3031), // LSDA 0x6000 (field at 0x3031)
		b(0x41, 0x0e, 16),  // DW_CFA_advance_loc 1; DW_CFA_def_cfa_offset 16
		u32(0),             // terminator
	)
	tab, err := ParseEHFrame(sec, addr, Bases{})
	if err != nil {
		t.Fatal(err)
	}
	f := tab.FDEs[0]
	cie := f.CIE
	if !cie.HasPersonality || !cie.PersonalityIndirect || cie.Personality != 0x5000 {
		t.Errorf("personality %#x indirect %v", cie.Personality, cie.PersonalityIndirect)
	}
	if !f.HasLSDA || f.LSDA != 0x6000 || f.Begin != 0x1000 || f.End != 0x1080 {
		t.Errorf("FDE %+v", f)
	}
	// With memory, the indirect personality pointer is followed.
	s := NewEHFrame(sec, addr, Bases{})
	mem := &fakeMem{}
	mem.Put64(0x5000, 0x401777)
	s.Mem = mem
	c, err := s.CIEAt(0)
	if err != nil || c.Personality != 0x401777 || c.PersonalityIndirect {
		t.Errorf("indirect personality: %+v %v", c, err)
	}
}

// withLen prefixes a body with its 32-bit length.
func withLen(body ...[]byte) []byte {
	bb := cat(body...)
	return cat(u32(uint32(len(bb))), bb)
}

// withLen64 prefixes a body with the 64-bit DWARF length escape and length.
func withLen64(body ...[]byte) []byte {
	bb := cat(body...)
	return cat(u32(0xffffffff), u64(uint64(len(bb))), bb)
}

// TestDebugFrameVersions: .debug_frame CIEs of versions 1, 3 and 4 and the
// 64-bit DWARF format.
func TestDebugFrameVersions(t *testing.T) {
	cie1 := withLen(
		u32(0xffffffff), // CIE id
		b(1),            // version 1
		b(0),            // augmentation ""
		b(1),            // code alignment 1
		b(0x78),         // data alignment -8
		b(16),           // return address column (a byte)
		b(0x0c, 7, 8),   // DW_CFA_def_cfa rsp+8
		b(0x90, 1),      // DW_CFA_offset rip c-8
	)
	fde1 := withLen(
		u32(0),            // CIE pointer: section offset 0
		u64(0x140001000),  // initial_location (8 bytes)
		u64(0x40),         // address_range
		b(0x41, 0x0e, 16), // DW_CFA_advance_loc 1; DW_CFA_def_cfa_offset 16
	)
	cie3Off := len(cie1) + len(fde1)
	cie3 := withLen(
		u32(0xffffffff), // CIE id
		b(3),            // version 3
		b(0),            // augmentation ""
		b(1),            // code alignment
		b(0x78),         // data alignment -8
		b(0x90, 0x00),   // return address column 16, a ULEB128 (2 bytes)
		b(0x0c, 7, 8),   // DW_CFA_def_cfa rsp+8
		b(0x90, 1),      // DW_CFA_offset rip c-8
	)
	fde3 := withLen(
		u32(uint32(cie3Off)), // CIE pointer
		u64(0x140002000),     // initial_location
		u64(0x40),            // address_range
		b(0x41, 0x0e, 24),    // DW_CFA_advance_loc 1; DW_CFA_def_cfa_offset 24
	)
	cie4Off := cie3Off + len(cie3) + len(fde3)
	cie4 := withLen64(
		u64(^uint64(0)), // CIE id, 8 bytes in the 64-bit format
		b(4),            // version 4
		b(0),            // augmentation ""
		b(8),            // address_size
		b(0),            // segment_selector_size
		b(1, 0x78, 16),  // code alignment, data alignment, return column
		b(0x0c, 7, 8),   // DW_CFA_def_cfa rsp+8
		b(0x90, 1),      // DW_CFA_offset rip c-8
	)
	fde4 := withLen64(
		u64(uint64(cie4Off)), // CIE pointer, 8 bytes
		u64(0x140003000),     // initial_location
		u64(0x40),            // address_range
		b(0x41, 0x0e, 32),    // DW_CFA_advance_loc 1; DW_CFA_def_cfa_offset 32
	)
	sec := cat(cie1, fde1, cie3, fde3, cie4, fde4)
	tab, err := ParseDebugFrame(sec, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.FDEs) != 3 {
		t.Fatalf("%d FDEs", len(tab.FDEs))
	}
	for i, want := range []uint64{16, 24, 32} {
		f := tab.FDEs[i]
		row, err := f.RowAt(f.Begin + 1)
		if err != nil {
			t.Fatal(err)
		}
		if row.CFA.Offset != int64(want) || row.Regs[RA].Offset != -8 || f.CIE.RAReg != 16 {
			t.Errorf("FDE %d (CIE v%d): %s", i, f.CIE.Version, rowString(row, RA))
		}
	}
	if v := tab.FDEs[2].CIE; v.Version != 4 || !v.is64 || v.AddressSize != 8 {
		t.Errorf("v4 CIE %+v", v)
	}
	if f, err := tab.Lookup(0x140002020); err != nil || f.Begin != 0x140002000 {
		t.Errorf("Lookup: %v %v", f, err)
	}
	if _, err := tab.Lookup(0x140001040); !errors.Is(err, ErrNoFDE) {
		t.Errorf("Lookup past the end: %v", err)
	}
	// A zero length in .debug_frame is skipped, not an end.
	tab, err = ParseDebugFrame(cat(cie1, u32(0), withLen(u32(0), u64(0x1000), u64(0x10))), 0)
	if err != nil || len(tab.FDEs) != 1 {
		t.Errorf("after padding: %d FDEs, %v", len(tab.FDEs), err)
	}
}

func TestEntryErrors(t *testing.T) {
	good := cat(ehCIE, ehFDE(0x1000, 0x10, nil))
	cieWith := func(version byte, aug string) []byte {
		body := cat(u32(0), b(version), []byte(aug), b(0), b(1, 0x78, 16), b(0x0c, 7, 8))
		return cat(u32(uint32(len(body))), body)
	}
	for _, tc := range []struct {
		name string
		sec  []byte
		want error
	}{
		{"length past the section", cat(u32(100), u32(0)), ErrLength},
		{"CIE version 2", cieWith(2, ""), ErrVersion},
		{"augmentation without z", cieWith(1, "xy"), ErrAugmentation},
		{"FDE whose CIE pointer leads nowhere", cat(good[:24], u32(12), u32(1000), u64(0)), ErrCIEPointer},
		{"FDE whose CIE pointer leads to an FDE", cat(good, u32(12), u32(49-24), u64(0)), ErrCIEPointer},
		{"64-bit length truncated", cat(u32(0xffffffff), u32(1)), ErrTruncated},
		{"bad R encoding", cat(u32(14), u32(0), b(1, 'z', 'R', 0, 1, 0x78, 16, 1, 0x07), b(0, 0, 0)), ErrEncoding},
		{"aug data longer than the CIE", cat(u32(12), u32(0), b(1, 'z', 0, 1, 0x78, 16, 9, 0)), ErrAugmentation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := ParseEHFrame(tc.sec, 0x2000, Bases{})
			wantErr(t, err, tc.want)
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Section != ".eh_frame" {
				t.Errorf("%v is not a FormatError", err)
			}
			if tab == nil {
				t.Fatal("no table")
			}
		})
	}
}

// TestBadEntryKeepsOthers: an FDE that fails (here, a CIE pointer into
// the middle of nowhere) is reported and the walk goes on.
func TestBadEntryKeepsOthers(t *testing.T) {
	bad := cat(u32(8), u32(2000), u32(0)) // FDE at 41: CIE pointer far back
	sec := cat(ehCIE, ehFDE(0x1000, 0x10, b(0x41)), bad)
	tab, err := ParseEHFrame(sec, ehSectionAddr, Bases{})
	if len(tab.FDEs) != 1 || len(tab.Errors) != 1 || !errors.Is(err, ErrCIEPointer) {
		t.Fatalf("%d FDEs, errors %v", len(tab.FDEs), tab.Errors)
	}
}

func TestPointerEncodings(t *testing.T) {
	mem := &fakeMem{}
	mem.Put64(0x9000, 0xabcdef)
	bases := Bases{Text: 0x100000, Data: 0x200000}
	for _, tc := range []struct {
		name string
		enc  uint8
		data []byte
		base uint64 // address of data[0]
		want uint64
		ind  bool
	}{
		{"absptr", DW_EH_PE_absptr, u64(0x401000), 0, 0x401000, false},
		{"udata2", DW_EH_PE_udata2, b(0xff, 0xff), 0, 0xffff, false},
		{"sdata2", DW_EH_PE_sdata2, b(0xff, 0xff), 0, ^uint64(0), false},
		{"udata4", DW_EH_PE_udata4, u32(0xfffffff0), 0, 0xfffffff0, false},
		{"sdata4", DW_EH_PE_sdata4, u32(0xfffffff0), 0, ^uint64(15), false},
		{"udata8", DW_EH_PE_udata8, u64(7), 0, 7, false},
		{"sdata8", DW_EH_PE_sdata8, u64(7), 0, 7, false},
		{"uleb128", DW_EH_PE_uleb128, b(0xe5, 0x8e, 0x26), 0, 624485, false},
		{"sleb128", DW_EH_PE_sleb128, b(0x7f), 0, ^uint64(0), false},
		{"pcrel sdata4", DW_EH_PE_pcrel | DW_EH_PE_sdata4, s32(-0x10), 0x3000, 0x2ff0, false},
		{"textrel udata4", DW_EH_PE_textrel | DW_EH_PE_udata4, u32(0x20), 0, 0x100020, false},
		{"datarel sdata4", DW_EH_PE_datarel | DW_EH_PE_sdata4, s32(-8), 0, 0x1ffff8, false},
		{"funcrel udata2", DW_EH_PE_funcrel | DW_EH_PE_udata2, b(0x10, 0), 0, 0x1010, false},
		{"aligned", DW_EH_PE_aligned, cat(b(0, 0, 0, 0), u64(0x1234)), 0x3004, 0x1234, false},
		{"indirect without memory", DW_EH_PE_indirect | DW_EH_PE_udata4, u32(0x9000), 0, 0x9000, true},
	} {
		c := cursor{B: tc.data}
		v, ind, err := decodePointer(&c, tc.enc, tc.base, 8, bases, 0x1000, true, nil)
		if err != nil || v != tc.want || ind != tc.ind {
			t.Errorf("%s: %#x indirect %v %v; want %#x", tc.name, v, ind, err, tc.want)
		}
		if c.Off != len(tc.data) {
			t.Errorf("%s: consumed %d of %d bytes", tc.name, c.Off, len(tc.data))
		}
	}
	c := cursor{B: u32(0x9000)}
	if v, ind, err := decodePointer(&c, DW_EH_PE_indirect|DW_EH_PE_udata4, 0, 8, bases, 0, false, mem); err != nil || ind || v != 0xabcdef {
		t.Errorf("indirect with memory: %#x %v %v", v, ind, err)
	}
	for _, enc := range []uint8{DW_EH_PE_omit, 0x05, 0x0d, 0x60, 0x70} {
		c := cursor{B: u64(0)}
		if _, _, err := decodePointer(&c, enc, 0, 8, bases, 0, false, nil); !errors.Is(err, ErrEncoding) {
			t.Errorf("encoding %#x: %v", enc, err)
		}
	}
	c = cursor{B: b(1)}
	if _, _, err := decodePointer(&c, DW_EH_PE_funcrel|DW_EH_PE_udata4, 0, 8, bases, 0, false, nil); err == nil {
		t.Error("funcrel without a function, truncated: no error")
	}
}

// TestEHFrameHdr: a hand-built .eh_frame_hdr over ehCIE plus three FDEs.
func TestEHFrameHdr(t *testing.T) {
	// .eh_frame at 0x2000: CIE, then FDEs at 24, 41 and 58 (17 bytes each).
	eh := cat(ehCIE, ehFDE(0x1000, 0x10, nil))
	fde2 := ehFDE(0x1100, 0x20, nil)
	fde3 := ehFDE(0x1200, 0x30, nil)
	// ehFDE assumes offset 24; patch the CIE pointer and pc_begin.
	patch := func(f []byte, off int, begin uint64) []byte {
		f = append([]byte(nil), f...)
		copy(f[4:], u32(uint32(off+4)))
		copy(f[8:], s32(int32(int64(begin)-int64(ehSectionAddr+off+8))))
		return f
	}
	eh = cat(eh, patch(fde2, 41, 0x1100), patch(fde3, 58, 0x1200), u32(0))
	const hdrAddr = 0x1f00
	hdr := cat(
		b(1),                    // version
		b(0x1b),                 // eh_frame_ptr_enc: pcrel sdata4
		b(0x03),                 // fde_count_enc: udata4
		b(0x3b),                 // table_enc: datarel sdata4
		s32(0x2000-(hdrAddr+4)), // eh_frame_ptr (field at 0x1f04)
		u32(3),                  // fde_count
		// table: {initial_location, fde address}, relative to 0x1f00
		s32(0x1000-hdrAddr), s32(0x2000+24-hdrAddr),
		s32(0x1100-hdrAddr), s32(0x2000+41-hdrAddr),
		s32(0x1200-hdrAddr), s32(0x2000+58-hdrAddr),
	)
	h, err := ParseEHFrameHdr(hdr, hdrAddr)
	if err != nil {
		t.Fatal(err)
	}
	if h.EHFramePtr != 0x2000 || h.Count != 3 || !h.Searchable {
		t.Fatalf("%+v", h)
	}
	sec := NewEHFrame(eh, 0x2000, Bases{})
	fin := HdrFinder{Section: sec, Hdr: h}
	for pc, want := range map[uint64]uint64{0x1000: 0x1000, 0x100f: 0x1000, 0x1100: 0x1100, 0x112f: 0x1200 /* none */, 0x122f: 0x1200} {
		f, err := fin.Lookup(pc)
		if pc == 0x112f {
			if !errors.Is(err, ErrNoFDE) {
				t.Errorf("%#x in a gap: %v %v", pc, f, err)
			}
			continue
		}
		if err != nil || f.Begin != want {
			t.Errorf("%#x: %v %v", pc, f, err)
		}
	}
	for _, pc := range []uint64{0xfff, 0x1230, 0} {
		if _, err := fin.Lookup(pc); !errors.Is(err, ErrNoFDE) {
			t.Errorf("%#x: %v", pc, err)
		}
	}
	if loc, fde, ok := h.Entry(2); !ok || loc != 0x1200 || fde != 0x2000+58 {
		t.Errorf("Entry(2) %#x %#x", loc, fde)
	}
	// Errors: version, truncated table, an omitted table.
	if _, err := ParseEHFrameHdr(cat(b(2), hdr[1:]), hdrAddr); !errors.Is(err, ErrVersion) {
		t.Errorf("version 2: %v", err)
	}
	if _, err := ParseEHFrameHdr(hdr[:len(hdr)-1], hdrAddr); !errors.Is(err, ErrTruncated) {
		t.Errorf("truncated: %v", err)
	}
	if h, err := ParseEHFrameHdr(cat(b(1, 0x1b, 0xff, 0xff), hdr[4:8]), hdrAddr); err != nil || h.Searchable {
		t.Errorf("omitted table: %+v %v", h, err)
	}
}

// TestSectionConcurrent: FDEs of one Section decoded from many goroutines
// share the CIE cache safely (run with -race).
func TestSectionConcurrent(t *testing.T) {
	sec := NewEHFrame(cat(ehCIE, ehFDE(0x1000, 0x200, drapProgram)), ehSectionAddr, Bases{})
	done := make(chan error)
	for i := 0; i < 8; i++ {
		go func() {
			f, err := sec.FDEAt(24)
			if err == nil {
				_, err = f.RowAt(0x1040)
			}
			done <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestEHFrame64: an .eh_frame entry with an extended (64-bit) length keeps
// 4-byte CIE id and pointer fields (LSB 5.0).
func TestEHFrame64(t *testing.T) {
	cie := withLen64(
		u32(0),         // CIE id, 4 bytes
		b(1),           // version
		b('z', 'R', 0), // augmentation
		b(1, 0x78, 16), // code alignment, data alignment, return column
		b(1, 0x03),     // augmentation data: R = DW_EH_PE_udata4
		b(0x0c, 7, 8),  // DW_CFA_def_cfa rsp+8
		b(0x90, 1),     // DW_CFA_offset rip c-8
	)
	fdeOff := len(cie)
	fde := withLen64(
		u32(uint32(fdeOff+12)), // CIE pointer: from this field (after the 12-byte length) back to 0
		u32(0x1000),            // pc_begin, udata4
		u32(0x20),              // pc_range
		b(0),                   // augmentation data length
		b(0x41, 0x0e, 16),      // DW_CFA_advance_loc 1; DW_CFA_def_cfa_offset 16
	)
	tab, err := ParseEHFrame(cat(cie, fde, u32(0)), 0x2000, Bases{})
	if err != nil || len(tab.FDEs) != 1 {
		t.Fatalf("%v, %d FDEs", err, len(tab.FDEs))
	}
	row, err := tab.FDEs[0].RowAt(0x1001)
	if err != nil || rowString(row, RA) != "rsp+16 ra=c-8" {
		t.Fatalf("%v %v", row, err)
	}
}
