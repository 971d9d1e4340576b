package guest

// rdtsc reads the host's time stamp counter, the clock the guest's
// rdtsc reads under Unicorn (rdtsc_amd64.s).
func rdtsc() uint64
