package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// scenario is one row of the table: a figure, its baseline from the same
// run, their ratio, and the target.
type scenario struct {
	N             int      `json:"n"`
	Name          string   `json:"name"`
	Figure        string   `json:"figure"` // what Value is
	Value         float64  `json:"value"`
	Unit          string   `json:"unit"`
	Baseline      string   `json:"baseline"`
	BaselineValue float64  `json:"baseline_value"`
	Ratio         float64  `json:"ratio"` // Value ÷ BaselineValue
	Target        string   `json:"target"`
	Met           *bool    `json:"met,omitempty"` // nil: the run's sizes cannot tell
	Summary       string   `json:"summary"`       // the figures in words
	Notes         []string `json:"notes,omitempty"`
}

type historyFigure struct {
	Events int `json:"events"`
	loadFigure
}

type memoryFigure struct {
	SampledCustomers           int     `json:"sampled_customers"`
	SampledEvents              int64   `json:"sampled_events"`
	UsageBytesPerEvent         float64 `json:"usage_bytes_per_event"`
	UsageBytesPerCustomer      float64 `json:"usage_bytes_per_customer"`
	UsedMemoryBytesPerEvent    float64 `json:"used_memory_bytes_per_event"`
	UsedMemoryBytesPerCustomer float64 `json:"used_memory_bytes_per_customer"`
	JSONBytesPerEvent          float64 `json:"json_bytes_per_event"`
	HistoryEncoding            string  `json:"history_encoding"`
	StateEncoding              string  `json:"state_encoding"`
}

// results is everything a run measured; it is latest.json.
type results struct {
	Started   time.Time  `json:"started"`
	Seconds   float64    `json:"seconds"`
	Commit    string     `json:"commit"`
	Machine   machine    `json:"machine"`
	Config    config     `json:"config"`
	Scenarios []scenario `json:"scenarios"`
	Check     struct {
		Service []loadFigure `json:"outreachd"`
		Floor   []loadFigure `json:"floor"`
	} `json:"check_rates"`
	Saturation struct {
		Service    loadFigure `json:"outreachd"`
		Floor      loadFigure `json:"floor"`
		Coalescing loadFigure `json:"floor_coalescing"`
	} `json:"saturation"`
	History struct {
		Lengths []historyFigure `json:"lengths"`
	} `json:"history"`
	Ingest struct {
		Events    int          `json:"events"`
		Outreachd ingestFigure `json:"outreachd"`
		ReadOnly  ingestFigure `json:"read_only_group"`
	} `json:"ingest"`
	Freshness struct {
		Rate    int         `json:"events_per_s"`
		Service freshFigure `json:"outreachd"`
		Kafka   freshFigure `json:"kafka_fetch"`
	} `json:"freshness"`
	Scrub struct {
		Service      scrubFigure `json:"outreachd"`
		Ceiling      scrubFigure `json:"ceiling"`
		PeakRSSMB    float64     `json:"peak_rss_mb"`
		RSSBeforeMB  float64     `json:"rss_before_mb"`
		PeakIsScrubs bool        `json:"peak_reset_before_scrub"`
	} `json:"scrub"`
	Memory   memoryFigure `json:"memory"`
	Timeline struct {
		Events       int        `json:"events"`
		Service      loadFigure `json:"outreachd"`
		Raw          loadFigure `json:"floor_raw"`
		ServiceBytes int        `json:"outreachd_page_bytes"`
		RawBytes     int        `json:"raw_page_bytes"`
	} `json:"timeline"`
}

type machine struct {
	CPUs         int    `json:"cpus"`
	Go           string `json:"go"`
	Redis        string `json:"redis"`
	LoadAvgStart string `json:"loadavg_start"`
	LoadAvgEnd   string `json:"loadavg_end"`
}

func newResults(cfg config) *results {
	return &results{Started: time.Now().UTC().Truncate(time.Second), Config: cfg,
		Machine: machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadAvgStart: loadAvg()}}
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func met(ok bool) *bool { return &ok }

// finish turns the figures into the table's rows.
func (r *results) finish(e *env) {
	r.Seconds = time.Since(e.pr.start).Seconds()
	r.Machine.LoadAvgEnd = loadAvg()
	if info, err := e.rdb.InfoMap(context.Background(), "server").Result(); err == nil {
		r.Machine.Redis = info["Server"]["redis_version"]
	}
	if out, err := exec.Command("git", "-C", e.srv.root, "describe", "--always", "--dirty").Output(); err == nil {
		r.Commit = strings.TrimSpace(string(out))
	}
	cfg := e.cfg
	add := func(name string, s scenario) {
		if cfg.has(name) {
			s.N, s.Name = slices.Index(scenarioNames, name)+1, name
			s.Ratio = ratio(s.Value, s.BaselineValue)
			r.Scenarios = append(r.Scenarios, s)
		}
	}
	add("check", r.checkRow(cfg))
	add("saturation", r.saturationRow())
	add("history", r.historyRow(cfg))
	add("ingest", r.ingestRow(cfg))
	add("freshness", r.freshnessRow(cfg))
	add("scrub", r.scrubRow(cfg))
	add("memory", r.memoryRow(cfg))
	add("timeline", r.timelineRow())
}

// missingFigures names the scenarios that ran without a figure, a
// baseline or a ratio.
func (r *results) missingFigures() []string {
	var out []string
	for _, name := range r.Config.Scenarios {
		i := slices.IndexFunc(r.Scenarios, func(s scenario) bool { return s.Name == name })
		if i < 0 || r.Scenarios[i].Value <= 0 || r.Scenarios[i].BaselineValue <= 0 || r.Scenarios[i].Ratio <= 0 {
			out = append(out, name)
		}
	}
	return out
}

// write writes NAME.json and NAME.md into cfg.OutDir, and the plot.
func (r *results) write(cfg config, pr *progress) error {
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	base := filepath.Join(cfg.OutDir, cfg.resultName())
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return err
	}
	var md bytes.Buffer
	r.markdown(&md, cfg)
	if err := os.WriteFile(base+".md", md.Bytes(), 0o644); err != nil {
		return err
	}
	pr.Printf("wrote %s.json and %s.md", base, base)
	if len(r.Check.Service) > 0 {
		if err := plotCheck(r, cfg.PlotFile); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		pr.Printf("wrote %s", cfg.PlotFile)
	}
	fmt.Fprint(pr.w, md.String())
	return nil
}
