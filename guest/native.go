package guest

import (
	"encoding/binary"
	"sync"
	"time"
)

// Native API functions: the synthesized DLLs' trivial exports written as
// guest machine code instead of trap stubs, so a call costs what the
// same call costs on Windows (a few instructions) and never leaves the
// emulator. They are the calls programs make in hot loops and that need
// nothing but the thread's own TEB and PEB, the clock, or their
// arguments. All are leaf functions that touch neither RSP nor a
// nonvolatile register, so they need no RUNTIME_FUNCTION: an unwinder
// finds the return address at RSP, as at any call target.
//
// They read the TEB through GS (gs:[30h] is TEB.Self; LastErrorValue is
// at TEB+68h, ClientId at TEB+40h, the PEB at gs:[60h] and its
// ProcessHeap at PEB+30h), so they stay right when Go changes those
// fields.

// teb loads TEB.Self:  65 48 8B 04 25 30 00 00 00   mov rax, gs:[30h]
var tebLoad = []byte{0x65, 0x48, 0x8B, 0x04, 0x25, 0x30, 0x00, 0x00, 0x00}

func leaf(name string, code ...[]byte) codeFunc {
	var b []byte
	for _, c := range code {
		b = append(b, c...)
	}
	return codeFunc{name: name, export: true, size: len(b),
		emit: func(uint64, func(string) uint64) []byte { return b }}
}

// The clock functions read the time stamp counter (the emulator returns
// the host's) and scale it to milliseconds since the process started:
//
//	0F 31              rdtsc
//	48 C1 E2 20        shl  rdx, 20h
//	48 09 D0           or   rax, rdx             ; TSC
//	48 2B 05 xx..      sub  rax, [tsc0]          ; since start
//	48 F7 25 xx..      mul  qword [tscMul]       ; rdx:rax = ticks * 2^32 ms/tick
//	48 0F AC D0 20     shrd rax, rdx, 20h        ; ms
//	C3                 ret
//
// tsc0 and tscMul are .data slots the loader fills from a calibration of
// the host's TSC against its clock (clockSlots). GetTickCount returns
// the low 32 bits (EAX) of the same value, as Windows does.
func tickFunc(name string) codeFunc {
	return codeFunc{name: name, export: true, size: 29,
		emit: func(here uint64, slot func(string) uint64) []byte {
			b := []byte{0x0F, 0x31, 0x48, 0xC1, 0xE2, 0x20, 0x48, 0x09, 0xD0, 0x48, 0x2B, 0x05}
			b = append(b, ripRel(here, 16, slot(slotTSC0))...)
			b = append(b, 0x48, 0xF7, 0x25)
			b = append(b, ripRel(here, 23, slot(slotTSCMul))...)
			return append(b, 0x48, 0x0F, 0xAC, 0xD0, 0x20, 0xC3)
		}}
}

// Slots that hold constants rather than other DLLs' functions (the
// leading \x7f keeps them apart from "DLL!func" names).
const (
	slotTSC0   = "\x7fclock.tsc0"
	slotTSCMul = "\x7fclock.mul"
)

