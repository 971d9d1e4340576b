package unwind

import (
	"github.com/stretchr/testify/require"

	"errors"
	"testing"

	"github.com/rspstub/rspstub/internal/arch"
)

// R is the body RSP of the function under test in every step case.
const R = 0x120000

const (
	rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi = 0, 1, 2, 3, 4, 5, 6, 7
	r8, r9, r10, r11, r12, r13, r14, r15   = 8, 9, 10, 11, 12, 13, 14, 15
)

type stepCase struct {
	name  string
	code  []byte // at textRVA; the function is [textRVA, textRVA+len(code)) unless end is set
	end   uint32 // function end RVA, if not textRVA+len(code)
	xdata []byte // at xdataRVA
	setup func(ib *imageBuilder)
	pc    uint32 // offset of the control PC from textRVA
	rsp   uint64
	regs  map[int]uint64
	stack map[uint64]uint64
	xmm   map[uint64]Uint128 // 16-byte stack values
	flags StepFlags

	err        error
	wantRIP    uint64
	wantRSP    uint64
	wantRegs   map[int]uint64 // value and save address: {reg: addr}; value read = addr ^ 0x5a5a
	keepRegs   []int          // registers that must keep their live value
	wantXMM    map[int]uint64 // xmm register -> save address
	wantEst    uint64
	epilog     bool
	prolog     bool
	machine    bool
	leaf       bool
	chainDepth int
}

// saved is the value the tests store at a save slot: derived from the
// address so a register restored from the wrong slot is caught.
func saved(addr uint64) uint64 { return addr ^ 0x5a5a000000 }

// errRead in stepCase.err expects any *ReadError.
var errRead = errors.New("any read error")

const retAddr = imgBase + 0x2800 // a return address, anywhere

func runStep(t *testing.T, tc stepCase) {
	t.Helper()
	ib := newImageBuilder()
	ib.put(textRVA, tc.code)
	end := tc.end
	if end == 0 {
		end = textRVA + uint32(len(tc.code))
	}
	if tc.xdata != nil {
		ib.put(xdataRVA, tc.xdata)
		ib.fn(textRVA, end, xdataRVA)
	}
	if tc.setup != nil {
		tc.setup(ib)
	}
	st := newStack()
	for _, addr := range tc.wantRegs {
		st.put(addr, saved(addr))
	}
	for addr, v := range tc.stack {
		st.put(addr, v)
	}
	for addr, v := range tc.xmm {
		st.put(addr, v.Lo)
		st.put(addr+8, v.Hi)
	}
	_, u := world(ib, st)
	ctx := ctxWith(imgBase+textRVA+uint64(tc.pc), tc.rsp, tc.regs)
	before := ctx
	si, err := u.Step(&ctx, tc.flags)
	if tc.err != nil {
		if tc.err == errRead && IsReadError(err) {
			return
		}
		if !errors.Is(err, tc.err) {
			t.Fatalf("err = %v, want %v", err, tc.err)
		}
		return
	}
	require.NoError(t, err, "Step")
	if ctx.RIP != tc.wantRIP {
		t.Errorf("RIP = %#x, want %#x", ctx.RIP, tc.wantRIP)
	}
	if ctx.RSP() != tc.wantRSP {
		t.Errorf("RSP = %#x, want %#x", ctx.RSP(), tc.wantRSP)
	}
	for r, addr := range tc.wantRegs {
		v, _ := ctx.Get(arch.Reg(r))
		at, ok := ctx.SavedAt(arch.Reg(r))
		if v != saved(addr) || !ok || at != addr {
			t.Errorf("%v = %#x saved at %#x (%v), want %#x at %#x", arch.Reg(r), v, at, ok, saved(addr), addr)
		}
	}
	for _, r := range tc.keepRegs {
		v, ok := ctx.Get(arch.Reg(r))
		w, _ := before.Get(arch.Reg(r))
		if !ok || v != w {
			t.Errorf("%v = %#x, want unchanged %#x", arch.Reg(r), v, w)
		}
		if at, ok := ctx.SavedAt(arch.Reg(r)); ok {
			t.Errorf("%v has a save address %#x, want none", arch.Reg(r), at)
		}
	}
	for x, addr := range tc.wantXMM {
		v, ok := ctx.GetXMM(x)
		if !ok || ctx.XMMAddr[x] != addr || v != tc.xmm[addr] {
			t.Errorf("xmm%d = %v at %#x, want %v at %#x", x, v, ctx.XMMAddr[x], tc.xmm[addr], addr)
		}
	}
	if tc.wantEst != 0 && si.EstablisherFrame != tc.wantEst {
		t.Errorf("EstablisherFrame = %#x, want %#x", si.EstablisherFrame, tc.wantEst)
	}
	if si.InEpilog != tc.epilog || si.InProlog != tc.prolog || si.MachineFrame != tc.machine || si.Leaf != tc.leaf {
		t.Errorf("epilog/prolog/machine/leaf = %v/%v/%v/%v, want %v/%v/%v/%v",
			si.InEpilog, si.InProlog, si.MachineFrame, si.Leaf, tc.epilog, tc.prolog, tc.machine, tc.leaf)
	}
	if si.ChainDepth != tc.chainDepth {
		t.Errorf("ChainDepth = %d, want %d", si.ChainDepth, tc.chainDepth)
	}
}

