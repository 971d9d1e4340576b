package guest

import (
	"errors"

	"github.com/rspstub/rspstub/guest/peload"
)

// Errors for bad program files. Load wraps them with the path and detail.
var (
	ErrNotFound     = errors.New("file not found")
	ErrNotPE        = peload.ErrNotPE
	ErrNotX64       = peload.ErrNotX64
	ErrCorrupt      = peload.ErrCorrupt
	ErrDLLNotFound  = errors.New("DLL not found")
	ErrImport       = errors.New("unresolved import")
	ErrNoRelocation = errors.New("image base is taken and the image has no relocations")
)
