package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scenarios, by the name -scenarios takes; their numbers are those of the
// issue's table and of docs/PERFORMANCE.md.
var scenarioNames = []string{"check", "saturation", "history", "ingest", "freshness", "scrub", "memory", "timeline"}

// config is what the flags say. Sizes are configurable so that a full run
// fits 10 minutes on a 2-core machine; smoke() makes them small.
type config struct {
	Smoke        bool          `json:"smoke"`
	RedisAddr    string        `json:"-"`
	KafkaBrokers string        `json:"-"`
	OutDir       string        `json:"-"`
	PlotFile     string        `json:"-"`
	Scenarios    []string      `json:"scenarios"`
	Customers    int           `json:"customers"`     // customers of the seed (ingest), checks and scrub
	Events       int           `json:"events"`        // events produced and ingested
	Rates        []int         `json:"rates"`         // offered check rates, per second
	RateDuration time.Duration `json:"rate_duration"` // per rate and server
	Workers      int           `json:"workers"`       // requests in flight at saturation
	SatDuration  time.Duration `json:"saturation_duration"`
	ClaimShare   float64       `json:"claim_share"` // of checks that ask for a claim
	HistoryLens  []int         `json:"history_lengths"`
	HistoryCusts int           `json:"history_customers"` // customers per length
	HistoryDur   time.Duration `json:"history_duration"`  // per length
	FreshRate    int           `json:"freshness_rate"`    // events per second
	FreshDur     time.Duration `json:"freshness_duration"`
	FreshProbes  int           `json:"freshness_probes_per_s"`
	ScrubRows    int           `json:"scrub_rows"`
	Suppressed   int           `json:"suppressed"` // entries of the suppression list
	TimelineLen  int           `json:"timeline_events"`
	TimelineDur  time.Duration `json:"timeline_duration"`
	Settle       time.Duration `json:"settle"` // pause between two attacks
	Keep         bool          `json:"-"`      // keep the keys and topics
	Replot       bool          `json:"-"`      // only draw the plot of the results in OutDir again
}

func fullConfig() config {
	return config{
		OutDir: "bench/results", PlotFile: "docs/check-latency.png", Scenarios: scenarioNames,
		Customers: 100_000, Events: 1_000_000,
		Rates: []int{2000, 5000, 10000, 20000}, RateDuration: 8 * time.Second,
		Workers: 32, SatDuration: 8 * time.Second, ClaimShare: 0.10,
		HistoryLens: []int{10, 100, 1000, 10000}, HistoryCusts: 8, HistoryDur: 5 * time.Second,
		FreshRate: 1000, FreshDur: 20 * time.Second, FreshProbes: 20,
		ScrubRows: 1_000_000, Suppressed: 12_000,
		TimelineLen: 1000, TimelineDur: 5 * time.Second, Settle: 500 * time.Millisecond,
	}
}

// smoke is the 30-second version: every scenario, small sizes. It writes
// beside the full run's results, never over them.
func (c config) smoke() config {
	c.Smoke = true
	c.Customers, c.Events = 1000, 10_000
	c.Rates, c.RateDuration = []int{200, 500}, 750*time.Millisecond
	c.Workers, c.SatDuration = 8, 600*time.Millisecond
	c.HistoryLens, c.HistoryCusts, c.HistoryDur = []int{10, 1000}, 2, 600*time.Millisecond
	c.FreshRate, c.FreshDur, c.FreshProbes = 200, 1500*time.Millisecond, 10
	c.ScrubRows, c.Suppressed = 5000, 200
	c.TimelineLen, c.TimelineDur, c.Settle = 1000, 600*time.Millisecond, 100*time.Millisecond
	return c
}

func (c config) has(scenario string) bool { return slices.Contains(c.Scenarios, scenario) }

func (c config) resultName() string {
	if c.Smoke {
		return "smoke"
	}
	return "latest"
}

