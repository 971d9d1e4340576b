package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestSysrootPath: library names land under the private sysroot where
// GDB looks for them on a DOS-based target file system, and no name
// climbs out of it.
func TestSysrootPath(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{`C:\windows\system32\ntdll.dll`, "/r/C:/windows/system32/ntdll.dll"},
		{`C:\rspstub\conf.exe`, "/r/C:/rspstub/conf.exe"},
		{`C:\..\..\etc\passwd`, "/r/etc/passwd"},
		{`../../x.dll`, "/r/x.dll"},
		{`/tmp/prog.exe`, "/r/tmp/prog.exe"},
	} {
		got, err := sysrootPath("/r", tc.name)
		if assert.NoError(t, err, tc.name) {
			assert.Equal(t, tc.want, got, tc.name)
		}
	}
	for _, bad := range []string{"", `\`, "..", "/"} {
		_, err := sysrootPath("/r", bad)
		assert.Error(t, err, bad)
	}
}
