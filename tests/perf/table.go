package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strconv"
)

// row is one line of the result table: a measurement of ours against a
// peer measured in the same run, as a ratio of medians.
type row struct {
	what      string    // what the row measures
	short     string    // its label on the chart
	ours      []float64 // per-run figures
	peer      []float64
	unit      string
	peerName  string
	peerNA    string // why the peer has no figures ("n/a (tool missing)")
	lowerGood bool   // true for times, false for rates
	figure    bool   // a figure to report, no ratio (resident memory)
	target    target
}

// target is a row's goal: on the ratio ours/peer, or (abs) on our
// median itself.
type target struct {
	op  string // "<=", "<", ">=", ">" or "" for none
	v   float64
	abs bool
}

func (t target) String() string {
	if t.op == "" {
		return "report"
	}
	s := t.op + " " + strconv.FormatFloat(t.v, 'g', -1, 64)
	if t.abs {
		return s + " (absolute)"
	}
	return s
}

// ratio is ours/peer of the medians, NaN without both.
func (r row) ratio() float64 {
	if r.figure || len(r.ours) == 0 || len(r.peer) == 0 {
		return math.NaN()
	}
	x := median(r.ours) / median(r.peer)
	if math.IsInf(x, 0) || x <= 0 {
		return math.NaN() // a side measured nothing: no ratio
	}
	return x
}

// verdict says whether the target is met, and by how much it is missed.
func (r row) verdict() (string, bool) {
	t := r.target
	if t.op == "" {
		return "", true
	}
	x := r.ratio()
	if t.abs {
		x = median(r.ours)
	}
	if math.IsNaN(x) {
		return "n/a", false
	}
	var ok bool
	switch t.op {
	case "<=":
		ok = x <= t.v
	case "<":
		ok = x < t.v
	case ">=":
		ok = x >= t.v
	case ">":
		ok = x > t.v
	}
	if ok {
		return "met", true
	}
	by := math.Abs(x/t.v-1) * 100
	if by < 10 {
		return fmt.Sprintf("missed by %.1f%%", by), false
	}
	return fmt.Sprintf("missed by %.0f%%", by), false
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printTable(w io.Writer, rows []row) {
	mode := ""
	if *quick {
		mode = " (-quick: tiny sizes, not figures)"
	}
	fmt.Fprintf(w, "\nrspstub performance, %d run(s) each, medians [min-max]; %s, %d CPUs%s\n\n",
		*runs, runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), mode)
	fmt.Fprintf(w, "| measurement | rspstub | peer | ratio | target | verdict |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		peer := r.peerName
		switch {
		case r.peerNA != "":
			peer += ": " + r.peerNA
		case len(r.peer) > 0:
			peer += ": " + fig(r.peer, r.unit)
		}
		ratio := "n/a"
		if x := r.ratio(); !math.IsNaN(x) {
			ratio = strconv.FormatFloat(x, 'f', 2, 64)
		} else if r.figure {
			ratio = "-"
		}
		v, _ := r.verdict()
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.what,
			fig(r.ours, r.unit), peer, ratio, r.target, v)
	}
}

func fig(v []float64, unit string) string {
	if len(v) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%s %s [%s-%s]", num(median(v)), unit, num(slices.Min(v)), num(slices.Max(v)))
}

func num(f float64) string {
	switch {
	case f >= 100:
		return strconv.FormatFloat(f, 'f', 0, 64)
	case f >= 1:
		return strconv.FormatFloat(f, 'f', 2, 64)
	}
	return strconv.FormatFloat(f, 'g', 3, 64)
}
