package unwind_test

import (
	"fmt"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/unwind"
)

// flatMemory is guest memory as one byte slice at a base address.
type flatMemory struct {
	base uint64
	data []byte
}

func (m flatMemory) ReadMemory(addr uint64, p []byte) (int, error) {
	if addr < m.base || addr-m.base >= uint64(len(m.data)) {
		return 0, nil
	}
	return copy(p, m.data[addr-m.base:]), nil
}

// A walk from a stopped thread's registers. Here the memory holds no
// image: the PC lies outside every module, so the walk reports frame 0 and
// stops with a reason; with a real guest, Memory reads guest memory and the
// module list comes from the loader.
func ExampleUnwinder_Walk() {
	mem := flatMemory{base: 0x10000, data: make([]byte, 0x1000)}
	u := unwind.New(mem, []unwind.Module{{Name: "app.exe", Base: 0x140000000, Size: 0x8000}})

	var ctx unwind.Context
	ctx.Set(arch.RIP, 0x401000)
	ctx.Set(arch.RSP, 0x10800)
	ctx.Set(arch.RBX, 42)

	st := u.Walk(ctx, unwind.WalkOptions{MaxFrames: 64})
	for i, f := range st.Frames {
		fmt.Printf("#%d pc=%#x sp=%#x (%v)\n", i, f.PC, f.SP, f.Trust)
	}
	fmt.Println("stopped:", st.Reason)
	// Output:
	// #0 pc=0x401000 sp=0x10800 (context)
	// stopped: pc outside every module
}
