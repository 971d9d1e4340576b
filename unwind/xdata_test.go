package unwind

import (
	"github.com/stretchr/testify/require"

	"errors"
	"reflect"
	"strings"
	"testing"
)

// Each case is an UNWIND_INFO with the meaning of every byte beside it.
var decodeCases = []struct {
	name  string
	xdata []byte
	want  UnwindInfo // RVA is always 0x3000
	err   error
}{
	{
		name: "push, alloc small, no frame",
		xdata: []byte{
			0x01,       // Version 1, Flags 0
			0x06,       // SizeOfProlog 6
			0x02,       // CountOfCodes 2
			0x00,       // FrameRegister 0, FrameOffset 0
			0x06, 0x42, // @6: UWOP_ALLOC_SMALL, OpInfo 4 -> 4*8+8 = 0x28
			0x02, 0xf0, // @2: UWOP_PUSH_NONVOL r15 (OpInfo 15)
		},
		want: UnwindInfo{Version: 1, SizeOfProlog: 6, CountOfCodes: 2, Codes: []UnwindCode{
			{Index: 0, Slots: 1, CodeOffset: 6, Op: UWOP_ALLOC_SMALL, OpInfo: 4, Operand: 0x28},
			{Index: 1, Slots: 1, CodeOffset: 2, Op: UWOP_PUSH_NONVOL, OpInfo: 15},
		}},
	},
	{
		name: "alloc large, both forms",
		xdata: []byte{
			0x01, 0x12, 0x05, 0x00, // v1, prolog 0x12, 5 slots, no frame register
			0x12, 0x11, // @0x12: UWOP_ALLOC_LARGE OpInfo 1: 32-bit size in the next two slots
			0x00, 0x00, //   low 16 bits 0x0000
			0x02, 0x00, //   high 16 bits 0x0002 -> 0x20000 bytes, not scaled
			0x0b, 0x01, // @0x0b: UWOP_ALLOC_LARGE OpInfo 0: 16-bit size/8 in the next slot
			0x10, 0x00, //   0x0010 * 8 = 0x80 bytes
		},
		want: UnwindInfo{Version: 1, SizeOfProlog: 0x12, CountOfCodes: 5, Codes: []UnwindCode{
			{Index: 0, Slots: 3, CodeOffset: 0x12, Op: UWOP_ALLOC_LARGE, OpInfo: 1, Operand: 0x20000},
			{Index: 3, Slots: 2, CodeOffset: 0x0b, Op: UWOP_ALLOC_LARGE, OpInfo: 0, Operand: 0x80},
		}},
	},
	{
		name: "set fpreg r13 offset, save nonvol near and far",
		xdata: []byte{
			0x01, 0x20, 0x06, 0x3d, // v1, prolog 0x20, 6 slots, FrameRegister 13 (r13), FrameOffset 3 (0x30)
			0x20, 0x54, // @0x20: UWOP_SAVE_NONVOL OpInfo 5 (rbp)
			0x09, 0x00, //   0x0009 * 8 = 0x48 from the establisher frame
			0x1a, 0x35, // @0x1a: UWOP_SAVE_NONVOL_FAR OpInfo 3 (rbx)
			0x08, 0x01, //   low 0x0108
			0x00, 0x00, //   high 0 -> 0x108, NOT scaled by 8 (GDB's bug)
			0x10, 0x03, // @0x10: UWOP_SET_FPREG
			// no padding: CountOfCodes is even
		},
		want: UnwindInfo{Version: 1, SizeOfProlog: 0x20, CountOfCodes: 6, FrameRegister: 13, FrameOffset: 3, Codes: []UnwindCode{
			{Index: 0, Slots: 2, CodeOffset: 0x20, Op: UWOP_SAVE_NONVOL, OpInfo: 5, Operand: 0x48},
			{Index: 2, Slots: 3, CodeOffset: 0x1a, Op: UWOP_SAVE_NONVOL_FAR, OpInfo: 3, Operand: 0x108},
			{Index: 5, Slots: 1, CodeOffset: 0x10, Op: UWOP_SET_FPREG},
		}},
	},
	{
		name: "xmm128 near and far, handler",
		xdata: []byte{
			0x09,             // Version 1 | Flags UNW_FLAG_EHANDLER (1<<3)
			0x1e, 0x05, 0x00, // prolog 0x1e, 5 slots, no frame register
			0x1e, 0x68, // @0x1e: UWOP_SAVE_XMM128 xmm6
			0x02, 0x00, //   0x0002 * 16 = 0x20, positive (GDB negates it)
			0x16, 0xf9, // @0x16: UWOP_SAVE_XMM128_FAR xmm15
			0x30, 0x00, //   low 0x0030
			0x01, 0x00, //   high 0x0001 -> 0x10030
			0x00, 0x00, // padding to an even slot count
			0x78, 0x56, 0x34, 0x12, // exception handler RVA 0x12345678
			0xaa, 0xbb, // handler data (not part of the structure)
		},
		want: UnwindInfo{Version: 1, Flags: UNW_FLAG_EHANDLER, SizeOfProlog: 0x1e, CountOfCodes: 5,
			HandlerRVA: 0x12345678, HandlerDataRVA: 0x3000 + 20, Codes: []UnwindCode{
				{Index: 0, Slots: 2, CodeOffset: 0x1e, Op: UWOP_SAVE_XMM128, OpInfo: 6, Operand: 0x20},
				{Index: 2, Slots: 3, CodeOffset: 0x16, Op: UWOP_SAVE_XMM128_FAR, OpInfo: 15, Operand: 0x10030},
			}},
	},
	{
		name: "machine frames with and without error code",
		xdata: []byte{
			0x01, 0x00, 0x02, 0x00, // v1, prolog 0, 2 slots
			0x00, 0x1a, // @0: UWOP_PUSH_MACHFRAME OpInfo 1: with error code
			0x00, 0x0a, // @0: UWOP_PUSH_MACHFRAME OpInfo 0
		},
		want: UnwindInfo{Version: 1, CountOfCodes: 2, Codes: []UnwindCode{
			{Index: 0, Slots: 1, Op: UWOP_PUSH_MACHFRAME, OpInfo: 1},
			{Index: 1, Slots: 1, Op: UWOP_PUSH_MACHFRAME},
		}},
	},
	{
		name: "chained info",
		xdata: []byte{
			0x21,             // Version 1 | Flags UNW_FLAG_CHAININFO (4<<3)
			0x05, 0x01, 0x00, // prolog 5, 1 slot
			0x05, 0x30, // @5: UWOP_PUSH_NONVOL rbx
			0x00, 0x00, // padding
			0x00, 0x10, 0x00, 0x00, // parent BeginAddress 0x1000
			0x40, 0x10, 0x00, 0x00, // parent EndAddress 0x1040
			0x00, 0x31, 0x00, 0x00, // parent UnwindData 0x3100
		},
		want: UnwindInfo{Version: 1, Flags: UNW_FLAG_CHAININFO, SizeOfProlog: 5, CountOfCodes: 1,
			Chained: RuntimeFunction{0x1000, 0x1040, 0x3100}, Codes: []UnwindCode{
				{Index: 0, Slots: 1, CodeOffset: 5, Op: UWOP_PUSH_NONVOL, OpInfo: 3},
			}},
	},
	{
		name: "version 2 epilog descriptors, one slot each",
		xdata: []byte{
			0x02, 0x04, 0x06, 0x00, // Version 2, prolog 4, 6 slots
			0x03, 0x16, // UWOP_EPILOG: size 3, OpInfo 1: an epilog ends the function
			0x10, 0x06, // UWOP_EPILOG: another epilog 0x010 bytes before the end
			0x25, 0x16, // UWOP_EPILOG: another epilog 0x125 bytes before the end (OpInfo = high byte)
			0x00, 0x06, // UWOP_EPILOG: offset 0, padding to an even count
			0x04, 0x30, // @4: UWOP_PUSH_NONVOL rbx
			0x01, 0x50, // @1: UWOP_PUSH_NONVOL rbp
		},
		want: UnwindInfo{Version: 2, SizeOfProlog: 4, CountOfCodes: 6,
			EpilogSize: 3, EpilogAtEnd: true, EpilogOffset: []uint16{0x10, 0x125}, Codes: []UnwindCode{
				// The prolog scan steps over epilog codes two slots at a time.
				{Index: 0, Slots: 2, CodeOffset: 3, Op: UWOP_EPILOG, OpInfo: 1, Operand: 0x0610},
				{Index: 2, Slots: 2, CodeOffset: 0x25, Op: UWOP_EPILOG, OpInfo: 1, Operand: 0x0600},
				{Index: 4, Slots: 1, CodeOffset: 4, Op: UWOP_PUSH_NONVOL, OpInfo: 3},
				{Index: 5, Slots: 1, CodeOffset: 1, Op: UWOP_PUSH_NONVOL, OpInfo: 5},
			}},
	},
	{
		name: "UWOP_SPARE_CODE takes three slots",
		xdata: []byte{
			0x01, 0x02, 0x04, 0x00, // v1, prolog 2, 4 slots
			0x02, 0x07, // UWOP_SPARE_CODE
			0x34, 0x12, //   extra slot 1
			0x00, 0x00, //   extra slot 2
			0x01, 0x30, // @1: UWOP_PUSH_NONVOL rbx: only seen with the right stride
		},
		want: UnwindInfo{Version: 1, SizeOfProlog: 2, CountOfCodes: 4, Codes: []UnwindCode{
			{Index: 0, Slots: 3, CodeOffset: 2, Op: UWOP_SPARE_CODE, Operand: 0x1234},
			{Index: 3, Slots: 1, CodeOffset: 1, Op: UWOP_PUSH_NONVOL, OpInfo: 3},
		}},
	},
	{
		name:  "version 3 rejected",
		xdata: []byte{0x03, 0x00, 0x00, 0x00}, // Version 3
		err:   ErrVersion,
	},
	{
		name:  "version 0 rejected",
		xdata: []byte{0x00, 0x00, 0x00, 0x00},
		err:   ErrVersion,
	},
	{
		name:  "unknown op 11",
		xdata: []byte{0x01, 0x00, 0x01, 0x00, 0x00, 0x0b}, // one slot, UnwindOp 11
		err:   ErrUnknownOp,
	},
	{
		name:  "save nonvol missing its operand slot",
		xdata: []byte{0x01, 0x04, 0x01, 0x00, 0x04, 0x34, 0x00, 0x00}, // CountOfCodes 1 but SAVE_NONVOL needs 2
		err:   ErrCodeOverrun,
	},
	{
		name:  "set fpreg without frame register",
		xdata: []byte{0x01, 0x04, 0x01, 0x00, 0x04, 0x03, 0x00, 0x00},
		err:   ErrNoFrameRegister,
	},
	{
		name:  "codes truncated",
		xdata: []byte{0x01, 0x04, 0x04, 0x00, 0x04, 0x30}, // says 4 slots, has 1
		err:   ErrTruncated,
	},
	{
		name:  "chained entry truncated",
		xdata: []byte{0x21, 0x00, 0x00, 0x00, 0x00, 0x10}, // CHAININFO, then 2 of 12 bytes
		err:   ErrTruncated,
	},
	{
		name:  "empty",
		xdata: nil,
		err:   ErrTruncated,
	},
}

