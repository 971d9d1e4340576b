package rsp

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAllocatePackets: LLDB's _M allocates guest memory with the asked
// permissions and answers its address; _m frees it. Bad requests are
// errors, and a target without MemoryAllocator answers empty.
func TestAllocatePackets(t *testing.T) {
	tt := newTestTarget()
	conn, _, _ := startPipe(t, tt)
	p := newRawPeer(t, conn)
	addr := p.ask("_M1000,rx")
	require.Equal(t, "140010000", addr)
	assert.Equal(t, "start:140010000;size:1000;permissions:rx;name:"+hexString("allocated")+";",
		p.ask("qMemoryRegionInfo:140010000"))
	assert.Equal(t, "140020000", p.ask("_M20,rwx"))
	assert.Equal(t, "OK", p.ask("_m140010000"))
	assert.Equal(t, "E16", p.ask("_m140010000"), "freed twice")
	for _, bad := range []string{"_M", "_M0,rw", "_Mzz,rw", "_M10,rq", "_M10", "_mzz"} {
		assert.Equal(t, "E16", p.ask(bad), bad)
	}
	assert.Equal(t, "E1c", p.ask("_M200000,rw"), "the target's refusal")

	b, _, _ := startPipe(t, &plainTarget{newTestTarget()})
	assert.Equal(t, "", newRawPeer(t, b).ask("_M1000,rwx"))
}

// plainTarget is a Target and nothing else.
type plainTarget struct{ t *testTarget }

func (p *plainTarget) Description() *Description                { return p.t.Description() }
func (p *plainTarget) ReadRegisters(tid int, dst []byte) error  { return p.t.ReadRegisters(tid, dst) }
func (p *plainTarget) WriteRegisters(tid int, src []byte) error { return p.t.WriteRegisters(tid, src) }
func (p *plainTarget) ReadRegister(tid, n int, dst []byte) error {
	return p.t.ReadRegister(tid, n, dst)
}
func (p *plainTarget) WriteRegister(tid, n int, src []byte) error {
	return p.t.WriteRegister(tid, n, src)
}
func (p *plainTarget) ReadMemory(addr uint64, b []byte) (int, error) { return p.t.ReadMemory(addr, b) }
func (p *plainTarget) WriteMemory(addr uint64, b []byte) (int, error) {
	return p.t.WriteMemory(addr, b)
}
func (p *plainTarget) Resume(a []ResumeAction) (Stop, error) { return p.t.Resume(a) }
func (p *plainTarget) Interrupt()                            { p.t.Interrupt() }
func (p *plainTarget) LastStop() Stop                        { return p.t.LastStop() }
