package rsp

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wireFrame frames a payload given as it goes on the wire (escapes and
// runs already in it).
func wireFrame(wire string) string {
	return fmt.Sprintf("$%s#%02x", wire, sumBytes([]byte(wire)))
}

// TestReadInto: a binary read reply taken straight into the caller's
// buffer (codec.into) decodes as the same reply through the reused buffer
// would: escapes, a run right after the "b", a reply longer than the
// buffer (the rest dropped), replies that are not "b..." (in the reused
// buffer, intoN -1), and a packet restarted by a '$'.
func TestReadInto(t *testing.T) {
	data := patterned(5000)
	escaped, _ := escapeRef(data)
	for _, tc := range []struct {
		name string
		wire string
		room int
		want []byte // into's decoded bytes; nil: not taken into place
		pkt  string // the payload the codec reports
	}{
		{"pattern", "b" + string(escaped), len(data), data, "b"},
		{"room to spare", "b" + string(escaped), len(data) + 100, data, "b"},
		{"longer than asked", "b" + string(escaped), 1000, data[:1000], "b"},
		{"run after b", "b*\"xy", 10, []byte("bbbbbxy"), "b"},
		{"run past the end", "ba*~", 10, bytes.Repeat([]byte("a"), 10), "b"},
		{"escapes", "b}]}\x03}\x04}\n", 4, []byte("}#$*"), "b"},
		{"empty", "b", 4, []byte{}, "b"},
		{"error", "E01", 4, nil, "E01"},
		{"not binary", "OK", 4, nil, "OK"},
		{"restarted", "bxyz$E02", 4, nil, "E02"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := wireFrame(tc.wire)
			if tc.name == "restarted" {
				// The first packet never ends: its checksum is the
				// second's.
				in = "$bxyz" + wireFrame("E02")
			}
			c := newCodecSizes(struct {
				*bytes.Reader
				discardWriter
			}{bytes.NewReader([]byte(in)), discardWriter{}}, 1<<20, 64)
			c.noAck = true
			room := make([]byte, tc.room+1)
			room[tc.room] = 0xee // past the buffer: never written
			c.into = room[:tc.room]
			ev, err := c.readEvent()
			require.NoError(t, err)
			require.Equal(t, evPacket, ev, "%v", c.bad)
			assert.Equal(t, tc.pkt, string(c.pkt))
			if tc.want == nil {
				assert.Equal(t, -1, c.intoN)
			} else {
				require.Equal(t, len(tc.want), c.intoN)
				assert.Equal(t, tc.want, room[:c.intoN])
			}
			assert.Equal(t, byte(0xee), room[tc.room], "the byte past the buffer")
		})
	}
}

// TestClientReadsIntoPlace reads memory with `x` through a server on the
// test target: the data arrives in the caller's buffer with nothing
// allocated for it, short reads and errors as before.
func TestClientReadsIntoPlace(t *testing.T) {
	c := benchClient(t)
	want := make([]byte, benchSize)
	for i := range want {
		want[i] = byte(uint32(i)*167 + uint32(i)>>9)
	}
	buf := make([]byte, benchSize+16)
	n, err := c.ReadMemoryAs(true, benchBase, buf[:benchSize])
	require.NoError(t, err)
	require.Equal(t, benchSize, n)
	assert.True(t, bytes.Equal(want, buf[:benchSize]))
	// Across the end of the region: readable up to there.
	clear(buf)
	n, err = c.ReadMemoryAs(true, benchBase+benchSize-100, buf[:1000])
	require.NoError(t, err)
	assert.Equal(t, 100, n)
	assert.Equal(t, want[benchSize-100:], buf[:100])
	assert.Equal(t, make([]byte, 900), buf[100:1000], "nothing past what was read")
	// Nothing there.
	_, err = c.ReadMemoryAs(true, 0x10, buf[:16])
	var re *RemoteError
	assert.ErrorAs(t, err, &re)
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := c.ReadMemoryPacket(true, benchBase, buf[:64<<10]); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs, "allocations per read")
}
