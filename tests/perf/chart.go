package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
)

// advantage is how many times better rspstub is than the peer: peer
// time / our time, or our rate / peer rate; > 1 is better.
func advantage(r row, x float64) float64 {
	if r.lowerGood {
		return 1 / x
	}
	return x
}

// writeChart draws one horizontal bar a row, on a log scale of
// advantage centred on 1: green where the row's target is met, red where
// missed, blue where it has no target; a black tick marks a ratio
// target. Rows without a ratio (figures, missing peers) are left out.
func writeChart(path string, rows []row) error {
	type bar struct {
		label     string
		adv, tick float64 // tick is NaN without a ratio target
		col       color.RGBA
	}
	var bars []bar
	lo, hi := 0.5, 2.0
	for _, r := range rows {
		x := r.ratio()
		if math.IsNaN(x) {
			continue
		}
		b := bar{label: r.short, adv: advantage(r, x), tick: math.NaN(), col: color.RGBA{0x5b, 0x7d, 0xb8, 0xff}}
		if b.label == "" {
			b.label = r.what
		}
		if r.target.op != "" {
			if _, ok := r.verdict(); ok {
				b.col = color.RGBA{0x2e, 0x9d, 0x4f, 0xff}
			} else {
				b.col = color.RGBA{0xd6, 0x3a, 0x3a, 0xff}
			}
			if !r.target.abs {
				b.tick = advantage(r, r.target.v)
				lo, hi = min(lo, b.tick), max(hi, b.tick)
			}
		}
		lo, hi = min(lo, b.adv), max(hi, b.adv)
		bars = append(bars, b)
	}
	lo, hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))

	const (
		s      = 2 // text scale
		rowH   = 26
		top    = 56
		left   = 360 // bars start here
		plotW  = 520
		right  = 110 // room for the value after the longest bar
		bottom = 40
	)
	w, h := left+plotW+right, top+rowH*len(bars)+bottom
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fill(img, 0, 0, w, h, color.White)
	black := color.RGBA{0x20, 0x20, 0x20, 0xff}
	grey := color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	xOf := func(v float64) int {
		return left + int(math.Round((math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))*plotW))
	}

	drawText(img, 10, 8, s, "rspstub vs peer: times better (log scale)", black)
	drawText(img, 10, 8+glyphH*s, 1, "peer time / our time, or our rate / peer rate. green: target met, red: missed, blue: no target; | target", black)

	// Decade grid, 1 stronger, labels underneath.
	yAxis := top + rowH*len(bars)
	for v, i := lo, 0; v <= hi*1.001 && i < 40; v, i = v*10, i+1 {
		x := xOf(v)
		c := grey
		if math.Abs(v-1) < 1e-9 {
			c = black
		}
		fill(img, x, top-4, 1, yAxis-top+8, c)
		lab := fmt.Sprintf("%gx", v)
		drawText(img, x-textWidth(lab, s)/2, yAxis+10, s, lab, black)
	}
	x1 := xOf(1)
	for i, b := range bars {
		y := top + i*rowH
		label := b.label
		for textWidth(label, s) > left-20 && len(label) > 4 {
			label = label[:len(label)-1]
		}
		drawText(img, 10, y+(rowH-7*s)/2, s, label, black)
		xb := xOf(b.adv)
		fill(img, min(x1, xb), y+4, max(abs(xb-x1), 2), rowH-8, b.col)
		xv := max(x1, xb)
		if !math.IsNaN(b.tick) {
			xt := xOf(b.tick)
			fill(img, xt-1, y+1, 3, rowH-2, black)
			xv = max(xv, xt+2)
		}
		val := fmt.Sprintf("%.2fx", b.adv)
		if b.adv >= 100 {
			val = fmt.Sprintf("%.0fx", b.adv)
		}
		drawText(img, xv+6, y+(rowH-7*s)/2, s, val, black)
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
