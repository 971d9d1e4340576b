package unicorn

/*
#include <stdint.h>
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// rsPlanSyncs is called by machine.c's edge hook when libunicorn has
// translated a block of icount (two or more) instructions, size bytes, at
// pc: it writes the
// block's sync points to out (at most max) and returns their number, or
// returns -1 with out[0] the address from which every instruction of the
// block must be synced. It is the only call from C into Go; it happens
// once per translation, never per executed instruction or block.
var planCalls int

//export rsPlanSyncs
func rsPlanSyncs(h C.uintptr_t, pc C.uint64_t, size, icount C.uint32_t, out *C.uint64_t, max C.int) C.int {
	planCalls++
	m, ok := cgo.Handle(h).Value().(*Machine)
	if !ok || max < 1 {
		return 0
	}
	n := int(size)
	if n > len(m.tbBuf) {
		n = len(m.tbBuf)
	}
	got, _ := m.ReadMemory(uint64(pc), m.tbBuf[:n])
	points, from := planSyncs(m.tbBuf[:got], uint64(pc), int(icount))
	dst := unsafe.Slice((*uint64)(unsafe.Pointer(out)), int(max))
	if from != 0 || len(points) > len(dst) {
		if from == 0 {
			from = points[0]
		}
		dst[0] = from
		return -1
	}
	copy(dst, points)
	return C.int(len(points))
}