// fnA: push rbx; push r12; sub rsp,0x20; body; add rsp,0x20; pop r12; pop rbx; ret.
var fnA = []byte{
	0x53,       // 00: push rbx            (prolog ends at 1)
	0x41, 0x54, // 01: push r12            (3)
	0x48, 0x83, 0xec, 0x20, // 03: sub rsp, 0x20       (7)
	0x90,                   // 07: nop                 body
	0x48, 0x83, 0xc4, 0x20, // 08: add rsp, 0x20       epilog
	0x41, 0x5c, // 0c: pop r12 (REX.B: register 12, not 0x5c&0x0f by luck)
	0x5b, // 0e: pop rbx (3; GDB's op&0x0f reads 11)
	0xc3, // 0f: ret
}

var xdataA = []byte{
	0x01, 0x07, 0x03, 0x00, // v1, SizeOfProlog 7, 3 slots, no frame register
	0x07, 0x32, // @7: UWOP_ALLOC_SMALL 3*8+8 = 0x20
	0x03, 0xc0, // @3: UWOP_PUSH_NONVOL r12
	0x01, 0x30, // @1: UWOP_PUSH_NONVOL rbx
	0x00, 0x00, // padding
}

// Stack of fnA in its body (RSP = R): r12 at R+0x20, rbx at R+0x28, return at R+0x30.
var stackA = map[uint64]uint64{R + 0x30: retAddr}

func TestStepPrologEpilogV1(t *testing.T) {
	for _, tc := range []stepCase{
		{name: "body", pc: 0x07, rsp: R, wantRIP: retAddr, wantRSP: R + 0x38,
			wantRegs: map[int]uint64{r12: R + 0x20, rbx: R + 0x28}, wantEst: R},
		{name: "prolog pc 0: nothing applied", pc: 0, rsp: R + 0x30, wantRIP: retAddr, wantRSP: R + 0x38,
			keepRegs: []int{rbx, r12}, prolog: true},
		{name: "prolog after push rbx", pc: 1, rsp: R + 0x28, wantRIP: retAddr, wantRSP: R + 0x38,
			wantRegs: map[int]uint64{rbx: R + 0x28}, keepRegs: []int{r12}, prolog: true},
		{name: "prolog after push r12", pc: 3, rsp: R + 0x20, wantRIP: retAddr, wantRSP: R + 0x38,
			wantRegs: map[int]uint64{r12: R + 0x20, rbx: R + 0x28}, prolog: true},
		{name: "epilog at add rsp", pc: 0x08, rsp: R, wantRIP: retAddr, wantRSP: R + 0x38,
			wantRegs: map[int]uint64{r12: R + 0x20, rbx: R + 0x28}, epilog: true},
		{name: "epilog at pop r12 (REX.B)", pc: 0x0c, rsp: R + 0x20, wantRIP: retAddr, wantRSP: R + 0x38,
			wantRegs: map[int]uint64{r12: R + 0x20, rbx: R + 0x28}, keepRegs: []int{r11}, epilog: true},
		{name: "epilog at pop rbx", pc: 0x0e, rsp: R + 0x28, wantRIP: retAddr, wantRSP: R + 0x38,
			wantRegs: map[int]uint64{rbx: R + 0x28}, keepRegs: []int{r12, r11}, epilog: true},
		{name: "epilog at ret", pc: 0x0f, rsp: R + 0x30, wantRIP: retAddr, wantRSP: R + 0x38,
			keepRegs: []int{rbx, r12}, epilog: true},
		{name: "NoEpilog flag at pop rbx unwinds the prolog instead", pc: 0x0e, rsp: R, flags: NoEpilog,
			wantRIP: retAddr, wantRSP: R + 0x38, wantRegs: map[int]uint64{r12: R + 0x20, rbx: R + 0x28}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.code, tc.xdata, tc.stack = fnA, xdataA, stackA
			runStep(t, tc)
		})
	}
}

// fnTail: sub rsp,0x28; body; add rsp,0x28; <control transfer at 0x09>.
func fnTail(tail ...byte) []byte {
	return append([]byte{
		0x48, 0x83, 0xec, 0x28, // 00: sub rsp, 0x28     (4)
		0x90,                   // 04: body
		0x48, 0x83, 0xc4, 0x28, // 05: add rsp, 0x28
	}, tail...) // 09: the instruction under test
}