var kernel32Natives = []codeFunc{
	// 8B 40 68  mov eax, [rax+68h] ; C3 ret
	leaf("GetLastError", tebLoad, []byte{0x8B, 0x40, 0x68, 0xC3}),
	// 89 48 68  mov [rax+68h], ecx ; C3 ret
	leaf("SetLastError", tebLoad, []byte{0x89, 0x48, 0x68, 0xC3}),
	// 8B 40 40  mov eax, [rax+40h] (ClientId.UniqueProcess) ; ret
	leaf("GetCurrentProcessId", tebLoad, []byte{0x8B, 0x40, 0x40, 0xC3}),
	// 8B 40 48  mov eax, [rax+48h] (ClientId.UniqueThread) ; ret
	leaf("GetCurrentThreadId", tebLoad, []byte{0x8B, 0x40, 0x48, 0xC3}),
	// 48 C7 C0 FF FF FF FF  mov rax, -1 ; ret
	leaf("GetCurrentProcess", []byte{0x48, 0xC7, 0xC0, 0xFF, 0xFF, 0xFF, 0xFF, 0xC3}),
	// 48 C7 C0 FE FF FF FF  mov rax, -2 ; ret
	leaf("GetCurrentThread", []byte{0x48, 0xC7, 0xC0, 0xFE, 0xFF, 0xFF, 0xFF, 0xC3}),
	// 65 48 8B 04 25 60 00 00 00  mov rax, gs:[60h] (PEB)
	// 48 8B 40 30                 mov rax, [rax+30h] (ProcessHeap) ; ret
	leaf("GetProcessHeap", []byte{0x65, 0x48, 0x8B, 0x04, 0x25, 0x60, 0x00, 0x00, 0x00, 0x48, 0x8B, 0x40, 0x30, 0xC3}),
	tickFunc("GetTickCount"),
	tickFunc("GetTickCount64"),
}

var crtNatives = []codeFunc{
	// strlen(s):
	//	48 89 C8     mov rax, rcx
	//	80 38 00     cmp byte [rax], 0     <- loop
	//	74 05        je  done
	//	48 FF C0     inc rax
	//	EB F6        jmp loop
	//	48 29 C8     sub rax, rcx          <- done
	//	C3           ret
	leaf("strlen", []byte{0x48, 0x89, 0xC8, 0x80, 0x38, 0x00, 0x74, 0x05, 0x48, 0xFF, 0xC0, 0xEB, 0xF6, 0x48, 0x29, 0xC8, 0xC3}),
	// wcslen(s): the same over 16-bit units, the byte count halved.
	//	48 89 C8     mov rax, rcx
	//	66 83 38 00  cmp word [rax], 0     <- loop
	//	74 06        je  done
	//	48 83 C0 02  add rax, 2
	//	EB F4        jmp loop
	//	48 29 C8     sub rax, rcx          <- done
	//	48 D1 E8     shr rax, 1
	//	C3           ret
	leaf("wcslen", []byte{0x48, 0x89, 0xC8, 0x66, 0x83, 0x38, 0x00, 0x74, 0x06, 0x48, 0x83, 0xC0, 0x02, 0xEB, 0xF4,
		0x48, 0x29, 0xC8, 0x48, 0xD1, 0xE8, 0xC3}),
}

// tscCalibration is the host TSC's rate, measured once.
var tscCalibration struct {
	once sync.Once
	hz   float64
}

// tscHz measures the time stamp counter against the host clock (a few
// milliseconds, once per rspstub process).
func tscHz() float64 {
	c := &tscCalibration
	c.once.Do(func() {
		t0, r0 := time.Now(), rdtsc()
		for time.Since(t0) < 5*time.Millisecond {
		}
		t1, r1 := time.Now(), rdtsc()
		if d := t1.Sub(t0).Seconds(); d > 0 && r1 > r0 {
			c.hz = float64(r1-r0) / d
		}
	})
	return c.hz
}

// fillClockSlots writes the clock constants of a synthesized image that
// has the native clock functions: the TSC at the process's start and the
// scale from TSC ticks to milliseconds (2^32 ms per tick). With no usable
// TSC the scale is 0 and the clock reads 0.
func (p *Process) fillClockSlots(si *synthImage) {
	r0, ok0 := si.slotRVA[slotTSC0]
	r1, ok1 := si.slotRVA[slotTSCMul]
	if !ok0 || !ok1 {
		return
	}
	// Under a virtual clock the host's TSC must not leak into guest
	// memory: both slots stay 0, and the native functions return 0.
	var mul, tsc0 uint64
	if hz := tscHz(); hz > 0 && p.cfg.Clock == nil {
		mul, tsc0 = uint64(1000*4294967296/hz), p.win32.tsc0
	}
	binary.LittleEndian.PutUint64(si.image[r0:], tsc0)
	binary.LittleEndian.PutUint64(si.image[r1:], mul)
}
