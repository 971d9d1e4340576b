package monitor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/rspstub/rspstub/guest/process"
	"github.com/rspstub/rspstub/guest/winproc"
	"github.com/rspstub/rspstub/unwind"
)

// ModuleJSON is one module in "modules -json".
type ModuleJSON struct {
	Name      string `json:"name"`
	Path      string `json:"path,omitempty"`
	Base      string `json:"base"`
	End       string `json:"end"`
	Size      string `json:"size"`
	Synthetic bool   `json:"synthetic"`
}

func (m *Monitor) cmdModules(args []string, out io.Writer) error {
	var js bool
	pos, err := parseFlags("modules", args, flagSpec{bools: map[string]*bool{"json": &js}})
	if err != nil {
		return err
	}
	if err := noArgs("modules", pos); err != nil {
		return err
	}
	mods := m.t.Modules()
	if js {
		list := make([]ModuleJSON, 0, len(mods))
		for _, md := range mods {
			list = append(list, ModuleJSON{Name: md.Name, Path: md.Path, Base: hexs(md.Base),
				End: hexs(md.Base + md.Size), Size: hexs(md.Size), Synthetic: md.Synthetic})
		}
		return writeJSON(out, struct {
			Modules []ModuleJSON `json:"modules"`
		}{list})
	}
	fmt.Fprintf(out, "%-17s  %-17s  %-10s %-20s %s\n", "Start", "End", "Size", "Module", "Path")
	for _, md := range mods {
		path := md.Path
		if md.Synthetic {
			path += " (synthesized)"
		}
		fmt.Fprintf(out, "%s  %s  %#-10x %-20s %s\n", hex16(md.Base), hex16(md.Base+md.Size), md.Size, md.Name, path)
	}
	return nil
}

func (m *Monitor) teb() (uint64, error) {
	tb, ok := m.t.(TEBer)
	if !ok {
		return 0, errors.New("this backend does not know the thread's TEB")
	}
	teb, err := tb.TEB()
	if err != nil {
		return 0, fmt.Errorf("find the TEB: %w", err)
	}
	return teb, nil
}

// field is one pointer-sized or smaller field of a guest structure.
type field struct {
	name string
	off  uint64
	size int // 1, 2, 4 or 8
}

func (m *Monitor) dumpFields(out io.Writer, base uint64, fields []field) error {
	for _, f := range fields {
		var b [8]byte
		if err := readFull(m.t, base+f.off, b[:f.size]); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		v := binary.LittleEndian.Uint64(b[:])
		fmt.Fprintf(out, "  +0x%03x %-26s %#x\n", f.off, f.name, v)
	}
	return nil
}

func (m *Monitor) cmdTEB(args []string, out io.Writer) error {
	if err := noArgs("teb", args); err != nil {
		return err
	}
	teb, err := m.teb()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "TEB at %#x\n", teb)
	return m.dumpFields(out, teb, []field{
		{"ExceptionList", process.TEBExceptionList, 8},
		{"StackBase", process.TEBStackBase, 8},
		{"StackLimit", process.TEBStackLimit, 8},
		{"SubSystemTib", 0x18, 8},
		{"FiberData", 0x20, 8},
		{"ArbitraryUserPointer", 0x28, 8},
		{"Self", process.TEBSelf, 8},
		{"EnvironmentPointer", process.TEBEnvironmentPointer, 8},
		{"ClientId.UniqueProcess", process.TEBClientID, 8},
		{"ClientId.UniqueThread", process.TEBClientID + 8, 8},
		{"ActiveRpcHandle", 0x50, 8},
		{"ThreadLocalStoragePointer", process.TEBTLSPointer, 8},
		{"ProcessEnvironmentBlock", process.TEBPEB, 8},
		{"LastErrorValue", process.TEBLastError, 4},
	})
}