var xdataTail = []byte{
	0x01, 0x04, 0x01, 0x00, // v1, prolog 4, 1 slot
	0x04, 0x42, // @4: UWOP_ALLOC_SMALL 4*8+8 = 0x28
	0x00, 0x00, // padding
}

// At pc 0x09 the allocation is already released: RSP = R+0x28 points at the
// return address. An epilog gives RIP = [R+0x28]; a missed epilog unwinds
// the prolog and reads RIP from R+0x50.
func TestStepEpilogForms(t *testing.T) {
	const wrong = imgBase + 0x2900
	stk := map[uint64]uint64{R + 0x28: retAddr, R + 0x50: wrong}
	in := func(name string, tail ...byte) stepCase {
		return stepCase{name: name, code: fnTail(tail...), pc: 0x09, rsp: R + 0x28,
			wantRIP: retAddr, wantRSP: R + 0x30, epilog: true}
	}
	out := func(name string, tail ...byte) stepCase {
		return stepCase{name: name, code: fnTail(tail...), pc: 0x09, rsp: R + 0x28,
			wantRIP: wrong, wantRSP: R + 0x58}
	}
	// jmp rel32 from 0x1009 (next instruction 0x100e) to 0x2000: outside.
	rel32 := func(op byte) []byte { return []byte{op, 0xf2, 0x0f, 0x00, 0x00} }
	cases := []stepCase{
		in("ret", 0xc3),
		in("rep ret (GDB misreads)", 0xf3, 0xc3),
		in("ret imm16 (GDB misreads)", 0xc2, 0x10, 0x00),
		in("repne (bnd) ret", 0xf2, 0xc3),
		in("jmp rel32 outside is 0xe9 (GDB tests 0xec)", rel32(0xe9)...),
		out("0xec is in al,dx, not a jmp", rel32(0xec)...),
		in("jmp rel8 outside", 0xeb, 0x40),              // to 0x104b, past the end 0x100b
		out("jmp rel8 inside the function", 0xeb, 0xf5), // to 0x1000: begin... see below
		in("jmp [rip+disp32] (import tail call)", 0xff, 0x25, 0x00, 0x10, 0x00, 0x00),
		in("rex.w jmp rax", 0x48, 0xff, 0xe0),
		in("rex.w jmp [rax]", 0x48, 0xff, 0x20),
		out("jmp rax without REX.W", 0xff, 0xe0, 0xcc),
		out("call is not an epilog", 0xe8, 0x00, 0x00, 0x00, 0x00),
		out("jmp rel32 into the body", 0xe9, 0xf6, 0xff, 0xff, 0xff), // to 0x1004
	}
	// "jmp rel8 inside": 0x100b + 0xf5 = 0x1000 = the function start, a
	// recursive tail call: Windows treats it as an epilog.
	cases[7] = in("jmp rel8 to own start (recursion)", 0xeb, 0xf5)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.xdata, tc.stack = xdataTail, stk
			if tc.end == 0 {
				tc.end = textRVA + uint32(len(tc.code))
			}
			runStep(t, tc)
		})
	}
}

// fnPopTail: push rbx; sub rsp,0x20; body; add rsp,0x20; pop rbx; <ret form>.
func TestStepEpilogPopThenReturnForms(t *testing.T) {
	xdata := []byte{
		0x01, 0x05, 0x02, 0x00, // v1, prolog 5, 2 slots
		0x05, 0x32, // @5: UWOP_ALLOC_SMALL 0x20
		0x01, 0x30, // @1: UWOP_PUSH_NONVOL rbx
	}
	for _, tail := range [][]byte{{0xc3}, {0xf3, 0xc3}, {0xc2, 0x08, 0x00}} {
		code := append([]byte{
			0x53,                   // 00: push rbx
			0x48, 0x83, 0xec, 0x20, // 01: sub rsp, 0x20
			0x90,                   // 05: body
			0x48, 0x83, 0xc4, 0x20, // 06: add rsp, 0x20
			0x5b, // 0a: pop rbx
		}, tail...)
		runStep(t, stepCase{name: "pop then ret", code: code, xdata: xdata, pc: 0x0a, rsp: R + 0x20,
			stack: map[uint64]uint64{R + 0x28: retAddr}, wantRIP: retAddr, wantRSP: R + 0x30,
			wantRegs: map[int]uint64{rbx: R + 0x20}, epilog: true})
	}
}