func parseFlags(args []string) (config, error) {
	full := fullConfig()
	fs := flag.NewFlagSet("harness", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	smoke := fs.Bool("smoke", false, "the 30-second version: every scenario at small sizes; writes smoke.json and smoke.md")
	c := full
	fs.StringVar(&c.RedisAddr, "redis", os.Getenv("OUTREACH_TEST_REDIS_ADDR"), "Redis address (default OUTREACH_TEST_REDIS_ADDR, else 127.0.0.1:16379, started if nothing answers)")
	fs.StringVar(&c.KafkaBrokers, "kafka", os.Getenv("OUTREACH_TEST_KAFKA_BROKERS"), "Kafka brokers (default OUTREACH_TEST_KAFKA_BROKERS, else 127.0.0.1:19092, started if nothing answers)")
	fs.StringVar(&c.OutDir, "out", "", "directory of the results (default bench/results)")
	fs.StringVar(&c.PlotFile, "plot", "", "the latency plot, PNG (default docs/check-latency.png; with -smoke, in -out)")
	scen := fs.String("scenarios", "all", "comma-separated scenarios: "+strings.Join(scenarioNames, ",")+", or all")
	fs.IntVar(&c.Customers, "customers", 0, "customers of the seed, the checks and the scrub (default 100000)")
	fs.IntVar(&c.Events, "events", 0, "events produced to Kafka and ingested (default 1000000)")
	rates := fs.String("rates", "", "offered check rates per second, comma-separated (default 2000,5000,10000,20000)")
	fs.DurationVar(&c.RateDuration, "rate-duration", 0, "how long each rate is offered, to each server (default 8s)")
	fs.DurationVar(&c.SatDuration, "saturation-duration", 0, "how long each saturation run lasts (default 8s)")
	fs.IntVar(&c.Workers, "workers", 0, "requests in flight at saturation (default 32)")
	hist := fs.String("history", "", "history lengths, comma-separated (default 10,100,1000,10000)")
	fs.IntVar(&c.ScrubRows, "scrub-rows", 0, "rows of the scrubbed list (default 1000000)")
	fs.DurationVar(&c.FreshDur, "freshness-duration", 0, "how long events are produced for freshness (default 20s)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the keys and topics at the end, for a look")
	fs.BoolVar(&c.Replot, "replot", false, "run nothing: draw the plot of the results in -out again")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/harness [flags]")
		fs.SetOutput(os.Stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	base := full
	if *smoke {
		base = full.smoke()
	}
	c.Smoke = base.Smoke
	c.Scenarios = base.Scenarios
	if *scen != "all" {
		c.Scenarios = nil
		for s := range strings.SplitSeq(*scen, ",") {
			if !slices.Contains(scenarioNames, s) {
				return c, fmt.Errorf("-scenarios: unknown scenario %q; want some of %s", s, strings.Join(scenarioNames, ","))
			}
			c.Scenarios = append(c.Scenarios, s)
		}
	}
	var err error
	if c.Rates, err = intList("-rates", *rates, base.Rates); err != nil {
		return c, err
	}
	if c.HistoryLens, err = intList("-history", *hist, base.HistoryLens); err != nil {
		return c, err
	}
	orDefault(&c.Customers, base.Customers)
	orDefault(&c.Events, base.Events)
	orDefault(&c.RateDuration, base.RateDuration)
	orDefault(&c.SatDuration, base.SatDuration)
	orDefault(&c.Workers, base.Workers)
	orDefault(&c.ScrubRows, base.ScrubRows)
	orDefault(&c.FreshDur, base.FreshDur)
	c.HistoryCusts, c.HistoryDur = base.HistoryCusts, base.HistoryDur
	c.FreshRate, c.FreshProbes = base.FreshRate, base.FreshProbes
	c.Suppressed, c.TimelineLen, c.TimelineDur, c.Settle = base.Suppressed, base.TimelineLen, base.TimelineDur, base.Settle
	if c.OutDir == "" {
		c.OutDir = "bench/results"
	}
	if c.PlotFile == "" {
		c.PlotFile = "docs/check-latency.png"
		if c.Smoke {
			c.PlotFile = c.OutDir + "/smoke-check-latency.png"
		}
	}
	if c.Events < c.Customers {
		return c, fmt.Errorf("-events (%d) must be at least -customers (%d)", c.Events, c.Customers)
	}
	return c, nil
}

func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

func intList(flag, s string, def []int) ([]int, error) {
	if s == "" {
		return def, nil
	}
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s: %q is not a positive whole number", flag, f)
		}
		out = append(out, n)
	}
	return out, nil
}
