package monitor

import (
	"github.com/stretchr/testify/require"

	"testing"

	"github.com/rspstub/rspstub/internal/fuzzcorpus"
)

// goldenLines are the command lines behind testdata/*.golden (the output
// of each is checked there), plus the forms users type in gdb.
var goldenLines = []string{
	"args 0", "args 1", "bt -full", "bt -json", "bt -n 1", "bt", "frame 1", "help", "memmap",
	"modules -json", "modules", "teb", "unwind-info f", "verify", "peb", "bt -full -n 3",
	"unwind-info app!g+0x4", "unwind-info 0x140001580", "args 1 -count 4", "frame 0 -json", "help bt",
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/ when
// RSPSTUB_WRITE_CORPUS=1 (make fuzz-corpus).
func TestWriteFuzzCorpus(t *testing.T) {
	if !fuzzcorpus.Enabled() {
		t.Skip("set RSPSTUB_WRITE_CORPUS=1 to regenerate the fuzz corpus")
	}
	for _, name := range []string{"FuzzRun", "FuzzParse"} {
		d, err := fuzzcorpus.Reset(name)
		require.NoError(t, err)
		for _, l := range goldenLines {
			require.NoError(t, d.Add(l))
		}
		t.Log(d)
	}
}
