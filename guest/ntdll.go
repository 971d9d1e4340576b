package guest

import "github.com/rspstub/rspstub/internal/arch"

// ntdll.dll's own exports (the loader's start of the thread): their
// handlers, listed by ntdllExports in api_kernel32.go; the exports it
// shares with KERNEL32.dll have theirs in kernel32_*.go.

// ldrInitializeThunk is the thread's first instruction: it runs the TLS
// callbacks and DllMain of every real DLL (in initialization order), then
// the program's TLS callbacks, all as guest code, and enters
// RtlUserThreadStart(entry, PEB).
func ldrInitializeThunk(c *call) error {
	p := c.p
	calls := p.initCalls(1)
	for _, cb := range p.exe.tlsCalls {
		calls = append(calls, guestCall{fn: cb, args: []uint64{p.exe.Base, 1, 0}})
	}
	return c.callSeq(calls, func(c *call) error {
		ntdll := p.findModule("ntdll.dll")
		c.jumped = true
		c.jumpRIP = ntdll.Base + uint64(ntdll.synth.codeRVA["RtlUserThreadStart"])
		c.jumpRSP = p.stackBase - 8
		if err := p.m.SetReg(arch.RCX, p.exe.entry); err != nil {
			return err
		}
		return p.m.SetReg(arch.RDX, p.peb)
	})
}

// initCalls returns the DLL_PROCESS_ATTACH calls of every DLL not yet
// initialized, in initialization order. reserved is DllMain's lpReserved:
// non-zero for static loads, 0 for LoadLibrary.
func (p *Process) initCalls(reserved uint64) []guestCall {
	var calls []guestCall
	for _, m := range p.initOrder {
		if m.inited || m.synth != nil {
			m.inited = true
			continue
		}
		m.inited = true
		for _, cb := range m.tlsCalls {
			calls = append(calls, guestCall{fn: cb, args: []uint64{m.Base, 1, 0}})
		}
		if m.entry != 0 {
			name := m.Name
			calls = append(calls, guestCall{fn: m.entry, args: []uint64{m.Base, 1, reserved}, then: func(c *call, ret uint64) error {
				if uint32(ret) == 0 {
					c.p.log.Warn("DllMain failed", "dll", name)
					return c.exit(int(int32(-1073741502))) // STATUS_DLL_INIT_FAILED
				}
				return nil
			}})
		}
	}
	return calls
}