func (m *Monitor) cmdPEB(args []string, out io.Writer) error {
	if err := noArgs("peb", args); err != nil {
		return err
	}
	teb, err := m.teb()
	if err != nil {
		return err
	}
	peb, err := read64(m.t, teb+process.TEBPEB)
	if err != nil {
		return fmt.Errorf("read the PEB pointer at TEB+0x60: %w", err)
	}
	if peb == 0 {
		return errors.New("peb: the TEB has no PEB pointer (TEB+0x60 is 0)")
	}
	fmt.Fprintf(out, "PEB at %#x\n", peb)
	if err := m.dumpFields(out, peb, []field{
		{"BeingDebugged", process.PEBBeingDebugged, 1},
		{"ImageBaseAddress", process.PEBImageBase, 8},
		{"Ldr", process.PEBLdr, 8},
		{"ProcessParameters", process.PEBProcessParameters, 8},
		{"ProcessHeap", process.PEBProcessHeap, 8},
		{"NumberOfProcessors", process.PEBNumberOfProcessors, 4},
		{"OSMajorVersion", process.PEBOSMajorVersion, 4},
		{"OSMinorVersion", process.PEBOSMinorVersion, 4},
		{"OSBuildNumber", process.PEBOSBuildNumber, 2},
		{"SessionId", process.PEBSessionID, 4},
	}); err != nil {
		return err
	}
	if params, err := read64(m.t, peb+process.PEBProcessParameters); err == nil && params != 0 {
		fmt.Fprintf(out, "ProcessParameters at %#x\n", params)
		for _, s := range []struct {
			name string
			off  uint64
		}{{"CurrentDirectory", process.RPPCurrentDirectory}, {"ImagePathName", process.RPPImagePathName}, {"CommandLine", process.RPPCommandLine}} {
			v, err := m.unicodeString(params + s.off)
			if err != nil {
				v = "<" + err.Error() + ">"
			}
			fmt.Fprintf(out, "  +0x%03x %-26s %q\n", s.off, s.name, v)
		}
	}
	ldr, err := read64(m.t, peb+process.PEBLdr)
	if err != nil || ldr == 0 {
		return nil
	}
	fmt.Fprintf(out, "Ldr.InLoadOrderModuleList at %#x:\n", ldr+process.LdrInLoadOrder)
	probs := winproc.Entries(m.t, ldr, nil, func(e winproc.Entry) {
		name := e.Module.Name
		if !e.OK {
			name += " (not used: see below)"
		}
		fmt.Fprintf(out, "  %s  %#-10x %s\n", hex16(e.Module.Base), uint32(e.Module.Size), name)
	})
	for _, p := range probs {
		fmt.Fprintf(out, "  problem: %s\n", p.Msg)
	}
	return nil
}

// unicodeString reads a UNICODE_STRING {Length, MaximumLength, Buffer}.
func (m *Monitor) unicodeString(addr uint64) (string, error) {
	return winproc.ReadUnicodeString(m.t, addr)
}

func (m *Monitor) cmdMemmap(args []string, out io.Writer) error {
	if err := noArgs("memmap", args); err != nil {
		return err
	}
	rl, ok := m.t.(RegionLister)
	if !ok {
		return errors.New("memmap: this backend cannot list its memory regions")
	}
	regs := rl.Regions()
	fmt.Fprintf(out, "%-17s  %-17s  %-12s %-4s %s\n", "Start", "End", "Size", "Perm", "Name")
	for _, r := range regs {
		fmt.Fprintf(out, "%s  %s  %#-12x %-4s %s\n", hex16(r.Start), hex16(r.Start+r.Size), r.Size, r.Perm, r.Name)
	}
	return nil
}

var opNames = [...]string{"UWOP_PUSH_NONVOL", "UWOP_ALLOC_LARGE", "UWOP_ALLOC_SMALL", "UWOP_SET_FPREG",
	"UWOP_SAVE_NONVOL", "UWOP_SAVE_NONVOL_FAR", "UWOP_EPILOG", "UWOP_SPARE_CODE", "UWOP_SAVE_XMM128",
	"UWOP_SAVE_XMM128_FAR", "UWOP_PUSH_MACHFRAME"}

func (m *Monitor) cmdUnwindInfo(args []string, out io.Writer) error {
	if len(args) != 1 {
		return &UsageError{Cmd: "unwind-info", Msg: "give one address or symbol (0x140001550, d, KERNEL32!BaseThreadInitThunk)"}
	}
	addr, err := m.Resolve(args[0])
	if err != nil {
		return fmt.Errorf("unwind-info: %w", err)
	}
	u := m.unwinder()
	loc := m.syms.locate(addr, addr)
	if loc.Module == "" {
		return fmt.Errorf("unwind-info: %#x is outside every module", addr)
	}
	fe, found, err := u.LookupFunctionEntry(addr)
	if err != nil {
		return fmt.Errorf("unwind-info: %#x: %w", addr, err)
	}
	if !found {
		return fmt.Errorf("unwind-info: no unwind data for %#x (%s): %s has no RUNTIME_FUNCTION covering rva %#x, so Windows unwinds it as a leaf (RIP = [RSP], RSP += 8)",
			addr, loc, loc.Module, loc.RVA)
	}
	fmt.Fprintf(out, "%#x: %s\n", addr, loc)
	img := fe.Image
	fn := fe.RuntimeFunction
	var seen []uint32 // UNWIND_INFOs printed (at most ChainLimit)
	for depth := 0; ; depth++ {
		begin := m.syms.locate(img.Base+uint64(fn.BeginAddress), img.Base+uint64(fn.BeginAddress))
		fmt.Fprintf(out, "RUNTIME_FUNCTION [%#x, %#x) (%s), UNWIND_INFO at rva %#x\n",
			fn.BeginAddress, fn.EndAddress, begin, fn.UnwindData)
		info, err := img.UnwindInfo(m.t, fn.UnwindData)
		if err != nil {
			return fmt.Errorf("unwind-info: %w", err)
		}
		writeUnwindInfo(out, info, "  ")
		if !info.Chain() {
			break
		}
		if depth+1 >= unwind.ChainLimit {
			fmt.Fprintf(out, "  chain longer than %d entries: stopped\n", unwind.ChainLimit)
			break
		}
		seen = append(seen, fn.UnwindData)
		if slices.Contains(seen, info.Chained.UnwindData) {
			fmt.Fprintf(out, "  chain loops back to the UNWIND_INFO at rva %#x: stopped\n", info.Chained.UnwindData)
			break
		}
		fn = info.Chained
		fmt.Fprintf(out, "chained parent:\n")
	}
	if addr-img.Base >= uint64(fe.BeginAddress) {
		fmt.Fprintf(out, "pc offset in function: %#x\n", addr-img.Base-uint64(fe.BeginAddress))
	}
	return nil
}

