package wine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rspstub/rspstub/internal/peimage"
)

// TestFileExportsMatchLayout: the start-up reads ntdll's and win32u's
// exports and system-call thunks from the files themselves
// (peimage.RVAs); they must be what a Layout of each image gives.
func TestFileExportsMatchLayout(t *testing.T) {
	needWine(t)
	inst, err := FindInstall("")
	require.NoError(t, err)
	for _, name := range []string{"ntdll.dll", "win32u.dll", "kernelbase.dll"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(inst.DLLDir, name))
			require.NoError(t, err)
			f, err := peimage.Parse(data)
			require.NoError(t, err)
			img, err := f.Layout()
			require.NoError(t, err)
			want, err := f.Exports(img)
			require.NoError(t, err)
			got, err := f.FileExports()
			require.NoError(t, err)
			require.NotEmpty(t, want)
			assert.Equal(t, want, got)
			thunks := 0
			for _, e := range want {
				wn, wok := thunkNumber(peimage.Bytes(img), e.RVA)
				gn, gok := thunkNumber(peimage.RVAs{F: f}, e.RVA)
				assert.Equal(t, wok, gok, e.Name)
				assert.Equal(t, wn, gn, e.Name)
				if wok {
					thunks++
				}
			}
			t.Logf("%s: %d exports, %d system-call thunks", name, len(want), thunks)
		})
	}
	assert.Greater(t, len(inst.syscalls), 100)
}
