package debuggee

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/rspstub/rspstub/guest/winproc"
	"github.com/rspstub/rspstub/internal/loaded"
	"github.com/rspstub/rspstub/monitor"
	"github.com/rspstub/rspstub/rsp"
	"github.com/rspstub/rspstub/unwind"
)

// Guest systems (Source.GuestOS).
const (
	Windows = "windows"
	Linux   = "linux"
)

// Target is a backend with the process views of this package: an
// rsp.Target whose optional interfaces are the layer's (library list,
// vFile, exec file, qFileLoadAddress, TIB, monitor) and, through Unwrap,
// the backend's. Like any rsp.Target its methods are called from one
// goroutine at a time.
type Target struct {
	rsp.Target // the backend's base methods (embedding the interface promotes no optional one)

	b      Backend
	os     string
	images ImageServer   // nil when the source serves no module file
	tc     ThreadChecker // nil: the monitor inspects the source's current thread
	cmds   Commander

	mon       *monitor.Monitor
	gen       uint64 // the source's generation mon belongs to
	prefer    unwind.CFIPreference
	preferSet bool
	tid       int // the thread monitor commands inspect; 0: the source's current one
}

var (
	_ rsp.Unwrapper         = (*Target)(nil)
	_ rsp.FeatureGate       = (*Target)(nil)
	_ rsp.LibraryLister     = (*Target)(nil)
	_ rsp.ExecFiler         = (*Target)(nil)
	_ rsp.FileServer        = (*Target)(nil)
	_ rsp.FileLoadAddresser = (*Target)(nil)
	_ rsp.TIBer             = (*Target)(nil)
	_ rsp.Monitor           = (*Target)(nil)
	_ rsp.ThreadMonitor     = (*Target)(nil)
)

// New wraps a backend.
func New(b Backend) *Target {
	t := &Target{Target: b, b: b, os: b.GuestOS()}
	if is, ok := b.(ImageServer); ok && is.ServesImages() {
		t.images = is
	}
	t.tc, _ = b.(ThreadChecker)
	t.cmds, _ = b.(Commander)
	if g, ok := b.(Generationer); ok {
		t.gen = g.Generation()
	}
	if s, ok := b.(Symbolizer); ok {
		s.SetSymbols(t.resolve, t.symbolName)
	}
	return t
}

// Unwrap implements rsp.Unwrapper: the backend, for the optional
// interfaces this layer does not provide.
func (t *Target) Unwrap() rsp.Target { return t.b }

// Backend returns the wrapped backend.
func (t *Target) Backend() Backend { return t.b }

// Offers implements rsp.FeatureGate: the views that fit the guest.
func (t *Target) Offers(f rsp.Feature) bool {
	switch f {
	case rsp.FeatureLibraries, rsp.FeatureTIB:
		return t.os == Windows
	case rsp.FeatureLibrariesSVR4, rsp.FeatureAuxv:
		return t.os == Linux
	case rsp.FeatureFiles, rsp.FeatureExecFile:
		return t.images != nil
	}
	return true
}

// Libraries implements rsp.LibraryLister (the Windows form): PE images by
// the path the guest's loader gives them (or the host path of a file
// the user named), relocated by their first section.
func (t *Target) Libraries(dst []rsp.Library) []rsp.Library {
	mods := t.b.Modules()
	for i, m := range mods {
		if m.Format == loaded.FormatELF {
			// A kernel or firmware the debugger loads itself (file
			// KERNEL): a Windows library entry would load it again.
			continue
		}
		rva := m.FirstSectionRVA
		if rva == 0 {
			rva = winproc.FirstSectionRVA(t.b, m.Base)
		}
		dst = append(dst, rsp.Library{Name: fileName(m), Base: m.Base, SegmentAddr: m.Base + uint64(rva),
			Program: i == 0, HostPath: m.HostPath}) // Modules lists the program first
	}
	if n, ok := t.b.(LibraryNoter); ok {
		n.LibrariesListed(mods)
	}
	return dst
}

// fileName is the name the library list gives a module.
func fileName(m loaded.Module) string {
	if m.Path != "" {
		return m.Path
	}
	return m.Name
}

// ExecFile implements rsp.ExecFiler: the program's file, when it is one
// the debugger can read.
func (t *Target) ExecFile(pid int) (string, error) {
	mods := t.b.Modules()
	if t.images == nil || len(mods) == 0 {
		return "", fmt.Errorf("no program file: %w", fs.ErrNotExist)
	}
	name := fileName(mods[0])
	if _, err := t.images.OpenImage(name); err != nil {
		return "", fmt.Errorf("the program's file %s is not served: %w", name, errors.Join(fs.ErrNotExist, err))
	}
	return name, nil
}

// OpenFile implements rsp.FileServer: only the images the source serves.
func (t *Target) OpenFile(name string) (rsp.File, error) {
	if t.images == nil {
		return nil, fmt.Errorf("open %q: no file is served: %w", name, fs.ErrNotExist)
	}
	img, err := t.images.OpenImage(name)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", name, errors.Join(fs.ErrNotExist, err))
	}
	return memFile{bytes.NewReader(img)}, nil
}

type memFile struct{ *bytes.Reader }

func (memFile) Close() error { return nil }

// FileLoadAddress implements rsp.FileLoadAddresser (LLDB): the base of
// the loaded module with that file name.
func (t *Target) FileLoadAddress(name string) (uint64, error) {
	base := baseName(name)
	for _, m := range t.b.Modules() {
		if strings.EqualFold(baseName(m.Name), base) || strings.EqualFold(baseName(m.Path), base) {
			return m.Base, nil
		}
	}
	return 0, fmt.Errorf("%s is not loaded: %w", name, fs.ErrNotExist)
}

// baseName is the last element of a Windows or Unix path.
func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// TIBAddress implements rsp.TIBer (qGetTIBAddr): thread tid's TEB.
func (t *Target) TIBAddress(tid int) (uint64, error) {
	if t.tc != nil {
		if err := t.tc.CheckThread(tid); err != nil {
			return 0, err
		}
	}
	return t.b.TEB(tid)
}
