package process

import "sort"

// Span is an allocation of the address space: it covers [base, base+size).
type Span interface {
	comparable
	Span() (base, size uint64)
}

// Allocations is the bookkeeping both userlands' address spaces share:
// their allocations (each its own type A, what the userland knows of
// one), sorted by base and never overlapping. Lookups are binary
// searches; a free range is found first-fit. It maps nothing itself.
type Allocations[A Span] struct {
	list []A
}

func end[A Span](a A) uint64 {
	b, n := a.Span()
	return b + n
}

func base[A Span](a A) uint64 {
	b, _ := a.Span()
	return b
}

// All returns the allocations in address order (the caller must not
// change the slice).
func (s *Allocations[A]) All() []A { return s.list }

// Len is the number of allocations.
func (s *Allocations[A]) Len() int { return len(s.list) }

// Find returns the allocation holding addr, or the zero A.
func (s *Allocations[A]) Find(addr uint64) A {
	i := sort.Search(len(s.list), func(i int) bool { return end(s.list[i]) > addr })
	if i < len(s.list) && base(s.list[i]) <= addr {
		return s.list[i]
	}
	var zero A
	return zero
}

// IsFree reports whether [b, b+size) is not empty, does not wrap and
// overlaps no allocation.
func (s *Allocations[A]) IsFree(b, size uint64) bool {
	if size == 0 || b+size < b {
		return false
	}
	i := sort.Search(len(s.list), func(i int) bool { return end(s.list[i]) > b })
	return i == len(s.list) || base(s.list[i]) >= b+size
}

// FindFree returns the lowest free range of size bytes at or above hint,
// aligned to align (a power of two), ending at or below limit.
func (s *Allocations[A]) FindFree(size, align, hint, limit uint64) (uint64, bool) {
	if size == 0 || align == 0 || align&(align-1) != 0 {
		return 0, false
	}
	cand := (hint + align - 1) &^ (align - 1)
	if cand < hint {
		return 0, false
	}
	for _, a := range s.list {
		if end(a) <= cand {
			continue
		}
		if base(a) >= cand+size {
			break
		}
		cand = (end(a) + align - 1) &^ (align - 1)
		if cand < end(a) {
			return 0, false // wrapped
		}
	}
	if cand+size < cand || cand+size > limit || !s.IsFree(cand, size) {
		return 0, false
	}
	return cand, true
}

// NextBase returns the base of the first allocation above addr, or limit
// when there is none: where a free range starting at addr ends.
func (s *Allocations[A]) NextBase(addr, limit uint64) uint64 {
	i := sort.Search(len(s.list), func(i int) bool { return base(s.list[i]) > addr })
	if i < len(s.list) {
		return base(s.list[i])
	}
	return limit
}

// Insert records a, which must not overlap any allocation (the caller
// checked with IsFree).
func (s *Allocations[A]) Insert(a A) {
	b := base(a)
	i := sort.Search(len(s.list), func(i int) bool { return base(s.list[i]) > b })
	var zero A
	s.list = append(s.list, zero)
	copy(s.list[i+1:], s.list[i:])
	s.list[i] = a
}

// Remove forgets a; it reports whether a was recorded.
func (s *Allocations[A]) Remove(a A) bool {
	b := base(a)
	i := sort.Search(len(s.list), func(i int) bool { return base(s.list[i]) >= b })
	for ; i < len(s.list) && base(s.list[i]) == b; i++ {
		if s.list[i] == a {
			s.list = append(s.list[:i], s.list[i+1:]...)
			return true
		}
	}
	return false
}
