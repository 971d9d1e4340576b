package guest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/rspstub/rspstub/internal/arch"
)

// call is one execution of an API implementation: the trapped stub, the
// stack pointer at the trap (pointing at the return address) and what the
// implementation decided (return a value, call into the guest, exit).
type call struct {
	p    *Process
	s    *stub
	rsp  uint64 // RSP at the API entry
	regs [4]uint64
	err  error // sticky: first failed guest memory access

	returned bool
	retVal   uint64
	jumpRIP  uint64 // set instead of returning (LdrInitializeThunk)
	jumpRSP  uint64
	jumped   bool
	guest    *guestCall
	exited   bool
	changed  bool // libraries changed
}

// guestCall is a pending call from Go into guest code.
type guestCall struct {
	fn   uint64
	args []uint64
	then func(c *call, ret uint64) error
}

// continuation is a guest call in flight: when the guest returns to the
// stub's callback return address with RSP == rsp+8... the Go side resumes.
type continuation struct {
	s       *stub
	apiRSP  uint64 // RSP at the API entry
	retAddr uint64 // stub + stubRetOffset
	then    func(c *call, ret uint64) error
}

// arg returns integer argument i (0-based) of the Windows x64 convention.
func (c *call) arg(i int) uint64 {
	if i < 4 {
		return c.regs[i]
	}
	v, err := c.p.mem.ReadU64(c.rsp + 8 + 8*uint64(i))
	if err != nil && c.err == nil {
		c.err = fmt.Errorf("read argument %d: %w", i, err)
	}
	return v
}

// argsText shows the first n arguments in hex ("0x1, 0x7ffb..."), for
// the log; an argument on unreadable stack shows as "?". It never sets
// the call's error.
func (c *call) argsText(n int) string {
	var b []byte
	for i := range n {
		if i > 0 {
			b = append(b, ", "...)
		}
		v := c.regs[min(i, 3)]
		if i >= 4 {
			var err error
			if v, err = c.p.mem.ReadU64(c.rsp + 8 + 8*uint64(i)); err != nil {
				b = append(b, '?')
				continue
			}
		}
		b = append(b, "0x"...)
		b = strconv.AppendUint(b, v, 16)
	}
	return string(b)
}

func (c *call) ret(v uint64) error {
	c.returned, c.retVal = true, v
	return nil
}

// callGuest arranges for fn(args...) to run in the guest; then runs when it
// returns (with the guest's RAX) and must itself return, call again or exit.
func (c *call) callGuest(fn uint64, args []uint64, then func(c *call, ret uint64) error) error {
	if len(args) > 5 {
		return fmt.Errorf("internal: guest call with %d arguments", len(args))
	}
	c.guest = &guestCall{fn: fn, args: args, then: then}
	return nil
}

// callSeq runs the guest calls one after the other, then done.
func (c *call) callSeq(calls []guestCall, done func(c *call) error) error {
	if len(calls) == 0 {
		return done(c)
	}
	g := calls[0]
	return c.callGuest(g.fn, g.args, func(c *call, ret uint64) error {
		if g.then != nil {
			if err := g.then(c, ret); err != nil {
				return err
			}
			if c.exited || c.returned {
				return nil
			}
		}
		return c.callSeq(calls[1:], done)
	})
}

func (c *call) exit(code int) error {
	c.exited = true
	c.p.exited, c.p.exitCode = true, code
	c.p.conts = nil // the guest calls in flight (the runtime's exit calling ExitProcess) end with it
	return nil
}

var errExited = errors.New("process has exited")

