package http

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/insight"
)

// The chart of blocked checks over time is drawn here as SVG and rendered
// by html/template: no script and no chart library. Its colours come from
// the style sheet, by reason code (.seg-CODE), so that the page's CSP need
// not allow inline styles.

// chartCodes orders the reasons in a bar, bottom up, and in the legend.
var chartCodes = []string{
	dedupe.CodeRecentContact, dedupe.CodeFrequencyCap, dedupe.CodeOpenComplaint, dedupe.CodeAlreadyPurchased, dedupe.CodeBetterOffer,
	dedupe.CodeClaimed, dedupe.CodeQuietHours, dedupe.CodeOptedOut, dedupe.CodeDoNotCall, dedupe.CodeUnavailable,
}

// Geometry of the chart, in viewBox units.
const (
	chartW, chartH                          = 900.0, 250.0
	plotLeft, plotRight, plotTop, plotBotom = 52.0, 890.0, 14.0, 218.0
	maxXLabels                              = 8
)

type chartView struct {
	W, H    float64
	Left    float64
	Right   float64
	Bottom  float64
	Bars    []barView
	Grid    []tickView // horizontal lines, with their counts
	Labels  []tickView // the times under the bars
	Legend  []legendView
	Summary string
	Empty   bool
}

type barView struct {
	X, W  float64
	Title string
	Segs  []segView
}

type segView struct {
	Y, H float64
	Code string
}

type tickView struct {
	X, Y float64
	Text string
}

type legendView struct {
	Code, Label string
	N           int64
}

// newChart draws the blocked checks of r, a report by reason, per step and
// stacked by reason.
func newChart(r *insight.Report) chartView {
	c := chartView{W: chartW, H: chartH, Left: plotLeft, Right: plotRight, Bottom: plotBotom}
	totals := map[string]int64{}
	var peak int64
	for _, p := range r.Series {
		var sum int64
		for code, n := range p.Groups {
			totals[code] += n
			sum += n
		}
		peak = max(peak, sum)
	}
	codes := codesOf(totals)
	for _, code := range codes {
		c.Legend = append(c.Legend, legendView{Code: code, Label: reasonLabel(code), N: totals[code]})
	}
	c.Empty = r.Blocked == 0
	step, top := yScale(peak)
	for v := int64(0); v <= top; v += step {
		c.Grid = append(c.Grid, tickView{X: plotLeft - 6, Y: y(v, top), Text: fmt.Sprint(v)})
	}
	n := len(r.Series)
	slot := (plotRight - plotLeft) / float64(max(n, 1))
	every := (n + maxXLabels - 1) / maxXLabels
	for i, p := range r.Series {
		x := plotLeft + float64(i)*slot
		b := barView{W: max(1, slot*0.72)}
		b.X = x + (slot-b.W)/2
		base := int64(0)
		var parts []string
		for _, code := range codesOf(p.Groups) {
			k := p.Groups[code]
			b.Segs = append(b.Segs, segView{Y: y(base+k, top), H: y(base, top) - y(base+k, top), Code: code})
			base += k
			parts = append(parts, fmt.Sprintf("%s %d", reasonLabel(code), k))
		}
		b.Title = fmt.Sprintf("%s: %d of %d checks blocked", stepLabel(p.At, r.Step), p.Blocked, p.Checks)
		if len(parts) > 0 {
			b.Title += " (" + strings.Join(parts, ", ") + ")"
		}
		c.Bars = append(c.Bars, b)
		if i%every == 0 {
			c.Labels = append(c.Labels, tickView{X: x + slot/2, Y: plotBotom + 24, Text: axisLabel(p, r.Step)})
		}
	}
	c.Summary = fmt.Sprintf("Blocked checks per %s, by reason: %d of %d checks blocked", r.Step, r.Blocked, r.Checks)
	return c
}

// yScale returns a step of 1, 2 or 5 times a power of ten that divides
// [0, peak] into at most 5 steps, and the top of the axis.
func yScale(peak int64) (step, top int64) {
	for mag := int64(1); ; mag *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if step = m * mag; peak <= 5*step {
				return step, max(step, (peak+step-1)/step*step)
			}
		}
	}
}

func y(v, top int64) float64 {
	return plotBotom - float64(v)/float64(top)*(plotBotom-plotTop)
}

func axisLabel(p insight.Point, step string) string {
	if step == insight.StepDay {
		return p.At.UTC().Format("2 Jan")
	}
	return p.At.UTC().Format("15:04")
}

// codesOf returns the codes of counts with a count, in chart order, codes
// this page does not know last.
func codesOf(counts map[string]int64) []string {
	var out []string
	for _, code := range chartCodes {
		if counts[code] > 0 {
			out = append(out, code)
		}
	}
	for _, code := range slices.Sorted(maps.Keys(counts)) {
		if counts[code] > 0 && !slices.Contains(chartCodes, code) {
			out = append(out, code)
		}
	}
	return out
}