// A frame pointer other than RBP, with a non-zero FrameOffset, used only
// once UWOP_SET_FPREG has run (vminer assumes RBP and uses it always).
func TestStepFrameRegisterR13(t *testing.T) {
	code := []byte{
		0x41, 0x55, // 00: push r13                 (2)
		0x48, 0x83, 0xec, 0x30, // 02: sub rsp, 0x30             (6)
		0x4c, 0x8d, 0x6c, 0x24, 0x20, // 06: lea r13, [rsp+0x20]       (0x0b)
		0x48, 0x89, 0x5c, 0x24, 0x28, // 0b: mov [rsp+0x28], rbx       (0x10)
		0x90,                   // 10: body
		0x49, 0x8d, 0x65, 0x10, // 11: lea rsp, [r13+0x10]  (releases 0x30)
		0x41, 0x5d, // 15: pop r13
		0xc3, // 17: ret
	}
	xdata := []byte{
		0x01, 0x10, 0x05, 0x2d, // v1, prolog 0x10, 5 slots, FrameRegister 13 (r13), FrameOffset 2 (0x20)
		0x10, 0x34, // @0x10: UWOP_SAVE_NONVOL rbx
		0x05, 0x00, //   5*8 = 0x28 from the establisher frame
		0x0b, 0x03, // @0x0b: UWOP_SET_FPREG
		0x06, 0x52, // @0x06: UWOP_ALLOC_SMALL 5*8+8 = 0x30
		0x02, 0xd0, // @0x02: UWOP_PUSH_NONVOL r13
		0x00, 0x00, // padding
	}
	// Frame: establisher E = R; r13 = R+0x20; rbx at R+0x28; r13 pushed at R+0x30; return at R+0x38.
	stk := map[uint64]uint64{R + 0x38: retAddr}
	for _, tc := range []stepCase{
		{name: "body with RSP below the frame (alloca)", pc: 0x10, rsp: R - 0x100,
			regs: map[int]uint64{r13: R + 0x20, rbp: 0x1111}, wantEst: R,
			wantRIP: retAddr, wantRSP: R + 0x40, wantRegs: map[int]uint64{rbx: R + 0x28, r13: R + 0x30},
			keepRegs: []int{rbp}},
		{name: "prolog before SET_FPREG: r13 is still the caller's", pc: 0x06, rsp: R,
			regs: map[int]uint64{r13: 0x7777}, wantEst: R, prolog: true,
			wantRIP: retAddr, wantRSP: R + 0x40, wantRegs: map[int]uint64{r13: R + 0x30}, keepRegs: []int{rbx}},
		{name: "prolog after SET_FPREG, before the save", pc: 0x0b, rsp: R,
			regs: map[int]uint64{r13: R + 0x20}, wantEst: R, prolog: true,
			wantRIP: retAddr, wantRSP: R + 0x40, wantRegs: map[int]uint64{r13: R + 0x30}, keepRegs: []int{rbx}},
		{name: "epilog lea rsp,[r13+disp8]", pc: 0x11, rsp: R - 0x100,
			regs: map[int]uint64{r13: R + 0x20}, epilog: true, wantEst: R,
			wantRIP: retAddr, wantRSP: R + 0x40, wantRegs: map[int]uint64{r13: R + 0x30}, keepRegs: []int{rbx}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.code, tc.xdata, tc.stack = code, xdata, stk
			runStep(t, tc)
		})
	}
}

// lea rsp,[reg+disp] with a register that is not the frame register is not
// an epilog.
func TestStepLeaNotFrameRegister(t *testing.T) {
	code := []byte{
		0x55,                   // 00: push rbp           (1)
		0x48, 0x8d, 0x2c, 0x24, //             01: lea rbp, [rsp]      (5)
		0x90,                   //             05: body
		0x48, 0x8d, 0x63, 0x08, //             06: lea rsp, [rbx+8]  (rbx is not the frame register)
		0x5d, 0xc3, //                         0a: pop rbp; ret
	}
	xdata := []byte{
		0x01, 0x05, 0x02, 0x05, // v1, prolog 5, 2 slots, FrameRegister rbp, FrameOffset 0
		0x05, 0x03, // @5: UWOP_SET_FPREG
		0x01, 0x50, // @1: UWOP_PUSH_NONVOL rbp
	}
	runStep(t, stepCase{name: "lea rbx", code: code, xdata: xdata, pc: 0x06, rsp: R - 0x40,
		regs: map[int]uint64{rbp: R}, stack: map[uint64]uint64{R + 8: retAddr},
		wantRIP: retAddr, wantRSP: R + 0x10, wantRegs: map[int]uint64{rbp: R}, wantEst: R})
}

