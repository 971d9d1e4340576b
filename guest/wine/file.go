package wine

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// File objects: host files and folders inside the sandbox, and streams
// (the standard handles, NUL, the console).

// stream is a byte stream the guest reads or writes: a standard handle or
// a device.
type stream struct {
	kind string // "pipe", "file", "char", "nul" (standard handles, NUL), "console"
	r    io.Reader
	w    io.Writer
	eof  bool
	con  *console // kind "console": the console and which of its objects
	role int
}

type fileObject struct {
	guestPath string
	hostPath  string
	host      *os.File // open host file or folder
	isDir     bool
	readOnly  bool
	access    uint32
	options   uint32
	pos       int64
	// deleteOnClose removes the host file when the last handle closes.
	deleteOnClose bool
	// Directory listing state (NtQueryDirectoryFile).
	listing []dirEntry
	listPos int
	mask    string
	stream  *stream
}

func (f *fileObject) typeName() string { return "File" }

func (f *fileObject) release() {
	if f.host != nil {
		f.host.Close()
		f.host = nil
	}
	if f.deleteOnClose && f.hostPath != "" && !f.readOnly {
		if f.isDir {
			os.Remove(f.hostPath)
		} else {
			os.Remove(f.hostPath)
		}
	}
}

// readAll reads a whole regular file (for sections), up to max bytes.
func (f *fileObject) readAll(max int64) ([]byte, error) {
	if f.host == nil || f.isDir {
		return nil, errors.New("not a regular file")
	}
	st, err := f.host.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > max {
		return nil, errors.New("file too large to map")
	}
	b := make([]byte, st.Size())
	n, err := f.host.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:n], nil
}

// dirEntry is one name in a folder listing.
type dirEntry struct {
	name  string
	info  os.FileInfo
	isDir bool
}

// list builds the listing of a folder: ".", "..", then its entries
// sorted case-insensitively (Windows' NTFS order), symlinks and special
// files left out. C:\windows\system32 also lists Wine's DLLs.
func (p *Process) list(f *fileObject) []dirEntry {
	var out []dirEntry
	self := f.stat()
	out = append(out, dirEntry{name: ".", info: self, isDir: true})
	if !strings.EqualFold(f.guestPath, `C:\`) {
		out = append(out, dirEntry{name: "..", info: self, isDir: true})
	}
	seen := map[string]bool{}
	add := func(dir string) {
		d, err := os.Open(dir)
		if err != nil {
			return
		}
		defer d.Close()
		for n := 0; n < 64; n++ {
			ents, err := d.Readdir(1024)
			for _, e := range ents {
				if !(e.Mode().IsRegular() || e.IsDir()) || seen[strings.ToLower(e.Name())] {
					continue
				}
				seen[strings.ToLower(e.Name())] = true
				out = append(out, dirEntry{name: e.Name(), info: e, isDir: e.IsDir()})
			}
			if err != nil {
				break
			}
		}
	}
	add(f.hostPath)
	if strings.EqualFold(f.guestPath, `C:\windows\system32`) {
		add(p.fs.sysDir)
	}
	if !f.readOnly {
		for _, n := range p.fs.virtualChildren(f.guestPath) {
			if !seen[strings.ToLower(n)] {
				seen[strings.ToLower(n)] = true
				out = append(out, dirEntry{name: n, info: dirInfo{n}, isDir: true})
			}
		}
	}
	if strings.EqualFold(f.guestPath, `C:\`) && p.fs.progDir != "" && !seen[progMount] {
		if st, err := os.Stat(p.fs.progDir); err == nil {
			out = append(out, dirEntry{name: progMount, info: renamed{st, progMount}, isDir: true})
		}
	}
	rest := out[1:]
	if len(out) > 1 && out[1].name == ".." {
		rest = out[2:]
	}
	sort.SliceStable(rest, func(i, j int) bool {
		return strings.ToUpper(rest[i].name) < strings.ToUpper(rest[j].name)
	})
	return out
}

type renamed struct {
	os.FileInfo
	name string
}

func (r renamed) Name() string { return r.name }

// matchMask matches a name against a FindFirstFile mask (* and ?, and the
// DOS wildcards < > " that kernelbase turns them into), case-insensitively.
func matchMask(mask, name string) bool {
	if mask == "" || mask == "*" {
		return true
	}
	m := []rune(strings.ToUpper(mask))
	n := []rune(strings.ToUpper(name))
	var match func(i, j, depth int) bool
	match = func(i, j, depth int) bool {
		if depth > 4096 {
			return false
		}
		for i < len(m) {
			switch m[i] {
			case '*', '<':
				for k := j; k <= len(n); k++ {
					if match(i+1, k, depth+1) {
						return true
					}
				}
				return false
			case '?', '>':
				if j < len(n) {
					j++
				} else if m[i] == '?' {
					return false
				}
				i++
			case '"':
				if j < len(n) && n[j] == '.' {
					j++
				}
				i++
			default:
				if j >= len(n) || m[i] != n[j] {
					return false
				}
				i++
				j++
			}
		}
		return j == len(n)
	}
	return match(0, 0, 0)
}

// File attribute flags.
const (
	FILE_ATTRIBUTE_READONLY  = 0x1
	FILE_ATTRIBUTE_HIDDEN    = 0x2
	FILE_ATTRIBUTE_DIRECTORY = 0x10
	FILE_ATTRIBUTE_ARCHIVE   = 0x20
	FILE_ATTRIBUTE_NORMAL    = 0x80
)

// fileTimes returns creation, access, write and change times (FILETIME)
// of a host file: the virtual write time when the guest wrote it.
func (p *Process) fileTimes(host string, info os.FileInfo) int64 {
	if t, ok := p.fs.times[host]; ok {
		return t
	}
	if info == nil {
		return p.clock.systemTime()
	}
	if p.clock.real {
		return info.ModTime().UnixNano()/100 + filetimeOffset
	}
	// Files the guest did not write have the time the guest booted, so
	// listings do not depend on when the host made them.
	return virtualEpoch.UnixNano()/100 + filetimeOffset
}

func attributesOf(info os.FileInfo, readOnly bool) uint32 {
	if info == nil {
		return FILE_ATTRIBUTE_NORMAL
	}
	var a uint32
	if info.IsDir() {
		a |= FILE_ATTRIBUTE_DIRECTORY
	} else {
		a |= FILE_ATTRIBUTE_ARCHIVE
	}
	if readOnly && !info.IsDir() || info.Mode().Perm()&0o200 == 0 && !info.IsDir() {
		a |= FILE_ATTRIBUTE_READONLY
	}
	return a
}

// fileID is a stable id for a guest path (FSCTL_GET_OBJECT_ID and
// FileInternalInformation): FNV-1a of its lower-case form.
func fileID(guest string) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range []byte(strings.ToLower(guest)) {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

func hostBase(p string) string { return filepath.Base(p) }
