package process

import (
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type span struct{ b, n uint64 }

func (s *span) Span() (uint64, uint64) { return s.b, s.n }

// TestAllocations checks the binary searches against a linear model on
// random allocations: Find, IsFree, FindFree (first fit) and NextBase.
func TestAllocations(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	var s Allocations[*span]
	var all []*span
	const limit = 0x100_0000
	overlaps := func(b, n uint64) bool {
		for _, a := range all {
			if b < a.b+a.n && a.b < b+n {
				return true
			}
		}
		return false
	}
	for range 300 {
		b, n := uint64(r.Intn(limit/PageSize))*PageSize, uint64(1+r.Intn(16))*PageSize
		free := !overlaps(b, n)
		require.Equal(t, free, s.IsFree(b, n), "IsFree(%#x, %#x)", b, n)
		if free && b+n <= limit {
			a := &span{b, n}
			s.Insert(a)
			all = append(all, a)
		}
		if len(all) > 0 && r.Intn(4) == 0 {
			i := r.Intn(len(all))
			require.True(t, s.Remove(all[i]))
			all = append(all[:i], all[i+1:]...)
		}
		addr := uint64(r.Intn(limit))
		var want *span
		for _, a := range all {
			if addr >= a.b && addr < a.b+a.n {
				want = a
			}
		}
		assert.Equal(t, want, s.Find(addr), "Find(%#x)", addr)
		size, align, hint := uint64(1+r.Intn(8))*PageSize, uint64(PageSize)<<r.Intn(5), uint64(r.Intn(limit))
		got, ok := s.FindFree(size, align, hint, limit)
		wantOK, wantAddr := false, uint64(0)
		for c := (hint + align - 1) &^ (align - 1); c+size <= limit; c += align {
			if !overlaps(c, size) {
				wantOK, wantAddr = true, c
				break
			}
		}
		require.Equal(t, wantOK, ok, "FindFree(%#x, %#x, %#x)", size, align, hint)
		assert.Equal(t, wantAddr, got, "FindFree(%#x, %#x, %#x)", size, align, hint)
		next := uint64(limit)
		for _, a := range all {
			if a.b > addr && a.b < next {
				next = a.b
			}
		}
		assert.Equal(t, next, s.NextBase(addr, limit), "NextBase(%#x)", addr)
	}
	assert.Equal(t, len(all), s.Len())
	assert.False(t, s.Remove(&span{1, 1}), "an allocation never recorded")
	assert.False(t, s.IsFree(^uint64(0)-PageSize+1, 2*PageSize), "a range that wraps")
}
