package wine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// regValueOf returns a value's type and data (nil when missing).
func regValueOf(t *testing.T, r *registry, key, name string) (uint32, []byte) {
	t.Helper()
	k := r.lookup(nil, key)
	require.NotNil(t, k, "key %s", key)
	v := k.value(name)
	if v == nil {
		return 0, nil
	}
	return v.typ, v.data
}

// TestRegFileFormats: a .reg file and a Wine prefix's registry files
// (keys relative to the hive the file names, C escapes, timestamps after
// key names, str(N) types, hex data over several lines, #-metadata) load
// into the same tree; a folder loads as a prefix.
func TestRegFileFormats(t *testing.T) {
	dir := t.TempDir()
	system := `WINE REGISTRY Version 2
;; All keys relative to REGISTRY\\Machine

#arch=win64

[Software\\Classes\\.js] 1796617088
#time=1dd8601f6afbfd8
@="JSFile"
"Path"="C:\\windows\\system32\\"

[Software\\Classes\\CLSID\\{F414C260-6AC0-11CF-B6D1-00AA00BBBB58}\\InprocServer32] 1796617087
#time=1dd8601f602f38e
@=str(2):"%SystemRoot%\\system32\\jscript.dll"
"ThreadingModel"="Both"
"Multi"=str(7):"one\0two\0"
"Quote"="say \"hi\"\ttab \x263a"

[Software\\Wow6432Node\\Link] 1796617085
#link
"SymbolicLinkValue"=hex(6):5c,00,52,00,65,00,\
  67,00
"Count"=dword:0000002a
`
	user := `WINE REGISTRY Version 2
;; All keys relative to REGISTRY\\User\\S-1-5-21-0-0-0-1000

[Console] 1796617090
"ScreenColors"=dword:00000007
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "system.reg"), []byte(system), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "user.reg"), []byte(user), 0o644))
	regedit := "REGEDIT4\r\n\r\n[HKEY_CURRENT_USER\\Software\\Test]\r\n\"Dir\"=\"C:\\\\\"\r\n\"Bin\"=hex:01,02,\\\r\n  03\r\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "test.reg"), []byte(regedit), 0o644))

	p := &Process{reg: newRegistry()}
	require.NoError(t, p.LoadRegFile(dir))
	require.NoError(t, p.LoadRegFile(filepath.Join(dir, "test.reg")))
	r := p.reg

	typ, data := regValueOf(t, r, `\Registry\Machine\Software\Classes\.js`, "")
	assert.Equal(t, uint32(REG_SZ), typ)
	assert.Equal(t, regSZ("JSFile"), data)
	_, data = regValueOf(t, r, `\Registry\Machine\Software\Classes\.js`, "Path")
	assert.Equal(t, regSZ(`C:\windows\system32\`), data, "a string ending in a backslash is not continued")
	clsid := `\Registry\Machine\Software\Classes\CLSID\{F414C260-6AC0-11CF-B6D1-00AA00BBBB58}\InprocServer32`
	typ, data = regValueOf(t, r, clsid, "")
	assert.Equal(t, uint32(REG_EXPAND_SZ), typ)
	assert.Equal(t, regSZ(`%SystemRoot%\system32\jscript.dll`), data)
	typ, data = regValueOf(t, r, clsid, "Multi")
	assert.Equal(t, uint32(REG_MULTI_SZ), typ)
	assert.Equal(t, regSZ("one\x00two\x00"), data)
	_, data = regValueOf(t, r, clsid, "Quote")
	assert.Equal(t, regSZ("say \"hi\"\ttab \u263a"), data)
	typ, data = regValueOf(t, r, `\Registry\Machine\Software\Wow6432Node\Link`, "SymbolicLinkValue")
	assert.Equal(t, uint32(6), typ)
	assert.Equal(t, []byte{0x5c, 0, 0x52, 0, 0x65, 0, 0x67, 0}, data)
	_, data = regValueOf(t, r, `\Registry\Machine\Software\Wow6432Node\Link`, "Count")
	assert.Equal(t, regDword(42), data)
	_, data = regValueOf(t, r, hiveRoots["HKCU"]+`\Console`, "ScreenColors")
	assert.Equal(t, regDword(7), data, "user.reg goes to the guest's user")
	_, data = regValueOf(t, r, hiveRoots["HKCU"]+`\Software\Test`, "Dir")
	assert.Equal(t, regSZ(`C:\`), data)
	_, data = regValueOf(t, r, hiveRoots["HKCU"]+`\Software\Test`, "Bin")
	assert.Equal(t, []byte{1, 2, 3}, data)

	assert.Error(t, p.LoadRegFile(t.TempDir()), "an empty folder is no prefix")
	bad := filepath.Join(dir, "bad.reg")
	require.NoError(t, os.WriteFile(bad, []byte("WINE REGISTRY Version 2\n;; All keys relative to REGISTRY\\\\Nowhere\n"), 0o644))
	assert.ErrorContains(t, p.LoadRegFile(bad), "unknown registry root")
}