func TestDecodeUnwindInfo(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeUnwindInfo(tc.xdata, 0x3000)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				var ie *InfoError
				if !errors.As(err, &ie) || ie.RVA != 0x3000 {
					t.Fatalf("error %v does not carry the RVA", err)
				}
				if !strings.Contains(err.Error(), "0x3000") {
					t.Fatalf("error text %q lacks the RVA", err)
				}
				return
			}
			require.NoError(t, err)
			tc.want.RVA = 0x3000
			if !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", *got, tc.want)
			}
			if got.Size() > len(tc.xdata) {
				t.Fatalf("Size %d > %d bytes", got.Size(), len(tc.xdata))
			}
		})
	}
}

func TestReadUnwindInfoShortMemory(t *testing.T) {
	m := &fakeMem{}
	// A chained UNWIND_INFO whose trailing RUNTIME_FUNCTION is cut by a hole.
	m.Map(0x1000, []byte{0x21, 0x00, 0x00, 0x00, 0x00, 0x10})
	_, err := ReadUnwindInfo(m, 0, 0x1000)
	if !IsReadError(err) {
		t.Fatalf("err = %v, want a read error", err)
	}
	var ie *InfoError
	if !errors.As(err, &ie) || ie.RVA != 0x1000 {
		t.Fatalf("err %v lacks RVA", err)
	}
}

func TestUnwindCodeString(t *testing.T) {
	u, err := DecodeUnwindInfo(decodeCases[2].xdata, 0)
	require.NoError(t, err)
	var s []string
	for _, c := range u.Codes {
		s = append(s, c.String())
	}
	got := strings.Join(s, "; ")
	want := "0x20: UWOP_SAVE_NONVOL rbp [0x48]; 0x1a: UWOP_SAVE_NONVOL_FAR rbx [0x108]; 0x10: UWOP_SET_FPREG"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}
