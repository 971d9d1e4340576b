package wine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/rspstub/rspstub/internal/peimage"
)

// Install is a Wine installation's PE side: the folder of its x86-64 PE
// DLLs and programs, its NLS folder, and what we read from its ntdll.
type Install struct {
	DLLDir  string // .../wine/x86_64-windows
	NLSDir  string // .../wine/nls
	Version string // "8.0"
	Build   string // "wine-8.0 (Debian 8.0~repack-4)"

	ntdll   *peimage.File
	ntdllFS []byte // ntdll.dll's file bytes
	// syscalls maps the number in each system-call thunk to its name.
	syscalls map[uint32]string
	exports  map[string]uint32 // ntdll export name -> RVA
}

// Places Debian and upstream builds put Wine's PE DLLs and NLS files.
var (
	dllDirs = []string{
		"/usr/lib/x86_64-linux-gnu/wine/x86_64-windows",
		"/usr/lib/wine/x86_64-windows",
		"/usr/local/lib/wine/x86_64-windows",
		"/opt/wine-stable/lib/wine/x86_64-windows",
	}
	nlsDirs = []string{
		"/usr/share/wine/nls",
		"/usr/local/share/wine/nls",
		"/opt/wine-stable/share/wine/nls",
	}
)

// ErrNoWine means no Wine 8 PE DLLs were found.
var ErrNoWine = errors.New("Wine 8's PE DLLs are not installed (Debian package libwine: /usr/lib/x86_64-linux-gnu/wine/x86_64-windows)")

// Installed reports whether a usable Wine installation exists (for
// --userland auto), without reading it fully.
func Installed() bool {
	for _, d := range dllDirs {
		if _, err := os.Stat(filepath.Join(d, "ntdll.dll")); err == nil {
			return true
		}
	}
	return false
}

// FindInstall locates Wine's PE side (dllDir overrides the search) and
// checks that its ntdll is Wine 8, whose system-call and start-up
// conventions this package implements.
func FindInstall(dllDir string) (*Install, error) {
	dirs := dllDirs
	if dllDir != "" {
		dirs = []string{dllDir}
	}
	var inst *Install
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "ntdll.dll")); err == nil {
			inst = &Install{DLLDir: d}
			break
		}
	}
	if inst == nil {
		if dllDir != "" {
			return nil, fmt.Errorf("%s has no ntdll.dll: %w", dllDir, ErrNoWine)
		}
		return nil, ErrNoWine
	}
	// The NLS folder: beside the DLL folder's parent first.
	cands := append([]string{filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(inst.DLLDir))), "share", "wine", "nls")}, nlsDirs...)
	for _, d := range cands {
		if _, err := os.Stat(filepath.Join(d, "locale.nls")); err == nil {
			inst.NLSDir = d
			break
		}
	}
	if inst.NLSDir == "" {
		return nil, fmt.Errorf("Wine's NLS files (locale.nls) are missing; looked in %s", strings.Join(nlsDirs, ", "))
	}
	if err := inst.readNtdll(); err != nil {
		return nil, err
	}
	return inst, nil
}

// thunkPrefix is the start of every system-call thunk of Wine 8's PE
// ntdll: mov r10,rcx; mov eax,imm32; followed by the test of
// KUSER_SHARED_DATA.SystemCall and a syscall instruction.
var (
	thunkHead = []byte{0x4c, 0x8b, 0xd1, 0xb8}
	thunkTail = []byte{0xf6, 0x04, 0x25, 0x08, 0x03, 0xfe, 0x7f, 0x01, 0x75, 0x03, 0x0f, 0x05, 0xc3}
)

const maxSyscalls = 4096

