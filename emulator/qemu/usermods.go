package qemu

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/rspstub/rspstub/guest/linuxproc"
	"github.com/rspstub/rspstub/guest/winproc"
	"github.com/rspstub/rspstub/internal/loaded"
	"github.com/rspstub/rspstub/rsp"
)

// User mode (qemu-user): the modules of the Linux program come from its
// auxiliary vector and memory (package guest/linuxproc, through the
// UserModules seam), their files from the host.

// LinuxModules is the default UserModulesFunc: the program's ELF
// modules from package guest/linuxproc.
func LinuxModules(mem winproc.Memory, auxv []byte) ([]winproc.Module, []string, error) {
	return linuxproc.Modules(mem, auxv)
}

// maxModuleFile bounds a module file read from the host for symbols.
const maxModuleFile = 512 << 20

// hostFile reads a user-mode module's file from the host: qemu-user runs
// host programs, so (without -L) the paths the guest's dynamic linker
// records are host paths. Only regular ELF files of bounded size; the
// bytes serve symbols, line tables and CFI and are never sent to the
// debugger.
func (t *Target) hostFile(m loaded.Module) ([]byte, error) {
	if t.mode != ModeUser || m.Path == "" {
		return nil, errors.New("no file for this module")
	}
	p := m.Path
	if !filepath.IsAbs(p) {
		// AT_EXECFN is as the program was started: relative to QEMU's
		// working directory.
		if t.pid <= 0 {
			return nil, fmt.Errorf("%s: a relative path, and QEMU's working directory is unknown", p)
		}
		p = filepath.Join("/proc", strconv.Itoa(t.pid), "cwd", p)
	}
	return readELFFile(p)
}

// DebugFile gives, in user mode, a stripped module's separate debug file
// where GDB looks for it, /usr/lib/debug/.build-id/xx/yyyy.debug
// (Debian's -dbg packages), for the monitor's symbols.
func (t *Target) DebugFile(m loaded.Module, buildID []byte) ([]byte, error) {
	if t.mode != ModeUser || len(buildID) < 2 || len(buildID) > 64 {
		return nil, errors.New("no debug file")
	}
	h := hex.EncodeToString(buildID)
	return readELFFile(filepath.Join("/usr/lib/debug/.build-id", h[:2], h[2:]+".debug"))
}

// readELFFile reads a regular ELF file of bounded size.
func readELFFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() > maxModuleFile {
		return nil, fmt.Errorf("%s: not a regular file of at most %d bytes", path, maxModuleFile)
	}
	b := make([]byte, st.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, err
	}
	if len(b) < 4 || binary.LittleEndian.Uint32(b) != 0x464c457f {
		return nil, fmt.Errorf("%s: not an ELF file", path)
	}
	return b, nil
}

// Auxv implements rsp.AuxvReader in user mode: QEMU's auxiliary vector,
// passed through, so that GDB finds a PIE's load address and the dynamic
// linker's breakpoint for shared-library events. In system mode it is
// empty; the layer above (package debuggee) offers it only for a Linux
// guest.
func (t *Target) Auxv() ([]byte, error) {
	t.lock()
	defer t.mu.Unlock()
	if t.mode != ModeUser {
		return nil, nil
	}
	b, err := t.c.ReadAuxv()
	return b, t.check(err)
}

// SVR4Libraries implements rsp.SVR4LibraryLister in user mode: the
// dynamic linker's link_map chain (package guest/linuxproc), which LLDB
// needs to relocate a PIE's breakpoints and GDB reads instead of walking
// r_debug itself. It is empty until the dynamic linker has run.
func (t *Target) SVR4Libraries(dst []rsp.SVR4Library) (uint64, []rsp.SVR4Library, error) {
	t.lock()
	defer t.mu.Unlock()
	if t.mode != ModeUser {
		return 0, dst, errors.New("no SVR4 library list: not a Linux program")
	}
	if t.gone.Load() {
		return 0, dst, ErrGone
	}
	if t.auxv == nil {
		auxv, err := t.c.ReadAuxv()
		if err != nil {
			return 0, dst, t.check(err)
		}
		t.auxv = auxv
	}
	chain, _, err := linuxproc.LinkMap(memOf{t}, t.auxv)
	if err != nil {
		return 0, dst, err
	}
	var main uint64
	for _, e := range chain {
		if e.Main {
			main = e.LM
			continue
		}
		dst = append(dst, rsp.SVR4Library{Name: e.Name, LM: e.LM, Addr: e.Addr, Dynamic: e.Dynamic})
	}
	return main, dst, nil
}

// Offers implements rsp.FeatureGate: catching system calls and
// allocating memory for the debugger work in a Linux program (user
// mode) only. Which process views fit the guest (library lists, auxv,
// vFile) the layer above decides.
func (t *Target) Offers(f rsp.Feature) bool {
	switch f {
	case rsp.FeatureCatchSyscalls, rsp.FeatureMemoryAllocator:
		return t.mode == ModeUser
	case rsp.FeatureReverse:
		return t.replaying() // reverse execution when QEMU replays a recording
	}
	return true
}
