package ucwin

import "github.com/rspstub/rspstub/emulator/unicorn"

// A 64-bit Windows thread runs with cs 0x33, ss/ds/es/gs 0x2b and fs 0x53
// (fs selects the 32-bit TEB of WOW64; 64-bit code reaches its TEB
// through the GS base). Debuggers show them and some code reads them (mov
// r, sreg). They are loaded into the emulator before the userland starts,
// through a descriptor table that exists only for the load (see
// unicorn.Machine.LoadSelectors): page 0, which no Windows process maps.
var windowsSelectors = [6]uint16{0x33, 0x2b, 0x2b, 0x2b, 0x53, 0x2b} // cs ss ds es fs gs

// windowsGDT holds the descriptors of those selectors, as Windows has
// them: index 5 (0x2b) flat data, index 6 (0x33) 64-bit code, index 10
// (0x53) data; all present with DPL 3.
//
//	limit 15:0 | base 15:0 | base 23:16 | access | flags, limit 19:16 | base 31:24
//	  ff ff    |   00 00   |     00     |   f3   |        cf          |    00      data RW
//	  ff ff    |   00 00   |     00     |   fb   |        af          |    00      code, L=1
func windowsGDT() []byte {
	gdt := make([]byte, 11*8)
	data := []byte{0xff, 0xff, 0, 0, 0, 0xf3, 0xcf, 0}
	copy(gdt[5*8:], data)
	copy(gdt[6*8:], []byte{0xff, 0xff, 0, 0, 0, 0xfb, 0xaf, 0})
	copy(gdt[10*8:], data)
	return gdt
}

func loadWindowsSelectors(m *unicorn.Machine) error {
	return m.LoadSelectors(windowsSelectors, windowsGDT(), 0)
}
