package qemu

import (
	"github.com/stretchr/testify/require"

	"testing"

	"github.com/rspstub/rspstub/internal/fuzzcorpus"
)

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzParseTID when
// RSPSTUB_WRITE_CORPUS=1 (make fuzz-corpus): thread ids as QEMU 7.2
// system and user mode write them in stop replies and qfThreadInfo.
func TestWriteFuzzCorpus(t *testing.T) {
	if !fuzzcorpus.Enabled() {
		t.Skip("set RSPSTUB_WRITE_CORPUS=1 to regenerate the fuzz corpus")
	}
	d, err := fuzzcorpus.Reset("FuzzParseTID")
	require.NoError(t, err)
	for _, s := range []string{"p01.01", "p01.02", "p1.1", "p4bc6.4bc6", "01", "1", "-1", "0", "p1.-1", "p-1.-1", "pffffffff.ffffffff"} {
		require.NoError(t, d.Add(s))
	}
	t.Log(d)
}