func TestStepSavesLargeAllocXMM(t *testing.T) {
	code := []byte{
		0x48, 0x81, 0xec, 0x00, 0x01, 0x01, 0x00, // 00: sub rsp, 0x10100               (07)
		0x48, 0x89, 0x5c, 0x24, 0x30, // 07: mov [rsp+0x30], rbx               (0c)
		0x48, 0x89, 0xb4, 0x24, 0x08, 0x01, 0x00, 0x00, // 0c: mov [rsp+0x108], rsi (14)
		0x0f, 0x29, 0x74, 0x24, 0x40, // 14: movaps [rsp+0x40], xmm6           (19)
		0x44, 0x0f, 0x29, 0xbc, 0x24, 0x00, 0x00, 0x01, 0x00, // 19: movaps [rsp+0x10000], xmm15 (22)
		0x90, // 22: body
	}
	xdata := []byte{
		0x01, 0x22, 0x0d, 0x00, // v1, prolog 0x22, 13 slots, no frame register
		0x22, 0xf9, // @0x22: UWOP_SAVE_XMM128_FAR xmm15
		0x00, 0x00, //   low 0x0000
		0x01, 0x00, //   high 0x0001 -> 0x10000 (unscaled)
		0x19, 0x68, // @0x19: UWOP_SAVE_XMM128 xmm6
		0x04, 0x00, //   4*16 = 0x40, a positive offset (GDB negates it)
		0x14, 0x65, // @0x14: UWOP_SAVE_NONVOL_FAR rsi
		0x08, 0x01, //   low 0x0108
		0x00, 0x00, //   high 0 -> 0x108, not scaled by 8 (GDB scales it)
		0x0c, 0x34, // @0x0c: UWOP_SAVE_NONVOL rbx
		0x06, 0x00, //   6*8 = 0x30
		0x07, 0x11, // @0x07: UWOP_ALLOC_LARGE OpInfo 1 (32-bit)
		0x00, 0x01, //   low 0x0100
		0x01, 0x00, //   high 0x0001 -> 0x10100
		0x00, 0x00, // padding
	}
	x6 := Uint128{0x6666, 0x6060}
	x15 := Uint128{0x1515, 0x1010}
	xmm := map[uint64]Uint128{R + 0x40: x6, R + 0x10000: x15}
	stk := map[uint64]uint64{R + 0x10100: retAddr}
	for _, tc := range []stepCase{
		{name: "body", pc: 0x22, wantRegs: map[int]uint64{rbx: R + 0x30, rsi: R + 0x108},
			wantXMM: map[int]uint64{6: R + 0x40, 15: R + 0x10000}},
		{name: "after rbx save only", pc: 0x0c, prolog: true,
			wantRegs: map[int]uint64{rbx: R + 0x30}, keepRegs: []int{rsi}},
		{name: "after the allocation only", pc: 0x07, prolog: true, keepRegs: []int{rbx, rsi}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.code, tc.xdata, tc.stack, tc.xmm = code, xdata, stk, xmm
			tc.rsp, tc.wantRIP, tc.wantRSP = R, retAddr, R+0x10108
			runStep(t, tc)
		})
	}
	// The 16-bit UWOP_ALLOC_LARGE form is scaled by 8.
	runStep(t, stepCase{name: "alloc large 16-bit",
		code: []byte{0x48, 0x81, 0xec, 0x80, 0x00, 0x00, 0x00, 0x90}, // sub rsp, 0x80; body
		xdata: []byte{
			0x01, 0x07, 0x02, 0x00, // v1, prolog 7, 2 slots
			0x07, 0x01, // @7: UWOP_ALLOC_LARGE OpInfo 0
			0x10, 0x00, //   0x10*8 = 0x80
		},
		pc: 7, rsp: R, stack: map[uint64]uint64{R + 0x80: retAddr}, wantRIP: retAddr, wantRSP: R + 0x88})
}

// A machine frame: RIP and RSP come from the frame the processor pushed;
// the stored RSP is honoured (lldb ignores it and uses RSP+40).
func TestStepMachineFrame(t *testing.T) {
	const interruptedSP = 0x130000
	for _, errCode := range []bool{false, true} {
		info := byte(0x0a) // UWOP_PUSH_MACHFRAME, OpInfo 0
		first := uint64(R + 8)
		if errCode {
			info = 0x1a // OpInfo 1: an error code sits below the frame
			first += 8
		}
		xdata := []byte{
			0x01, 0x01, 0x02, 0x00, // v1, prolog 1, 2 slots
			0x01, 0x50, // @1: UWOP_PUSH_NONVOL rbp
			0x00, info, // @0: UWOP_PUSH_MACHFRAME
		}
		// [R] = rbp, then [error code], RIP, CS, EFLAGS, RSP, SS.
		stk := map[uint64]uint64{first: retAddr, first + 8: 0x33, first + 16: 0x246, first + 24: interruptedSP, first + 32: 0x2b}
		runStep(t, stepCase{name: "machframe", code: []byte{0x55, 0x90}, xdata: xdata, pc: 1, rsp: R, stack: stk,
			wantRIP: retAddr, wantRSP: interruptedSP, wantRegs: map[int]uint64{rbp: R}, machine: true})
		// RSP and RIP record where they came from.
		ib := newImageBuilder()
		ib.put(textRVA, []byte{0x55, 0x90})
		ib.put(xdataRVA, xdata)
		ib.fn(textRVA, textRVA+2, xdataRVA)
		s := newStack()
		for a, v := range stk {
			s.put(a, v)
		}
		_, u := world(ib, s)
		ctx := ctxWith(imgBase+textRVA+1, R, nil)
		if _, err := u.Step(&ctx, 0); err != nil {
			t.Fatal(err)
		}
		if at, _ := ctx.SavedAt(arch.RSP); at != first+24 {
			t.Errorf("RSP saved at %#x, want %#x", at, first+24)
		}
		if at, _ := ctx.SavedAt(arch.RIP); at != first {
			t.Errorf("RIP saved at %#x, want %#x", at, first)
		}
	}
}

