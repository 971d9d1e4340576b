package debuggee

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/arch"
	"github.com/rspstub/rspstub/internal/loaded"
	"github.com/rspstub/rspstub/rsp"
)

// fake is a backend with two modules: a program whose first section RVA
// it knows, and a DLL whose RVA is only in its headers in memory.
type fake struct {
	os      string
	mem     map[uint64][]byte
	mods    []loaded.Module
	images  map[string][]byte
	tids    []int
	seen    []loaded.Module // LibrariesListed
	gen     uint64
	lastTID int
}

func newFake(os string) *fake {
	f := &fake{os: os, mem: map[uint64][]byte{}, tids: []int{1, 2}}
	f.mods = []loaded.Module{
		{Name: "demo.exe", Path: `C:\demo\demo.exe`, HostPath: "/host/demo.exe", Base: 0x140000000, Size: 0x5000, FirstSectionRVA: 0x1000},
		{Name: "KERNEL32.dll", Path: `C:\Windows\System32\KERNEL32.dll`, Base: 0x7ff800000000, Size: 0x10000},
		{Name: "kernel.elf", Path: "/host/kernel.elf", Base: 0xffff800000000000, Size: 0x1000, Format: loaded.FormatELF},
	}
	f.images = map[string][]byte{`C:\demo\demo.exe`: []byte("MZ demo")}
	// KERNEL32.dll's headers: e_lfanew 0x80, a PE32+ header with one
	// section at RVA 0x2000.
	h := make([]byte, 0x200)
	copy(h, "MZ")
	binary.LittleEndian.PutUint32(h[0x3c:], 0x80)
	copy(h[0x80:], "PE\x00\x00")
	binary.LittleEndian.PutUint16(h[0x84:], 0x8664) // Machine
	binary.LittleEndian.PutUint16(h[0x86:], 1)      // NumberOfSections
	binary.LittleEndian.PutUint16(h[0x94:], 0xf0)   // SizeOfOptionalHeader
	binary.LittleEndian.PutUint16(h[0x98:], 0x20b)  // PE32+ magic
	sec := 0x98 + 0xf0
	copy(h[sec:], ".text\x00\x00\x00")
	binary.LittleEndian.PutUint32(h[sec+12:], 0x2000) // VirtualAddress
	f.mem[0x7ff800000000] = h
	return f
}

func (f *fake) Description() *rsp.Description           { return nil }
func (f *fake) ReadRegisters(int, []byte) error         { return nil }
func (f *fake) WriteRegisters(int, []byte) error        { return nil }
func (f *fake) ReadRegister(int, int, []byte) error     { return nil }
func (f *fake) WriteRegister(int, int, []byte) error    { return nil }
func (f *fake) WriteMemory(uint64, []byte) (int, error) { return 0, errors.New("read-only") }
func (f *fake) Resume([]rsp.ResumeAction) (rsp.Stop, error) {
	return rsp.Stop{Kind: rsp.StopSignal, Signal: rsp.SIGTRAP}, nil
}
func (f *fake) Interrupt() {}
func (f *fake) LastStop() rsp.Stop {
	return rsp.Stop{Kind: rsp.StopSignal, Signal: rsp.SIGTRAP, Thread: 1}
}

func (f *fake) ReadMemory(addr uint64, p []byte) (int, error) {
	for base, b := range f.mem {
		if addr >= base && addr-base < uint64(len(b)) {
			return copy(p, b[addr-base:]), nil
		}
	}
	return 0, errors.New("unmapped")
}

func (f *fake) Registers(tid int) (arch.Registers, error) {
	f.lastTID = tid
	return arch.Registers{RIP: 0x140001000 + uint64(tid)}, nil
}
func (f *fake) Modules() []loaded.Module { return f.mods }
func (f *fake) TEB(tid int) (uint64, error) {
	f.lastTID = tid
	return 0x7ffde000 + uint64(tid)*0x2000, nil
}
func (f *fake) ModuleFile(m loaded.Module) ([]byte, error) { return nil, fs.ErrNotExist }
func (f *fake) GuestOS() string                            { return f.os }
func (f *fake) ServesImages() bool                         { return len(f.images) > 0 }
func (f *fake) OpenImage(name string) ([]byte, error) {
	if b, ok := f.images[name]; ok {
		return b, nil
	}
	return nil, errors.New("not a module image")
}
func (f *fake) CheckThread(tid int) error {
	for _, t := range f.tids {
		if t == tid || tid == 0 {
			return nil
		}
	}
	return fmt.Errorf("no thread %d", tid)
}
func (f *fake) LibrariesListed(mods []loaded.Module) { f.seen = mods }
func (f *fake) Generation() uint64                   { return f.gen }

// commanderFake adds a backend command.
type commanderFake struct{ *fake }

