package guest

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rspstub/rspstub/internal/arch"
)

func writeTemp(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	// A minimal valid-looking PE32 (i386) header.
	i386 := make([]byte, 0x400)
	copy(i386, "MZ")
	binary.LittleEndian.PutUint32(i386[0x3C:], 0x80)
	copy(i386[0x80:], "PE\x00\x00")
	binary.LittleEndian.PutUint16(i386[0x84:], 0x14C)
	binary.LittleEndian.PutUint16(i386[0x84+16:], 0xE0)
	binary.LittleEndian.PutUint16(i386[0x98:], 0x10B)

	cases := []struct {
		name string
		path string
		want error
	}{
		{"missing", filepath.Join(dir, "nope.exe"), ErrNotFound},
		{"empty", writeTemp(t, dir, "empty.exe", nil), ErrNotPE},
		{"text", writeTemp(t, dir, "text.exe", []byte("#!/bin/sh\necho hi\n")), ErrNotPE},
		{"mz only", writeTemp(t, dir, "mz.exe", append([]byte("MZ"), make([]byte, 100)...)), ErrNotPE},
		{"i386", writeTemp(t, dir, "i386.exe", i386), ErrNotX64},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(newFakeMachine(), Config{Program: c.path})
			if !errors.Is(err, c.want) && !(c.want == ErrNotPE && errors.Is(err, ErrCorrupt)) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			t.Logf("%v", err)
		})
	}
}

// TestCorruptSections damages a real image's section table and import
// directory: each must be a clear error, never a panic.
func TestCorruptImages(t *testing.T) {
	exe := buildC(t, "hello-O0", "hello.c", mingwGCC("-O0"))
	good, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	lfanew := int(binary.LittleEndian.Uint32(good[0x3C:]))
	opt := lfanew + 24
	sec := opt + int(binary.LittleEndian.Uint16(good[lfanew+20:]))
	dir := t.TempDir()
	mutate := map[string]func(b []byte){
		"section beyond image": func(b []byte) { binary.LittleEndian.PutUint32(b[sec+12:], 0x7FFFF000) },
		"raw data beyond file": func(b []byte) { binary.LittleEndian.PutUint32(b[sec+20:], 0x7FFFFFF0) },
		"huge SizeOfImage":     func(b []byte) { binary.LittleEndian.PutUint32(b[opt+56:], 0xFFFFF000) },
		"import dir garbage":   func(b []byte) { binary.LittleEndian.PutUint32(b[opt+112+8:], 0x7FFF0000) },
		"entry outside":        func(b []byte) { binary.LittleEndian.PutUint32(b[opt+16:], 0x7FFFFFFF) },
		"bad alignment":        func(b []byte) { binary.LittleEndian.PutUint32(b[opt+32:], 0x300) },
		"truncated":            func(b []byte) {},
	}
	for name, f := range mutate {
		t.Run(name, func(t *testing.T) {
			b := append([]byte(nil), good...)
			f(b)
			if name == "truncated" {
				b = b[:sec+20]
			}
			path := writeTemp(t, dir, "bad.exe", b)
			_, err := Load(newFakeMachine(), Config{Program: path})
			if err == nil {
				t.Fatal("loaded a corrupt image")
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotPE) {
				t.Errorf("err = %v, not ErrCorrupt", err)
			}
			t.Logf("%v", err)
		})
	}
}

func TestUnimplementedAPI(t *testing.T) {
	exe := buildC(t, "unimpl", "unimpl.c", mingwGCC("-O0"))
	r := runUnicorn(t, exe, Config{}, nil)
	if r.unimplemented != "KERNEL32.dll!Beep" {
		t.Fatalf("unimplemented = %q; stdout %q", r.unimplemented, r.stdout)
	}
	if r.stdout != "before\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	// The guest is left at the API entry.
	rip, _ := r.p.m.Reg(arch.RIP)
	if s := r.p.stubs[rip]; s == nil || s.name != "Beep" {
		t.Errorf("rip %#x is not Beep's entry", rip)
	}
	r = runUnicorn(t, exe, Config{UnimplementedReturnsZero: true}, nil)
	if r.unimplemented != "" || r.stdout != "before\nafter 0\n" || r.exitCode != 0 {
		t.Errorf("with UnimplementedReturnsZero: %q %q exit %d", r.unimplemented, r.stdout, r.exitCode)
	}
}

// FuzzLoad feeds mutated small images to the loader: errors are fine,
// panics and hangs are not.
func FuzzLoad(f *testing.F) {
	// Seed: a synthesized DLL image (small, valid PE32+) and a few headers.
	spec := &synthSpec{name: "seed.dll", stubs: []string{"A", "B"}, data: []dataExport{{name: "D", size: 8, export: true}},
		forwards: map[string]string{"F": "kernel32.GetTickCount"}}
	si, err := buildSynth(spec, 0x180000000)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(si.image)
	exe := append([]byte(nil), si.image...)
	binary.LittleEndian.PutUint16(exe[0x84+18:], 0x22)    // EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE
	binary.LittleEndian.PutUint32(exe[0x98+16:], textRVA) // entry point: the first stub
	f.Add(exe)
	f.Add(si.image[:0x400])
	f.Add([]byte("MZ"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 {
			return
		}
		// Huge SizeOfImage values are valid input but make each run slow
		// (the image is laid out in memory); keep the fuzzer fast.
		if len(b) > 0x40 {
			if off := uint64(binary.LittleEndian.Uint32(b[0x3C:])); off+24+60 <= uint64(len(b)) &&
				binary.LittleEndian.Uint32(b[off+24+56:]) > 64<<20 {
				return
			}
		}
		path := filepath.Join(dir, "f.exe")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := Load(newFakeMachine(), Config{Program: path})
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("panic inside Load: %v", err)
			}
			return
		}
		_ = p.Modules()
	})
}
