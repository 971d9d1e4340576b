package rsp

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestRFLAGSAltName: LLDB knows x86-64's flags register as rflags; GDB's
// name stays eflags. Both target.xml and qRegisterInfo carry the second
// name.
func TestRFLAGSAltName(t *testing.T) {
	d := AMD64(AMD64Options{})
	assert.Equal(t, "eflags", d.Registers[AMD64EFLAGS].Name)
	assert.Contains(t, TargetXML(d), `<reg name="eflags" bitsize="32" type="i386_eflags" regnum="17"`)
	assert.Regexp(t, `<reg name="eflags" [^>]*generic="flags" altname="rflags"/>`, TargetXML(d))

	conn, _, _ := startPipe(t, newTestTarget())
	p := newRawPeer(t, conn)
	assert.Regexp(t, `^name:eflags;alt-name:rflags;bitsize:32;.*generic:flags;$`, p.ask("qRegisterInfo11"))
	assert.Regexp(t, `^name:rax;bitsize:64;`, p.ask("qRegisterInfo0"))
}