func (commanderFake) MonitorCommand(cmd string, out io.Writer) (bool, error) {
	if cmd == "status" {
		_, err := io.WriteString(out, "attached\n")
		return true, err
	}
	return false, nil
}
func (commanderFake) MonitorHelp() string { return "backend commands: status\n" }

func TestOffersPerGuest(t *testing.T) {
	win := New(newFake(Windows))
	lin := New(newFake(Linux))
	none := newFake(Linux)
	none.images = nil
	noImages := New(none)
	for _, tc := range []struct {
		f             rsp.Feature
		win, lin, off bool
	}{
		{rsp.FeatureLibraries, true, false, false},
		{rsp.FeatureTIB, true, false, false},
		{rsp.FeatureLibrariesSVR4, false, true, true},
		{rsp.FeatureAuxv, false, true, true},
		{rsp.FeatureFiles, true, true, false},
		{rsp.FeatureExecFile, true, true, false},
		{rsp.FeatureCatchSyscalls, true, true, true},
	} {
		assert.Equal(t, tc.win, win.Offers(tc.f), "windows %s", tc.f)
		assert.Equal(t, tc.lin, lin.Offers(tc.f), "linux %s", tc.f)
		assert.Equal(t, tc.off, noImages.Offers(tc.f), "linux without images %s", tc.f)
	}
}

func TestLibraries(t *testing.T) {
	f := newFake(Windows)
	v := New(f)
	got := v.Libraries(nil)
	assert.Equal(t, []rsp.Library{
		{Name: `C:\demo\demo.exe`, Base: 0x140000000, SegmentAddr: 0x140001000, Program: true, HostPath: "/host/demo.exe"},
		{Name: `C:\Windows\System32\KERNEL32.dll`, Base: 0x7ff800000000, SegmentAddr: 0x7ff800002000}, // RVA from the headers in memory
	}, got, "the ELF module is left out")
	assert.Equal(t, f.mods, f.seen, "the source is told what the debugger was sent")
}

func TestFiles(t *testing.T) {
	v := New(newFake(Windows))
	file, err := v.OpenFile(`C:\demo\demo.exe`)
	require.NoError(t, err)
	b := make([]byte, file.Size())
	_, err = file.ReadAt(b, 0)
	require.NoError(t, err)
	assert.Equal(t, "MZ demo", string(b))
	require.NoError(t, file.Close())

	_, err = v.OpenFile("/etc/passwd")
	assert.ErrorIs(t, err, fs.ErrNotExist)

	name, err := v.ExecFile(1)
	require.NoError(t, err)
	assert.Equal(t, `C:\demo\demo.exe`, name)

	f := newFake(Windows)
	f.images = map[string][]byte{"other.dll": nil}
	_, err = New(f).ExecFile(1)
	assert.ErrorIs(t, err, fs.ErrNotExist, "the program's file is not served")

	for name, want := range map[string]uint64{
		"demo.exe": 0x140000000, `C:/Windows/System32/kernel32.DLL`: 0x7ff800000000, "/x/kernel.elf": 0xffff800000000000,
	} {
		got, err := v.FileLoadAddress(name)
		require.NoError(t, err, name)
		assert.Equal(t, want, got, name)
	}
	_, err = v.FileLoadAddress("ntdll.dll")
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestTIB(t *testing.T) {
	v := New(newFake(Windows))
	teb, err := v.TIBAddress(2)
	require.NoError(t, err)
	assert.Equal(t, uint64(0x7ffe2000), teb)
	_, err = v.TIBAddress(9)
	assert.ErrorContains(t, err, "no thread 9")
}

func TestMonitorThread(t *testing.T) {
	f := newFake(Windows)
	v := New(f)
	var out bytes.Buffer
	// The fake's TEB is not in memory: the command fails after asking
	// for it, which is what is checked.
	v.MonitorThread(2, "teb", &out)
	assert.Equal(t, 2, f.lastTID, "the command inspects the client's thread")
	v.MonitorThread(2, "-thread 1 teb", &out)
	assert.Equal(t, 1, f.lastTID, "-thread picks the thread")
	err := v.MonitorThread(2, "-thread 7 teb", &out)
	assert.ErrorContains(t, err, "no such thread")
}

func TestMonitorCommander(t *testing.T) {
	v := New(commanderFake{newFake(Windows)})
	var out bytes.Buffer
	require.NoError(t, v.Monitor("status", &out))
	assert.Equal(t, "attached\n", out.String())
	out.Reset()
	require.NoError(t, v.Monitor("help", &out))
	assert.True(t, strings.HasSuffix(out.String(), "backend commands: status\n"), out.String())
	assert.Contains(t, out.String(), "bt")
}

func TestMonitorGeneration(t *testing.T) {
	f := newFake(Windows)
	v := New(f)
	m := v.Commands()
	assert.Same(t, m, v.Commands(), "one monitor per guest")
	f.gen++
	assert.NotSame(t, m, v.Commands(), "a new guest gets a fresh monitor")
}
