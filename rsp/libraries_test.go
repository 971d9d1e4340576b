package rsp

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestLibraryListForms: GDB gets segment addresses (base + first section
// RVA) and every module; LLDB gets section addresses (the image base),
// host files where there are any, and no program (issue 16 item 6).
func TestLibraryListForms(t *testing.T) {
	libs := []Library{
		{Name: `C:\rspstub\demo.exe`, Base: 0x140000000, SegmentAddr: 0x140001000, Program: true, HostPath: "/tmp/demo.exe"},
		{Name: `C:\windows\system32\ntdll.dll`, Base: 0x170000000, SegmentAddr: 0x170001000, HostPath: "/usr/lib/wine/ntdll.dll"},
		{Name: `C:\Windows\System32\KERNEL32.dll`, Base: 0x7ffb00100000, SegmentAddr: 0x7ffb00101000},
		{Name: `C:\a&b.dll`, Base: 0x10000000, SegmentAddr: 0x10001000},
	}
	assert.Equal(t, `<library-list>
  <library name="C:\rspstub\demo.exe"><segment address="0x140001000"/></library>
  <library name="C:\windows\system32\ntdll.dll"><segment address="0x170001000"/></library>
  <library name="C:\Windows\System32\KERNEL32.dll"><segment address="0x7ffb00101000"/></library>
  <library name="C:\a&amp;b.dll"><segment address="0x10001000"/></library>
</library-list>
`, LibrariesXML(libs))
	assert.Equal(t, `<library-list>
  <library name="/usr/lib/wine/ntdll.dll"><section address="0x170000000"/></library>
  <library name="C:\Windows\System32\KERNEL32.dll"><section address="0x7ffb00100000"/></library>
  <library name="C:\a&amp;b.dll"><section address="0x10000000"/></library>
</library-list>
`, LLDBLibrariesXML(libs))
}
