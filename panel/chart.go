package panel

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// Charts are drawn here as inline SVG, on the server: no script library
// to vendor or keep up to date, nothing for the Content-Security-Policy to
// allow, and a chart renders on a phone with scripts off. Each bar has a
// <title>, which browsers show on hover or long press.

const (
	chartW   = 600
	chartH   = 160
	chartTop = 14 // room for the largest value's label
	chartBot = 18 // room for the first and last day
)

// point is one bar: its label (a day or week) and value.
type point struct {
	Label string
	Value float64
	Text  string // the value as the tooltip shows it
}

// barChart draws points as bars from a zero line; negative values (a day
// with more refunded than paid) go below it.
func barChart(title string, points []point) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		chartW, chartH, template.HTMLEscapeString(title))
	hi, lo := 0.0, 0.0
	for _, p := range points {
		hi, lo = max(hi, p.Value), min(lo, p.Value)
	}
	if hi == lo {
		hi = 1
	}
	plot := float64(chartH - chartTop - chartBot)
	y := func(v float64) float64 { return chartTop + (hi-v)/(hi-lo)*plot }
	zero := y(0)
	fmt.Fprintf(&b, `<line class="axis" x1="0" x2="%d" y1="%.1f" y2="%.1f"/>`, chartW, zero, zero)
	if n := len(points); n > 0 {
		step := float64(chartW) / float64(n)
		w := max(step*0.8, 1)
		for i, p := range points {
			top, h := y(p.Value), zero-y(p.Value)
			cls := "bar"
			if h < 0 {
				top, h, cls = zero, -h, "bar neg"
			}
			fmt.Fprintf(&b, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %s</title></rect>`,
				cls, float64(i)*step+(step-w)/2, top, w, max(h, 0.5), template.HTMLEscapeString(p.Label), template.HTMLEscapeString(p.Text))
		}
		fmt.Fprintf(&b, `<text class="lbl" x="2" y="%d">%s</text>`, chartH-4, template.HTMLEscapeString(points[0].Label))
		fmt.Fprintf(&b, `<text class="lbl end" x="%d" y="%d">%s</text>`, chartW-2, chartH-4, template.HTMLEscapeString(points[n-1].Label))
	}
	fmt.Fprintf(&b, `<text class="lbl" x="2" y="11">max %s</text>`, template.HTMLEscapeString(trimFloat(hi)))
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func trimFloat(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.2f", v)
}

func dayLabel(t time.Time) string { return t.Format("01-02") }
