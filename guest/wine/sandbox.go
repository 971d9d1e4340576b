package wine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The guest's file system is a sandbox: its C: is one host folder (the
// root), C:\windows\system32 also shows Wine's PE DLLs and programs
// (read-only), and a program that lives outside the root has its folder
// shown read-only at C:\rspstub. Nothing else of the host is reachable:
// paths are resolved component by component, case-insensitively as
// Windows does, every component must be a plain file or folder (a
// symbolic link anywhere is refused), and ".." is refused (Wine's PE code
// never sends it: RtlDosPathNameToNtPathName removes it).

type sandbox struct {
	root        string // host folder of C:\
	sysDir      string // Wine's PE DLL folder, overlaid on C:\windows\system32
	progDir     string // host folder mounted at C:\rspstub, "" when inside root
	programPath string // the program's guest path
	// times keeps the (virtual) write time of files the guest wrote, so
	// that it reads back the clock it runs on.
	times map[string]int64
	// virtual holds the folders of a Windows install (lower-case guest
	// paths: `c:\windows`, `c:\users\user\appdata\local\temp`...). They
	// exist for the guest whether or not the root has them; the host
	// folder is made only when the guest creates something inside.
	virtual map[string]bool
}

const progMount = "rspstub"

func newSandbox(root, sysDir, program string) (*sandbox, error) {
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if absRoot, err = filepath.EvalSymlinks(absRoot); err != nil {
		return nil, fmt.Errorf("the guest's C: folder: %w", err)
	}
	st, err := os.Stat(absRoot)
	if err != nil || !st.IsDir() {
		return nil, fmt.Errorf("the guest's C: folder %s is not a folder", root)
	}
	s := &sandbox{root: absRoot, sysDir: sysDir, times: map[string]int64{}, virtual: map[string]bool{}}
	for _, d := range guestDirs {
		parts := strings.Split(d, `\`)
		for i := range parts {
			s.virtual[strings.ToLower(`c:\`+strings.Join(parts[:i+1], `\`))] = true
		}
	}
	prog, err := filepath.Abs(program)
	if err != nil {
		return nil, err
	}
	if prog, err = filepath.EvalSymlinks(prog); err != nil {
		return nil, err
	}
	if rel, err := filepath.Rel(absRoot, prog); err == nil && !strings.HasPrefix(rel, "..") && !filepath.IsAbs(rel) {
		s.programPath = `C:\` + strings.ReplaceAll(rel, "/", `\`)
	} else {
		s.progDir = filepath.Dir(prog)
		s.programPath = `C:\` + progMount + `\` + filepath.Base(prog)
	}
	return s, nil
}

// resolved is where a guest path leads.
type resolved struct {
	guest    string // "C:\dir\name" as the guest spells it (normalized)
	host     string // the host path ("" for devices)
	exists   bool
	isDir    bool
	readOnly bool
	device   string // "nul", "conin", "conout", "condrv" for device names
	parent   bool   // the parent exists (for creation)
	// virtual: a folder of the install skeleton the root does not have;
	// virtualParent: the parent is one (created on the host before a
	// file goes in).
	virtual, virtualParent bool
}

// invalidChars may not appear in a file name component.
const invalidChars = "\"*/:<>?|"

// resolve maps an NT path ("\??\C:\x\y") to the host.
func (s *sandbox) resolve(nt string) (resolved, ntstatus) {
	if len(nt) > 32767 {
		return resolved{}, STATUS_NAME_TOO_LONG
	}
	name := nt
	lower := strings.ToLower(name)
	switch {
	case lower == `\device\null`:
		return resolved{device: "nul", guest: `\Device\Null`}, STATUS_SUCCESS
	case strings.HasPrefix(lower, `\device\condrv`):
		return resolved{device: "condrv", guest: name}, STATUS_SUCCESS
	}
	for _, pre := range []string{`\??\`, `\dosdevices\`, `\global??\`} {
		if strings.HasPrefix(lower, pre) {
			name = name[len(pre):]
			lower = lower[len(pre):]
			goto dos
		}
	}
	return resolved{}, STATUS_OBJECT_PATH_NOT_FOUND
dos:
	switch lower {
	case "nul":
		return resolved{device: "nul", guest: "NUL"}, STATUS_SUCCESS
	case "conin$":
		return resolved{device: "conin", guest: "CONIN$"}, STATUS_SUCCESS
	case "conout$", "con":
		return resolved{device: "conout", guest: "CONOUT$"}, STATUS_SUCCESS
	}
	if len(name) < 2 || name[1] != ':' || (name[0] != 'c' && name[0] != 'C') {
		return resolved{}, STATUS_OBJECT_PATH_NOT_FOUND
	}
	rest := name[2:]
	if rest != "" && rest[0] != '\\' {
		return resolved{}, STATUS_OBJECT_NAME_INVALID
	}
	var comps []string
	for _, c := range strings.Split(rest, `\`) {
		switch c {
		case "", ".":
			continue
		case "..":
			return resolved{}, STATUS_OBJECT_NAME_INVALID
		}
		if strings.ContainsAny(c, invalidChars) || strings.ContainsFunc(c, func(r rune) bool { return r < 0x20 }) {
			return resolved{}, STATUS_OBJECT_NAME_INVALID
		}
		if len(c) > 255 {
			return resolved{}, STATUS_OBJECT_NAME_INVALID
		}
		comps = append(comps, c)
	}
	base, readOnly, sub := s.root, false, comps
	switch {
	case s.progDir != "" && len(comps) >= 1 && strings.EqualFold(comps[0], progMount):
		base, readOnly, sub = s.progDir, true, comps[1:]
	case len(comps) == 3 && strings.EqualFold(comps[0], "windows") && strings.EqualFold(comps[1], "system32"):
		if n, ok := lookupFold(s.sysDir, comps[2]); ok {
			st, err := os.Lstat(filepath.Join(s.sysDir, n))
			if err == nil && st.Mode().IsRegular() {
				comps[2] = n
				return resolved{guest: `C:\` + strings.Join(comps, `\`), host: filepath.Join(s.sysDir, n),
					exists: true, readOnly: true, parent: true}, STATUS_SUCCESS
			}
		}
	}
	host := base
	virt := false
	for i, c := range sub {
		last := i == len(sub)-1
		n, ok := "", false
		if !virt {
			n, ok = lookupFold(host, c)
		}
		if !ok {
			k := len(comps) - len(sub) + i
			if !readOnly && s.virtual[strings.ToLower(`c:\`+strings.Join(comps[:k+1], `\`))] {
				host = filepath.Join(host, c)
				virt = true
				if last {
					return resolved{guest: s.guestOf(comps, len(comps), ""), host: host, exists: true, isDir: true,
						parent: true, virtual: true}, STATUS_SUCCESS
				}
				continue
			}
			if !last {
				return resolved{}, STATUS_OBJECT_PATH_NOT_FOUND
			}
			host = filepath.Join(host, c)
			return resolved{guest: s.guestOf(comps, len(comps)-1, c), host: host, readOnly: readOnly, parent: true,
				virtualParent: virt}, STATUS_SUCCESS
		}
		host = filepath.Join(host, n)
		st, err := os.Lstat(host)
		if err != nil {
			return resolved{}, STATUS_OBJECT_PATH_NOT_FOUND
		}
		if st.Mode()&fs.ModeSymlink != 0 || !(st.Mode().IsRegular() || st.IsDir()) {
			return resolved{}, STATUS_ACCESS_DENIED
		}
		comps[len(comps)-len(sub)+i] = n
		if !last && !st.IsDir() {
			return resolved{}, STATUS_OBJECT_PATH_NOT_FOUND
		}
		if last {
			return resolved{guest: s.guestOf(comps, len(comps), ""), host: host, exists: true,
				isDir: st.IsDir(), readOnly: readOnly, parent: true}, STATUS_SUCCESS
		}
	}
	// The mount point or C:\ itself.
	return resolved{guest: s.guestOf(comps, len(comps), ""), host: host, exists: true, isDir: true,
		readOnly: readOnly, parent: true}, STATUS_SUCCESS
}

func (s *sandbox) guestOf(comps []string, n int, last string) string {
	parts := append(append([]string{}, comps[:n]...), last)
	if last == "" {
		parts = parts[:n]
	}
	return `C:\` + strings.Join(parts, `\`)
}

// lookupFold finds name in dir, exactly or else case-insensitively.
func lookupFold(dir, name string) (string, bool) {
	if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
		return name, true
	}
	f, err := os.Open(dir)
	if err != nil {
		return "", false
	}
	defer f.Close()
	for n := 0; n < 64; n++ { // bounded: 64 x 1024 entries
		names, err := f.Readdirnames(1024)
		for _, e := range names {
			if strings.EqualFold(e, name) {
				return e, true
			}
		}
		if err != nil {
			break
		}
	}
	return "", false
}

// statusOf maps a host error to an NTSTATUS.
func statusOf(err error) ntstatus {
	switch {
	case err == nil:
		return STATUS_SUCCESS
	case errors.Is(err, fs.ErrNotExist):
		return STATUS_OBJECT_NAME_NOT_FOUND
	case errors.Is(err, fs.ErrExist):
		return STATUS_OBJECT_NAME_COLLISION
	case errors.Is(err, fs.ErrPermission):
		return STATUS_ACCESS_DENIED
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "not empty") {
		return STATUS_DIRECTORY_NOT_EMPTY
	}
	if errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "no space") {
		return STATUS_DISK_FULL
	}
	return STATUS_UNSUCCESSFUL
}

// virtualChildren lists the skeleton folders directly inside a guest
// folder (lower-case guest path), with their spelling.
func (s *sandbox) virtualChildren(guest string) []string {
	prefix := strings.TrimSuffix(strings.ToLower(guest), `\`) + `\`
	var out []string
	for _, d := range guestDirs {
		parts := strings.Split(d, `\`)
		for i := range parts {
			full := strings.ToLower(`c:\` + strings.Join(parts[:i+1], `\`))
			if strings.HasPrefix(full, prefix) && !strings.Contains(full[len(prefix):], `\`) {
				out = append(out, parts[i])
			}
		}
	}
	return out
}

// dirInfo is the os.FileInfo of a virtual folder.
type dirInfo struct{ name string }

func (d dirInfo) Name() string       { return d.name }
func (d dirInfo) Size() int64        { return 0 }
func (d dirInfo) Mode() fs.FileMode  { return fs.ModeDir | 0o755 }
func (d dirInfo) ModTime() time.Time { return virtualEpoch }
func (d dirInfo) IsDir() bool        { return true }
func (d dirInfo) Sys() any           { return nil }
