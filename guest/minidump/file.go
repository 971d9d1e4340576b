package minidump

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrNotRegular is returned for an output path that is not, or would
// not be, a regular file.
var ErrNotRegular = errors.New("not a regular file")

// CheckPath refuses output paths that are devices, pipes, sockets or
// folders (or links to them), and paths under /dev, /proc and /sys: a
// dump replaces its file, and replacing /dev/null would break the host.
func CheckPath(path string) error {
	if path == "" {
		return errors.New("no file name given")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if real, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(real, filepath.Base(abs))
	}
	for _, dir := range []string{"/dev", "/proc", "/sys"} {
		if abs == dir || strings.HasPrefix(abs, dir+"/") {
			return fmt.Errorf("%s: %w (a device or kernel file system path)", path, ErrNotRegular)
		}
	}
	st, err := os.Stat(path) // follows a link: its target is what would be replaced
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", path, err)
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, st.Mode().Type())
	}
	return nil
}

// WriteFile writes d to path: into a new file in the same folder first,
// renamed over path when complete, so a failed dump leaves no partial
// file and never writes through to a device.
func WriteFile(path string, d *Dump) (n int, err error) {
	if err := CheckPath(path); err != nil {
		return 0, err
	}
	b, err := Encode(d)
	if err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(b); err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	return len(b), nil
}