func writeUnwindInfo(out io.Writer, info *unwind.UnwindInfo, ind string) {
	var flags []string
	if info.Flags&unwind.UNW_FLAG_EHANDLER != 0 {
		flags = append(flags, "UNW_FLAG_EHANDLER")
	}
	if info.Flags&unwind.UNW_FLAG_UHANDLER != 0 {
		flags = append(flags, "UNW_FLAG_UHANDLER")
	}
	if info.Flags&unwind.UNW_FLAG_CHAININFO != 0 {
		flags = append(flags, "UNW_FLAG_CHAININFO")
	}
	if len(flags) == 0 {
		flags = append(flags, "UNW_FLAG_NHANDLER")
	}
	fmt.Fprintf(out, "%sVersion %d, Flags %s, SizeOfProlog %#x, CountOfCodes %d\n", ind, info.Version,
		strings.Join(flags, "|"), info.SizeOfProlog, info.CountOfCodes)
	if info.FrameRegister != 0 {
		fmt.Fprintf(out, "%sFrameRegister %s, FrameOffset %#x (frame register = RSP + %#x after UWOP_SET_FPREG)\n",
			ind, info.FrameReg(), info.FrameOffset, 16*uint32(info.FrameOffset))
	} else {
		fmt.Fprintf(out, "%sFrameRegister none\n", ind)
	}
	if len(info.Codes) == 0 {
		fmt.Fprintf(out, "%sno unwind codes\n", ind)
	}
	for _, c := range info.Codes {
		fmt.Fprintf(out, "%s  slot %2d  %s\n", ind, c.Index, codeText(c))
	}
	if info.Version == 2 && (info.EpilogSize != 0 || len(info.EpilogOffset) > 0) {
		fmt.Fprintf(out, "%sepilogs: size %#x, one at the function end: %v", ind, info.EpilogSize, info.EpilogAtEnd)
		for _, o := range info.EpilogOffset {
			fmt.Fprintf(out, ", at end-%#x", o)
		}
		fmt.Fprintln(out)
	}
	if info.HasHandler() {
		fmt.Fprintf(out, "%slanguage-specific handler at rva %#x, data at rva %#x\n", ind, info.HandlerRVA, info.HandlerDataRVA)
	}
	if info.Chain() {
		fmt.Fprintf(out, "%schained to RUNTIME_FUNCTION [%#x, %#x) UNWIND_INFO %#x\n", ind,
			info.Chained.BeginAddress, info.Chained.EndAddress, info.Chained.UnwindData)
	}
}

// codeText renders one unwind code in the spec's words.
func codeText(c unwind.UnwindCode) string {
	name := fmt.Sprintf("op %d", c.Op)
	if int(c.Op) < len(opNames) {
		name = opNames[c.Op]
	}
	s := fmt.Sprintf("at prolog offset %#02x: %s", c.CodeOffset, name)
	switch c.Op {
	case unwind.UWOP_PUSH_NONVOL:
		s += " " + c.Reg().String()
	case unwind.UWOP_ALLOC_LARGE, unwind.UWOP_ALLOC_SMALL:
		s += fmt.Sprintf(" %#x bytes", c.Operand)
	case unwind.UWOP_SAVE_NONVOL, unwind.UWOP_SAVE_NONVOL_FAR:
		s += fmt.Sprintf(" %s at [frame+%#x]", c.Reg(), c.Operand)
	case unwind.UWOP_SAVE_XMM128, unwind.UWOP_SAVE_XMM128_FAR:
		s += fmt.Sprintf(" xmm%d at [frame+%#x]", c.OpInfo, c.Operand)
	case unwind.UWOP_PUSH_MACHFRAME:
		if c.OpInfo != 0 {
			s += " (with error code)"
		}
	case unwind.UWOP_EPILOG:
		s += fmt.Sprintf(" info %d", c.OpInfo)
	}
	return s
}
