package wine

import (
	"os"
	"syscall"
)

// readMapped returns a file's bytes through a read-only private mapping
// that lives as long as the process: the start-up reads ntdll.dll (some
// megabytes) this way, where os.ReadFile would fault in and copy every
// page of a fresh buffer before a byte is used (os.ReadFile of its 3.6 MB
// took 12-15 ms on the development machine). Nothing may write to the
// bytes.
// Any failure falls back to os.ReadFile.
func readMapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() <= 0 || st.Size() > 1<<30 {
		return os.ReadFile(path)
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		return os.ReadFile(path)
	}
	return b, nil
}
