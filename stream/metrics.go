// Package stream moves outreach events through Kafka: a consumer-group
// reader that applies them to the timeline store, a producer for the HTTP
// API, and a dead-letter topic for messages that cannot be applied.
package stream

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the consumer's Prometheus metrics.
type Metrics struct {
	Applied      prometheus.Counter
	DeadLettered prometheus.Counter
	Erased       prometheus.Counter
	Retries      *prometheus.CounterVec
	BatchSeconds prometheus.Histogram
	Lag          *prometheus.GaugeVec
}

// NewMetrics creates the consumer metrics and registers them with reg, which
// may be nil for tests.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outreach_events_applied_total", Help: "Events applied to the timeline store (a redelivery counts again; applying it changes nothing).",
		}),
		DeadLettered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outreach_events_dead_lettered_total", Help: "Messages sent to the dead-letter topic.",
		}),
		Erased: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outreach_events_erased_total", Help: "Events dropped because their customer was erased after them (a replay, or events late to arrive).",
		}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outreach_consumer_retries_total", Help: "Failed attempts that the consumer retried, by step.",
		}, []string{"step"}),
		BatchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "outreach_consumer_batch_seconds", Help: "Time from a batch's first fetch to its commit.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "outreach_consumer_lag", Help: "Messages behind the high-water mark, by topic and partition, as of the last batch.",
		}, []string{"topic", "partition"}),
	}
	if reg != nil {
		reg.MustRegister(m.Applied, m.DeadLettered, m.Erased, m.Retries, m.BatchSeconds, m.Lag)
	}
	return m
}
