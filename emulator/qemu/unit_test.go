package qemu

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/rsp"
)

func TestParseTID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		id   int
		good bool
	}{
		{"1", 1, true}, {"01", 1, true}, {"4bc6", 0x4bc6, true}, {"p1.2", 2, true}, {"p4bc6.4bc7", 0x4bc7, true},
		{"0", 0, false}, {"", 0, false}, {"p1", 0, false}, {"-1", 0, false}, {"zz", 0, false}, {"ffffffffff", 0, false},
	} {
		id, ok := parseTID(tc.in)
		assert.Equal(t, tc.id, id, "parseTID(%q)", tc.in)
		assert.Equal(t, tc.good, ok, "parseTID(%q) ok", tc.in)
	}
}

func FuzzParseTID(f *testing.F) {
	for _, s := range []string{"1", "p1.2", "p", "p.", "-1", "ffffffff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if id, ok := parseTID(s); ok {
			assert.Positive(t, id, "parseTID(%q)", s)
		}
	})
}

// i386XML is what qemu-system-i386 describes (abridged): no rip.
const i386XML = `<?xml version="1.0"?><target><architecture>i386</architecture>
<feature name="org.gnu.gdb.i386.core"><reg name="eax" bitsize="32"/><reg name="esp" bitsize="32"/><reg name="eip" bitsize="32"/></feature></target>`

func TestCheckAMD64(t *testing.T) {
	d, _, err := rsp.ParseTargetXML([]byte(i386XML), nil)
	require.NoError(t, err)
	assert.ErrorContains(t, checkAMD64(d), "not x86-64", "i386 description")
	assert.NoError(t, checkAMD64(rsp.AMD64(rsp.AMD64Options{})), "amd64 description")
	assert.Error(t, checkAMD64(nil), "nil description accepted")
}

func TestModeOf(t *testing.T) {
	for in, want := range map[string]Mode{
		"qemu-system-x86_64": ModeSystem, "/usr/bin/qemu-system-x86_64": ModeSystem,
		"qemu-x86_64": ModeUser, "/opt/qemu-x86_64-static": ModeUser,
	} {
		m, err := ModeOf(in)
		if assert.NoError(t, err, "ModeOf(%q)", in) {
			assert.Equal(t, want, m, "ModeOf(%q)", in)
		}
	}
	_, err := ModeOf("gdb")
	assert.Error(t, err, "ModeOf(gdb) accepted")
}

func TestLaunchRefusesOwnGDBStub(t *testing.T) {
	for _, argv := range [][]string{
		{"qemu-system-x86_64", "-m", "32", "-s"},
		{"qemu-system-x86_64", "-gdb", "tcp::1234"},
		{"qemu-x86_64", "-g", "1234", "/bin/true"},
	} {
		_, err := Launch(argv, LaunchOptions{})
		assert.ErrorContains(t, err, "private gdbstub", "Launch(%q)", argv)
	}
	// After the program, -g is the program's own argument.
	assert.Len(t, userOptions(ModeUser, []string{"-L", "/x", "/bin/sh", "-g"}), 2, "userOptions")
}

// fakeQEMU answers the quiesce exchange like a running qemu-system: the
// first byte stops it, an unsolicited stop reply follows, then the
// answer to qAttached.
func TestQuiesce(t *testing.T) {
	for _, running := range []bool{false, true} {
		a, b := net.Pipe()
		go func() {
			defer b.Close()
			buf := make([]byte, 64)
			n, _ := b.Read(buf) // 0x03$qAttached#8f, maybe in pieces
			for n < 14 {
				m, err := b.Read(buf[n:])
				if err != nil {
					return
				}
				n += m
			}
			if running {
				b.Write([]byte("$T02thread:01;#07"))
				b.Read(buf[:1]) // '+'
			}
			b.Write([]byte("$1#31"))
			b.Read(buf[:1])
		}()
		assert.NoError(t, quiesce(a, 2*time.Second), "running=%v", running)
		a.Close()
	}
}