func (inst *Install) readNtdll() error {
	path := filepath.Join(inst.DLLDir, "ntdll.dll")
	data, err := readMapped(path)
	if err != nil {
		return fmt.Errorf("read Wine's ntdll: %w", err)
	}
	f, err := peimage.Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	// Exports and thunks are read from the file itself: a Layout of the
	// whole image would cost start-up a copy of megabytes.
	img := peimage.RVAs{F: f}
	exps, err := f.FileExports()
	if err != nil {
		return fmt.Errorf("%s: exports: %w", path, err)
	}
	inst.ntdll, inst.ntdllFS = f, data
	inst.exports = make(map[string]uint32, len(exps))
	byRVA := map[uint32][]string{}
	for _, e := range exps {
		if e.Name == "" || e.Forwarder != "" {
			continue
		}
		inst.exports[e.Name] = e.RVA
		byRVA[e.RVA] = append(byRVA[e.RVA], e.Name)
	}
	// The version: the PE ntdll asks its unix side for it, so it is read
	// from the unix ntdll.so beside the PE folder ("wine-8.0 (Debian ...)").
	inst.Version, inst.Build = unixVersion(filepath.Join(filepath.Dir(inst.DLLDir), "x86_64-unix", "ntdll.so"))
	if inst.Version == "" {
		return fmt.Errorf("%s: cannot tell the Wine version (no x86_64-unix/ntdll.so with a version string beside it)", path)
	}
	if !strings.HasPrefix(inst.Version, "8.") {
		return fmt.Errorf("%s is Wine %s; only Wine 8 is supported (its system-call and start-up conventions differ between major versions)", path, inst.Version)
	}
	inst.syscalls = map[uint32]string{}
	for rva, names := range byRVA {
		if num, ok := thunkNumber(img, rva); ok {
			inst.syscalls[num] = preferredName(names)
		}
	}
	if len(inst.syscalls) < 100 || len(inst.syscalls) > maxSyscalls {
		return fmt.Errorf("%s: found %d system-call thunks; this ntdll does not look like Wine 8's", path, len(inst.syscalls))
	}
	// win32u's thunks (NtUser*, NtGdi*: numbers from 0x1000) have the same
	// shape; user32 calls some of them even in console programs.
	if data, err := os.ReadFile(filepath.Join(inst.DLLDir, "win32u.dll")); err == nil {
		if f, err := peimage.Parse(data); err == nil {
			if exps, err := f.FileExports(); err == nil {
				img := peimage.RVAs{F: f}
				n := 0
				for _, e := range exps {
					if num, ok := thunkNumber(img, e.RVA); ok && e.Name != "" && n < maxSyscalls {
						if _, dup := inst.syscalls[num]; !dup {
							inst.syscalls[num] = e.Name
							n++
						}
					}
				}
			}
		}
	}
	return nil
}

// thunkNumber reads the system-call number of a thunk at rva.
func thunkNumber(img peimage.Memory, rva uint32) (uint32, bool) {
	var buf [32]byte
	b := buf[:len(thunkHead)+4+len(thunkTail)]
	if n, _ := img.ReadMemory(uint64(rva), b); n != len(b) ||
		!bytes.Equal(b[:4], thunkHead) || !bytes.Equal(b[8:], thunkTail) {
		return 0, false
	}
	return binary.LittleEndian.Uint32(b[4:]), true
}

// preferredName picks the Nt name among a thunk's aliases (Zw*,
// RtlGetNativeSystemInformation...).
func preferredName(names []string) string {
	best := names[0]
	score := func(n string) int {
		switch {
		case strings.HasPrefix(n, "Nt"):
			return 3
		case strings.HasPrefix(n, "__wine") || strings.HasPrefix(n, "wine"):
			return 2
		case strings.HasPrefix(n, "Zw"):
			return 0
		}
		return 1
	}
	for _, n := range names[1:] {
		if s, b := score(n), score(best); s > b || (s == b && n < best) {
			best = n
		}
	}
	return best
}

// export returns the RVA of an ntdll export.
func (inst *Install) export(name string) (uint32, error) {
	rva, ok := inst.exports[name]
	if !ok {
		return 0, fmt.Errorf("Wine's ntdll has no export %s", name)
	}
	return rva, nil
}

// versionRE finds Wine's build string ("wine-8.0 (Debian 8.0~repack-4)").
var versionRE = regexp.MustCompile(`wine-([0-9]+\.[0-9]+(?:\.[0-9]+)?(?:-rc[0-9]+)?)[^\x00]{0,80}\x00`)

// unixVersion reads the version and build strings from Wine's unix ntdll.
func unixVersion(path string) (version, build string) {
	data, err := readMapped(path)
	if err != nil {
		return "", ""
	}
	// The regexp only where the build string can start.
	var m [][]byte
	for at := 0; m == nil; {
		k := bytes.Index(data[at:], []byte("wine-"))
		if k < 0 {
			return "", ""
		}
		at += k
		m = versionRE.FindSubmatch(data[at:min(len(data), at+128)])
		at++
	}
	return string(m[1]), strings.TrimSuffix(string(m[0]), "\x00")
}
