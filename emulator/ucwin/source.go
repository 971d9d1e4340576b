package ucwin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/rspstub/rspstub/emulator/unicorn"
	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/loaded"
)

// The process as package debuggee sees it (its Source): the layer above
// serves the library list, vFile, TEBs and the monitor commands from
// these. Thread ids are the client's; 0 is the current thread.

// Registers returns thread tid's registers.
func (t *Target) Registers(tid int) (arch.Registers, error) {
	if t.exited {
		return arch.Registers{}, errors.New("the program has exited: no thread to inspect")
	}
	var c unicorn.Context
	if t.wine != nil {
		ctx, err := t.wine.ThreadContext(t.wineThread(tid))
		if err != nil {
			return arch.Registers{}, err
		}
		c = *ctx
	} else if err := t.m.ReadContext(&c); err != nil {
		return arch.Registers{}, err
	}
	r := arch.Registers{GPR: c.GPR, RIP: c.RIP, RFLAGS: c.RFLAGS, HasXMM: true}
	for i := range r.XMM {
		r.XMM[i].Lo = binary.LittleEndian.Uint64(c.XMM[i][:8])
		r.XMM[i].Hi = binary.LittleEndian.Uint64(c.XMM[i][8:])
	}
	return r, nil
}

// Modules lists the loaded images, the program first.
func (t *Target) Modules() []loaded.Module { return t.modules() }

// TEB returns thread tid's TEB.
func (t *Target) TEB(tid int) (uint64, error) {
	if t.wine != nil {
		return t.wine.TEB(t.wineThread(tid))
	}
	return t.proc.TEB(), nil
}

// ModuleFile returns a module's image as its file holds it.
func (t *Target) ModuleFile(m loaded.Module) ([]byte, error) { return t.moduleImage(m.Name) }

// GuestOS: the guest is a Windows process.
func (t *Target) GuestOS() string { return "windows" }

// ServesImages: the guest's module images are served to the debugger.
func (t *Target) ServesImages() bool { return true }

// OpenImage returns the image of a guest module, by the name the library
// list gives it, and nothing else.
func (t *Target) OpenImage(name string) ([]byte, error) {
	// GDB turns the Windows paths of the library list into C:/x/y.dll.
	return t.moduleImage(strings.ReplaceAll(name, "/", `\`))
}

// CheckThread reports whether tid is a live thread: monitor commands
// follow the client's thread.
func (t *Target) CheckThread(tid int) error { return t.checkThread(tid) }

// Regions lists the mapped memory, named by what it holds.
func (t *Target) Regions() []arch.Region {
	var out []arch.Region
	for _, r := range t.m.Regions() {
		out = append(out, arch.Region{Start: r.Start, Size: r.Size, Perm: r.Perm, Name: t.regionName(r.Start)})
	}
	return out
}

// ShadowStack returns the emulator's shadow call stack; on is false when
// it is off.
func (t *Target) ShadowStack() ([]arch.ShadowFrame, bool) {
	sf := t.m.ShadowStack() // nil when the shadow stack is off
	out := make([]arch.ShadowFrame, len(sf))
	for i, f := range sf {
		out[i] = arch.ShadowFrame{CallSite: f.CallSite, Target: f.Target, ReturnAddress: f.ReturnAddress, SP: f.SP}
	}
	return out, sf != nil
}

// Generation counts the guests this target has run: a Restart starts a
// new one.
func (t *Target) Generation() uint64 { return t.generation }

// SetSymbols gives the target the monitor's symbol lookups, for its
// traces (names of addresses) and catch points (functions by name).
func (t *Target) SetSymbols(resolve func(name string) (uint64, error), name func(pc uint64) string) {
	t.resolver, t.symbolizer = resolve, name
}

// AddCatch adds a catch point (monitor catch) and describes it.
func (t *Target) AddCatch(kind, name string) (string, error) {
	c, err := t.Catch(kind, name)
	if err != nil {
		return "", err
	}
	return t.describeCatch(*c), nil
}

// CatchList describes the catch points, one line each.
func (t *Target) CatchList() []string {
	var out []string
	for _, c := range t.Catches() {
		out = append(out, t.describeCatch(c))
	}
	return out
}

// describeCatch is a catch point's line in monitor catch.
func (t *Target) describeCatch(c CatchPoint) string {
	s := fmt.Sprintf("catch %d: %s %s", c.ID, c.Kind, c.Name)
	if c.Kind == "api" {
		addrs := t.CatchAddresses(c.ID)
		if len(addrs) == 0 {
			s += " (pending: not imported or loaded yet)"
		} else {
			var as []string
			for _, a := range addrs {
				as = append(as, fmt.Sprintf("%#x", a))
			}
			s += " at " + strings.Join(as, ", ")
		}
	}
	s += fmt.Sprintf(", %d hit(s)", c.Hits)
	if c.Last != "" {
		s += "; last: " + c.Last
	}
	return s
}