// Chained info, two levels: C -> B -> A. C's own codes apply by pc offset,
// the parents' in full; every level shares C's establisher frame.
func chainedImage(ib *imageBuilder) {
	ib.put(textRVA, []byte{0x53, 0x48, 0x83, 0xec, 0x20, 0x90}) // A: push rbx; sub rsp,0x20; body
	ib.put(xdataRVA, []byte{
		0x01, 0x05, 0x02, 0x00, // A: v1, prolog 5, 2 slots
		0x05, 0x32, // @5: UWOP_ALLOC_SMALL 0x20
		0x01, 0x30, // @1: UWOP_PUSH_NONVOL rbx
	})
	ib.put(xdataRVA+0x100, []byte{
		0x21, 0x00, 0x02, 0x00, // B: v1 | UNW_FLAG_CHAININFO, prolog 0, 2 slots
		0x00, 0x64, // @0: UWOP_SAVE_NONVOL rsi
		0x03, 0x00, //   3*8 = 0x18
		0x00, 0x10, 0x00, 0x00, // parent BeginAddress 0x1000
		0x40, 0x10, 0x00, 0x00, // parent EndAddress   0x1040
		0x00, 0x30, 0x00, 0x00, // parent UnwindData   0x3000
	})
	ib.put(xdataRVA+0x200, []byte{
		0x21, 0x05, 0x02, 0x00, // C: v1 | UNW_FLAG_CHAININFO, prolog 5, 2 slots
		0x05, 0x74, // @5: UWOP_SAVE_NONVOL rdi
		0x02, 0x00, //   2*8 = 0x10
		0x00, 0x11, 0x00, 0x00, // parent BeginAddress 0x1100
		0x10, 0x11, 0x00, 0x00, // parent EndAddress   0x1110
		0x00, 0x31, 0x00, 0x00, // parent UnwindData   0x3100
	})
	ib.put(xdataRVA+0x300, []byte{
		0x21, 0x00, 0x00, 0x00, // D: chained to itself: a cycle
		0x00, 0x14, 0x00, 0x00, 0x10, 0x14, 0x00, 0x00, 0x00, 0x33, 0x00, 0x00,
	})
	ib.put(xdataRVA+0x400, []byte{0x03, 0x00, 0x00, 0x00}) // E: version 3
	ib.fn(0x1000, 0x1040, xdataRVA)
	ib.fn(0x1100, 0x1110, xdataRVA+0x100)
	ib.fn(0x1200, 0x1210, xdataRVA+0x200)
	ib.fn(0x1300, 0x1310, pdataRVA+1) // indirect: the entry of A (table index 0)
	ib.fn(0x1400, 0x1410, xdataRVA+0x300)
	ib.fn(0x1500, 0x1510, xdataRVA+0x400)
	for _, rva := range []uint32{0x1100, 0x1200, 0x1300, 0x1400, 0x1500} {
		ib.put(rva, []byte{0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90}) // nops: no epilog
	}
}

func TestStepChainedIndirect(t *testing.T) {
	// Frame of A: rdi at R+0x10, rsi at R+0x18, rbx at R+0x20, return at R+0x28.
	stk := map[uint64]uint64{R + 0x28: retAddr}
	for _, tc := range []stepCase{
		{name: "two levels, child past its prolog", pc: 0x205, chainDepth: 2,
			wantRegs: map[int]uint64{rdi: R + 0x10, rsi: R + 0x18, rbx: R + 0x20}},
		{name: "two levels, child inside its prolog", pc: 0x203, chainDepth: 2, prolog: true,
			wantRegs: map[int]uint64{rsi: R + 0x18, rbx: R + 0x20}, keepRegs: []int{rdi}},
		{name: "one level", pc: 0x105, chainDepth: 1,
			wantRegs: map[int]uint64{rsi: R + 0x18, rbx: R + 0x20}, keepRegs: []int{rdi}},
		{name: "indirect entry resolves to A", pc: 0x305,
			wantRegs: map[int]uint64{rbx: R + 0x20}, keepRegs: []int{rsi, rdi}},
		{name: "chain cycle is bounded", pc: 0x405, err: ErrChainTooDeep},
		{name: "version 3 is a typed error", pc: 0x505, err: ErrVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup, tc.stack, tc.rsp = chainedImage, stk, R
			tc.wantRIP, tc.wantRSP = retAddr, R+0x30
			runStep(t, tc)
		})
	}
}

