package qemu

import "github.com/rspstub/rspstub/unwind"

// SetCFIPreference sets rspstub's --unwinder for the monitor commands:
// which unwind data bt uses for PE code that has both .pdata and DWARF
// CFI ("monitor set unwinder" changes it later).
func (t *Target) SetCFIPreference(p unwind.CFIPreference) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.commands().SetCFIPreference(p)
}
