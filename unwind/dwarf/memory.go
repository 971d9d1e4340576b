package dwarf

import "fmt"

// MaxEHFrameSize bounds how much of an .eh_frame ReadEHFrame copies out of
// target memory (glibc's is about 100 KiB).
const MaxEHFrameSize = 16 << 20

// ReadEHFrame reads an .eh_frame_hdr of hdrSize bytes at hdrAddr (an ELF
// module's PT_GNU_EH_FRAME segment) and the .eh_frame it points to out of
// target memory, and returns a finder that decodes FDEs on demand. The
// .eh_frame's size is not recorded anywhere in memory: up to maxSize
// bytes (at most MaxEHFrameSize) are read, stopping early at the first
// unreadable byte; the table's zero terminator ends it for decoding.
func ReadEHFrame(mem Memory, hdrAddr uint64, hdrSize, maxSize int, bases Bases) (HdrFinder, error) {
	if hdrSize <= 0 || hdrSize > MaxEHFrameSize {
		return HdrFinder{}, fmt.Errorf(".eh_frame_hdr size %d: %w", hdrSize, ErrLength)
	}
	hb := make([]byte, hdrSize)
	if err := readFull(mem, ".eh_frame_hdr", hdrAddr, hb); err != nil {
		return HdrFinder{}, err
	}
	h, err := ParseEHFrameHdr(hb, hdrAddr)
	if err != nil {
		return HdrFinder{}, err
	}
	if !h.Searchable {
		return HdrFinder{}, fmt.Errorf(".eh_frame_hdr at %#x has no searchable table: %w", hdrAddr, ErrEncoding)
	}
	if maxSize <= 0 || maxSize > MaxEHFrameSize {
		maxSize = MaxEHFrameSize
	}
	eb := make([]byte, maxSize)
	n := 0
	if h.EHFramePtr+uint64(maxSize) < h.EHFramePtr {
		eb = eb[:-h.EHFramePtr]
	}
	got, rerr := mem.ReadMemory(h.EHFramePtr, eb)
	if got > 0 && got <= len(eb) {
		n = got
	}
	if n == 0 {
		return HdrFinder{}, &ReadError{What: ".eh_frame", Addr: h.EHFramePtr, Want: len(eb), Err: rerr}
	}
	sec := NewEHFrame(eb[:n:n], h.EHFramePtr, bases)
	sec.Mem = mem
	return HdrFinder{Section: sec, Hdr: h}, nil
}