// Version 2: epilogs come from UWOP_EPILOG descriptors; the code is not
// read (it is int3 here). The add rsp before the pops is outside the epilog.
func TestStepEpilogV2(t *testing.T) {
	prolog := []byte{
		0x55,       // 00: push rbp       (1)
		0x53,       // 01: push rbx       (2)
		0x41, 0x54, // 02: push r12       (4)
		0x48, 0x83, 0xec, 0x20, // 04: sub rsp, 0x20  (8)
		0x90, // 08: body
	}
	// Epilog 1 at [0x0d, 0x12): pop r12 (2 bytes), pop rbx, pop rbp, ret, left as int3.
	// Epilog 2 at the end [0x2b, 0x30).
	xdata := []byte{
		0x02, 0x08, 0x06, 0x00, // Version 2, prolog 8, 6 slots
		0x05, 0x16, // UWOP_EPILOG: size 5, OpInfo 1: one epilog ends the function
		0x23, 0x06, // UWOP_EPILOG: one 0x23 bytes before the end (0x30-0x23 = 0x0d)
		0x08, 0x32, // @8: UWOP_ALLOC_SMALL 0x20
		0x04, 0xc0, // @4: UWOP_PUSH_NONVOL r12
		0x02, 0x30, // @2: UWOP_PUSH_NONVOL rbx
		0x01, 0x50, // @1: UWOP_PUSH_NONVOL rbp
	}
	// Body frame: r12 R+0x20, rbx R+0x28, rbp R+0x30, return R+0x38.
	stk := map[uint64]uint64{R + 0x38: retAddr}
	all := map[int]uint64{r12: R + 0x20, rbx: R + 0x28, rbp: R + 0x30}
	for _, tc := range []stepCase{
		{name: "body", pc: 0x08, rsp: R, wantRegs: all},
		{name: "before the epilog region (add rsp)", pc: 0x09, rsp: R, wantRegs: all},
		{name: "epilog 1 start", pc: 0x0d, rsp: R + 0x20, wantRegs: all, epilog: true},
		{name: "epilog 1 after pop r12", pc: 0x0f, rsp: R + 0x28, epilog: true,
			wantRegs: map[int]uint64{rbx: R + 0x28, rbp: R + 0x30}, keepRegs: []int{r12}},
		{name: "epilog 1 at ret", pc: 0x11, rsp: R + 0x38, epilog: true, keepRegs: []int{r12, rbx, rbp}},
		{name: "epilog 2 (at end) after pop rbx", pc: 0x2e, rsp: R + 0x30, epilog: true,
			wantRegs: map[int]uint64{rbp: R + 0x30}, keepRegs: []int{r12, rbx}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.code, tc.xdata, tc.stack, tc.end = prolog, xdata, stk, textRVA+0x30
			tc.wantRIP, tc.wantRSP = retAddr, R+0x40
			runStep(t, tc)
		})
	}
}

// With CountOfCodes 0 there is no epilog detection, in version 1 as in
// version 2 (Windows 10 1809 and later; Wine does the same).
func TestStepZeroCodes(t *testing.T) {
	code := []byte{0x5b, 0xc3} // pop rbx; ret (inconsistent with the empty unwind data)
	stk := map[uint64]uint64{R: 0x4242, R + 8: retAddr}
	for _, v := range []byte{1, 2} {
		runStep(t, stepCase{name: "zero codes", code: code, xdata: []byte{v, 0, 0, 0}, rsp: R, stack: stk,
			wantRIP: 0x4242, wantRSP: R + 8, keepRegs: []int{rbx}})
	}
	// A chained region without codes of its own (a split function's tail)
	// still gets the epilog check: here its parent pushed rbx.
	runStep(t, stepCase{name: "chained tail", code: code, rsp: R, stack: map[uint64]uint64{R + 8: retAddr},
		setup: func(ib *imageBuilder) {
			ib.put(xdataRVA, []byte{
				0x01, 0x01, 0x01, 0x00, // parent: v1, prolog 1, 1 slot
				0x01, 0x30, // @1: UWOP_PUSH_NONVOL rbx
			})
			ib.put(xdataRVA+0x10, []byte{
				0x21, 0x00, 0x00, 0x00, // tail: v1 | UNW_FLAG_CHAININFO, no codes
				0x00, 0x20, 0x00, 0x00, 0x10, 0x20, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00, // parent [0x2000,0x2010) @0x3000
			})
			ib.put(0x2000, []byte{0x53, 0x90})
			ib.fn(textRVA, textRVA+2, xdataRVA+0x10)
			ib.fn(0x2000, 0x2010, xdataRVA)
		},
		wantRIP: retAddr, wantRSP: R + 16, wantRegs: map[int]uint64{rbx: R}, epilog: true})
}

// No function entry: the leaf rule.
func TestStepLeaf(t *testing.T) {
	runStep(t, stepCase{name: "leaf", code: []byte{0x48, 0x89, 0xc8, 0xc3}, rsp: R,
		stack: map[uint64]uint64{R: retAddr}, wantRIP: retAddr, wantRSP: R + 8, leaf: true, keepRegs: []int{rbx}})
}

