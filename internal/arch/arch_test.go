package arch

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

func TestNames(t *testing.T) {
	assert.Equal(t, "rax", RAX.String())
	assert.Equal(t, "gs_base", GSBase.String())
	assert.Equal(t, "reg?", NumRegs.String())
	assert.Equal(t, "r-x", PermRX.String())
	assert.Equal(t, "---", PermNone.String())
}

// The C twin of Context (emulator/unicorn/machine.h) is 8-byte aligned and
// packed the same way; a field added here without it breaks that build.
func TestContextSize(t *testing.T) {
	// 812 bytes of fields, padded to a multiple of 8.
	assert.Equal(t, uintptr(816), unsafe.Sizeof(Context{}))
}
