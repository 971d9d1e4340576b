package monitor

import (
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rspstub/rspstub/internal/peimage"
)

// RemoteClient is what the remote adapter needs from a connected RSP
// client; *rsp.Client has it.
type RemoteClient interface {
	RegisterNum(name string) int
	ReadRegister(i int, dst []byte) error
	ReadMemory(addr uint64, p []byte) (int, error)
	ReadXfer(object, annex string) ([]byte, error)
	Request(pkt string) (string, error)
}

// Remote adapts any stopped RSP stub (ours, QEMU's, gdbserver's) to
// Target, so that the monitor's backtraces and commands run in the
// client: registers by name, memory with m/x packets, modules from the
// Windows library list (qXfer:libraries:read), the TEB from
// qGetTIBAddr. files, when not nil, gives the bytes of a module's file
// (for COFF symbols, DWARF lines and CFI); without it, symbols come from
// export tables in memory only.
func Remote(c RemoteClient, files func(m Module) ([]byte, error)) Target {
	return remoteTarget(&remote{c: c, files: files})
}

type remote struct {
	c     RemoteClient
	files func(Module) ([]byte, error)
	// modules cached per library list, which only changes across stops.
	libXML string
	mods   []Module
}

// remoteFiler is remote with files: a separate type so that the
// ModuleFiler assertion fails when there are none.
type remoteFiler struct{ *remote }

func (r remoteFiler) ModuleFile(m Module) ([]byte, error) { return r.files(m) }

var gprNames = [16]string{"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"}

func (r *remote) Registers() (Registers, error) {
	var regs Registers
	var b [16]byte
	read := func(name string, n int) (bool, error) {
		i := r.c.RegisterNum(name)
		if i < 0 {
			return false, nil
		}
		clear(b[:])
		if err := r.c.ReadRegister(i, b[:n]); err != nil {
			return false, fmt.Errorf("read %s: %w", name, err)
		}
		return true, nil
	}
	for i, name := range gprNames {
		ok, err := read(name, 8)
		if err != nil {
			return regs, err
		}
		if !ok {
			return regs, fmt.Errorf("the stub has no register %s (not x86-64?)", name)
		}
		regs.GPR[i] = binary.LittleEndian.Uint64(b[:])
	}
	if ok, err := read("rip", 8); err != nil || !ok {
		return regs, fmt.Errorf("read rip: %v", err)
	}
	regs.RIP = binary.LittleEndian.Uint64(b[:])
	if ok, _ := read("eflags", 4); ok {
		regs.RFLAGS = uint64(binary.LittleEndian.Uint32(b[:]))
	}
	regs.HasXMM = true
	for i := range regs.XMM {
		ok, err := read("xmm"+strconv.Itoa(i), 16)
		if err != nil || !ok {
			regs.HasXMM = false
			break
		}
		regs.XMM[i].Lo = binary.LittleEndian.Uint64(b[:8])
		regs.XMM[i].Hi = binary.LittleEndian.Uint64(b[8:])
	}
	return regs, nil
}

func (r *remote) ReadMemory(addr uint64, p []byte) (int, error) { return r.c.ReadMemory(addr, p) }

type libraryList struct {
	Libraries []struct {
		Name     string `xml:"name,attr"`
		Segments []struct {
			Address string `xml:"address,attr"`
		} `xml:"segment"`
		Sections []struct {
			Address string `xml:"address,attr"`
		} `xml:"section"`
	} `xml:"library"`
}

// Modules reads the library list; each library's image base is found
// from its first segment address (image base + the first section's RVA)
// by looking for the MZ header below it.
func (r *remote) Modules() []Module {
	x, err := r.c.ReadXfer("libraries", "")
	if err != nil {
		return nil
	}
	if string(x) == r.libXML {
		return r.mods
	}
	var ll libraryList
	if err := xml.Unmarshal(x, &ll); err != nil {
		return nil
	}
	var mods []Module
	for _, lib := range ll.Libraries {
		var addrs []struct {
			Address string `xml:"address,attr"`
		}
		addrs = append(addrs, lib.Segments...)
		addrs = append(addrs, lib.Sections...)
		if len(addrs) == 0 {
			continue
		}
		seg, err := parseNumber(addrs[0].Address)
		if err != nil {
			continue
		}
		base, size, err := r.imageAt(seg)
		if err != nil {
			continue
		}
		name := lib.Name
		if i := strings.LastIndexAny(name, `/\`); i >= 0 {
			name = name[i+1:]
		}
		mods = append(mods, Module{Name: name, Path: lib.Name, Base: base, Size: size})
	}
	r.libXML, r.mods = string(x), mods
	return mods
}

// maxHeaderSearch bounds how far below a segment address the image
// header is looked for.
const maxHeaderSearch = 64

func (r *remote) imageAt(seg uint64) (base, size uint64, err error) {
	page := seg &^ 0xfff
	for i := 0; i < maxHeaderSearch && page >= 0x1000*uint64(i); i++ {
		a := page - 0x1000*uint64(i)
		h, err := peimage.ReadNTHeaders(r, a)
		if err != nil {
			continue
		}
		return a, uint64(h.SizeOfImage), nil
	}
	return 0, 0, errors.New("no image header below the segment")
}

func (r *remote) TEB() (uint64, error) {
	rep, err := r.c.Request("qGetTIBAddr:0")
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(rep, 16, 64)
}

// remoteTarget satisfies ModuleFiler only when there are files.
func remoteTarget(r *remote) Target {
	if r.files != nil {
		return remoteFiler{r}
	}
	return r
}