func TestStepErrors(t *testing.T) {
	// Unreadable stack.
	runStep(t, stepCase{name: "stack", code: fnA, xdata: xdataA, pc: 7, rsp: 0x900000, err: errRead})
	// Outside every module.
	ib := newImageBuilder()
	_, u := world(ib, newStack())
	ctx := ctxWith(0x1234, R, nil)
	if _, err := u.Step(&ctx, 0); !errors.Is(err, ErrNoModule) {
		t.Fatalf("err = %v, want ErrNoModule", err)
	}
}

// A language-specific handler is reported past the prolog, as
// RtlVirtualUnwind returns it, and not inside the prolog or an epilog.
func TestStepHandler(t *testing.T) {
	xdata := []byte{
		0x11,             // Version 1 | UNW_FLAG_UHANDLER (2<<3)
		0x07, 0x03, 0x00, // prolog 7, 3 slots
		0x07, 0x32, // @7: UWOP_ALLOC_SMALL 0x20
		0x03, 0xc0, // @3: UWOP_PUSH_NONVOL r12
		0x01, 0x30, // @1: UWOP_PUSH_NONVOL rbx
		0x00, 0x00, // padding
		0x00, 0x28, 0x00, 0x00, // handler RVA 0x2800
		0x01, 0x02, 0x03, 0x04, // handler data
	}
	for _, tc := range []struct {
		pc      uint32
		rsp     uint64
		handler uint32
	}{{0x07, R, 0x2800}, {0x03, R + 0x20, 0}, {0x0f, R + 0x30, 0}} {
		ib := newImageBuilder()
		ib.put(textRVA, fnA)
		ib.put(xdataRVA, xdata)
		ib.fn(textRVA, textRVA+uint32(len(fnA)), xdataRVA)
		st := newStack()
		st.put(R+0x30, retAddr)
		_, u := world(ib, st)
		ctx := ctxWith(imgBase+textRVA+uint64(tc.pc), tc.rsp, nil)
		si, err := u.Step(&ctx, 0)
		require.NoError(t, err)
		if si.HandlerRVA != tc.handler || (tc.handler != 0 && si.HandlerFlags != UNW_FLAG_UHANDLER) {
			t.Errorf("pc %#x: handler %#x flags %#x, want %#x", tc.pc, si.HandlerRVA, si.HandlerFlags, tc.handler)
		}
	}
}

// badMem reports counts outside [0, len(p)].
type badMem struct{ n int }

func (b badMem) ReadMemory(addr uint64, p []byte) (int, error) { return b.n, nil }

func TestMisbehavingMemory(t *testing.T) {
	for _, n := range []int{-5, 0, 3, 1 << 30} {
		u := New(badMem{n}, []Module{{Name: "x", Base: 0x1000, Size: 0x10000}})
		s := u.Walk(ctxWith(0x2000, R, nil), WalkOptions{Scan: true, FramePointer: true})
		if len(s.Frames) > 1024 {
			t.Fatalf("n=%d: %d frames", n, len(s.Frames))
		}
		if _, err := ReadUnwindInfo(badMem{n}, 0, 0); err == nil && n < 4 {
			t.Fatalf("n=%d: short read accepted", n)
		}
	}
}

// A code whose offset lies past SizeOfProlog (ntdll's
// call_consolidate_callback allocates after .seh_endprologue) applies only
// once the PC has passed it, as in Windows; Wine applies it everywhere
// outside the prolog.
func TestStepCodePastProlog(t *testing.T) {
	code := []byte{
		0x53,                                     // 00: push rbx              (1)  end of the stated prolog
		0x48, 0x81, 0xec, 0x08, 0x01, 0x00, 0x00, // 01: sub rsp, 0x108        (8)  described, but past the prolog
		0x90, // 08: body
	}
	xdata := []byte{
		0x01, 0x01, 0x03, 0x00, // v1, SizeOfProlog 1, 3 slots
		0x08, 0x01, // @8: UWOP_ALLOC_LARGE OpInfo 0
		0x21, 0x00, //   0x21*8 = 0x108
		0x01, 0x30, // @1: UWOP_PUSH_NONVOL rbx
		0x00, 0x00, // padding
	}
	stk := map[uint64]uint64{R + 8: retAddr}
	runStep(t, stepCase{name: "before the sub", code: code, xdata: xdata, pc: 1, rsp: R, stack: stk,
		wantRIP: retAddr, wantRSP: R + 16, wantRegs: map[int]uint64{rbx: R}})
	runStep(t, stepCase{name: "after the sub", code: code, xdata: xdata, pc: 8, rsp: R - 0x108, stack: stk,
		wantRIP: retAddr, wantRSP: R + 16, wantRegs: map[int]uint64{rbx: R}})
}