// HandleTrap performs the API call (or the return from a guest callback)
// whose stub the emulator stopped at, and sets the registers for the next
// run.
func (p *Process) HandleTrap(pc uint64) (res TrapResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("trap at %#x: internal error: %v", pc, r)
		}
	}()
	if p.exited {
		return TrapResult{Exited: true, ExitCode: p.exitCode}, errExited
	}
	rsp, err := p.m.Reg(arch.RSP)
	if err != nil {
		return res, err
	}
	c := &call{p: p, rsp: rsp}
	if s := p.stubs[pc]; s != nil {
		c.s = s
		for i, r := range []arch.Reg{arch.RCX, arch.RDX, arch.R8, arch.R9} {
			if c.regs[i], err = p.m.Reg(r); err != nil {
				return res, err
			}
		}
		caller, _ := p.mem.ReadU64(rsp)
		res.Caller = caller
		if p.log.Enabled(context.Background(), slog.LevelDebug) {
			p.log.Debug("api", "fn", s.mod.Name+"!"+s.name, "args", c.argsText(s.api.arity), "caller", fmt.Sprintf("%#x", caller))
		}
		if s.api.fn == nil {
			name := s.mod.Name + "!" + s.name
			if !p.cfg.UnimplementedReturnsZero {
				p.log.Info("unimplemented API", "api", name, "caller", fmt.Sprintf("%#x", caller))
				res.Unimplemented = name
				return res, nil
			}
			p.log.Debug("unimplemented API returns 0", "api", name)
			c.ret(0)
		} else if err := s.api.fn(c); err != nil {
			return res, fmt.Errorf("%s!%s: %w", s.mod.Name, s.name, err)
		}
	} else if s := p.stubs[pc-stubRetOffset]; s != nil && len(p.conts) > 0 {
		k := p.conts[len(p.conts)-1]
		if k.retAddr != pc || rsp != k.apiRSP-0x28 {
			return res, fmt.Errorf("callback return at %#x with rsp %#x does not match the pending call of %s!%s (rsp %#x)", pc, rsp, k.s.mod.Name, k.s.name, k.apiRSP-0x28)
		}
		p.conts = p.conts[:len(p.conts)-1]
		rax, err := p.m.Reg(arch.RAX)
		if err != nil {
			return res, err
		}
		c.s, c.rsp = k.s, k.apiRSP
		res.Caller, _ = p.mem.ReadU64(c.rsp)
		if err := k.then(c, rax); err != nil {
			return res, fmt.Errorf("%s!%s: %w", k.s.mod.Name, k.s.name, err)
		}
	} else {
		return res, fmt.Errorf("no trap handler at %#x", pc)
	}
	if c.err != nil {
		return res, fmt.Errorf("%s!%s: %w", c.s.mod.Name, c.s.name, c.err)
	}
	res.LibrariesChanged = c.changed
	switch {
	case c.exited:
		res.Exited, res.ExitCode = true, p.exitCode
		return res, nil
	case c.guest != nil:
		return res, p.startGuestCall(c)
	case c.jumped:
		if err := p.m.SetReg(arch.RSP, c.jumpRSP); err != nil {
			return res, err
		}
		return res, p.m.SetReg(arch.RIP, c.jumpRIP)
	case c.returned:
		ra, err := p.mem.ReadU64(c.rsp)
		if err != nil {
			return res, fmt.Errorf("read return address at %#x: %w", c.rsp, err)
		}
		if err := p.m.SetReg(arch.RAX, c.retVal); err != nil {
			return res, err
		}
		if err := p.m.SetReg(arch.RSP, c.rsp+8); err != nil {
			return res, err
		}
		return res, p.m.SetReg(arch.RIP, ra)
	}
	return res, fmt.Errorf("%s!%s: implementation did not return", c.s.mod.Name, c.s.name)
}

// startGuestCall builds the frame the stub's prolog would have built
// (sub rsp,28h) plus a call to fn returning to stub+4:
//
//	apiRSP+0x00  return address to the API's caller
//	apiRSP-0x08  argument 5 (if any)         } the stub's 0x28-byte frame:
//	apiRSP-0x28  shadow space for args 1-4   } 0x20 home area + 8
//	apiRSP-0x30  return address = stub+5     <- RSP at fn's first instruction
func (p *Process) startGuestCall(c *call) error {
	if len(p.conts) > 256 {
		return fmt.Errorf("guest callbacks nested more than 256 deep")
	}
	g := c.guest
	ret := p.stubAddr(c.s) + stubRetOffset
	sp := c.rsp - 0x30
	if err := p.mem.WriteU64(sp, ret); err != nil {
		return err
	}
	if len(g.args) > 4 {
		if err := p.mem.WriteU64(sp+0x28, g.args[4]); err != nil {
			return err
		}
	}
	regs := []arch.Reg{arch.RCX, arch.RDX, arch.R8, arch.R9}
	for i := 0; i < 4 && i < len(g.args); i++ {
		if err := p.m.SetReg(regs[i], g.args[i]); err != nil {
			return err
		}
	}
	if err := p.m.SetReg(arch.RSP, sp); err != nil {
		return err
	}
	p.conts = append(p.conts, &continuation{s: c.s, apiRSP: c.rsp, retAddr: ret, then: g.then})
	return p.m.SetReg(arch.RIP, g.fn)
}

func (p *Process) stubAddr(s *stub) uint64 {
	return s.mod.Base + uint64(s.mod.synth.stubRVA[s.name])
}
