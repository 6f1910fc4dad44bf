package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// plotCheck draws p50 and p99 check latency against the offered rate, for
// outreachd and the floor, on a log scale, into file (PNG).
func plotCheck(r *results, file string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("POST /v1/check, open loop, %d customers, %s", r.Config.Customers, r.Started.Format("2006-01-02"))
	p.X.Label.Text = "offered rate (checks/s)"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = false, false // bottom right: latencies are high at high rates
	series := func(fs []loadFigure, q func(loadFigure) float64) plotter.XYs {
		xys := make(plotter.XYs, 0, len(fs))
		for _, f := range fs {
			xys = append(xys, plotter.XY{X: float64(f.Offered), Y: max(q(f), 0.01)})
		}
		return xys
	}
	p50 := func(f loadFigure) float64 { return f.P50Ms }
	p99 := func(f loadFigure) float64 { return f.P99Ms }
	if err := plotutil.AddLinePoints(p,
		"outreachd p99", series(r.Check.Service, p99),
		"outreachd p50", series(r.Check.Service, p50),
		"floor p99", series(r.Check.Floor, p99),
		"floor p50", series(r.Check.Floor, p50),
	); err != nil {
		return err
	}
	target := plotter.NewFunction(func(float64) float64 { return 5 })
	target.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
	p.Add(target)
	p.Legend.Add("5 ms", target)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, file)
}

// replot draws the plot of the results in file again, without a run.
func replot(resultsFile, plotFile string) error {
	data, err := os.ReadFile(resultsFile)
	if err != nil {
		return err
	}
	var r results
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("%s: %w", resultsFile, err)
	}
	if len(r.Check.Service) == 0 {
		return fmt.Errorf("%s has no check rates to plot", resultsFile)
	}
	return plotCheck(&r, plotFile)
}
