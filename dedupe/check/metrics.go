package check

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outreach/outreach/dedupe"
)

// Metrics count checks by result and by the reasons that blocked them.
type Metrics struct {
	checks  *prometheus.CounterVec
	reasons *prometheus.CounterVec
	seconds prometheus.Histogram
}

// Results of outreach_checks_total.
const (
	ResultAllowed     = "allowed"
	ResultBlocked     = "blocked"
	ResultUnavailable = "unavailable"
)

// NewMetrics registers the check metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outreach_checks_total", Help: "Checks answered, by result: allowed, blocked or unavailable (the facts could not be read).",
		}, []string{"result"}),
		reasons: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outreach_check_reasons_total", Help: "Blocking reasons of the checks answered, by reason code.",
		}, []string{"code"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "outreach_check_seconds", Help: "Time to answer a call of the check service (one check or a batch): store read and decision.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
	}
	reg.MustRegister(m.checks, m.reasons, m.seconds)
	for _, r := range []string{ResultAllowed, ResultBlocked, ResultUnavailable} {
		m.checks.WithLabelValues(r)
	}
	return m
}

func (m *Metrics) observe(results []dedupe.Result, d time.Duration) {
	if m == nil {
		return
	}
	m.seconds.Observe(d.Seconds())
	for i := range results {
		r := &results[i]
		result := ResultBlocked
		if r.Allowed {
			result = ResultAllowed
		}
		for _, x := range r.Reasons {
			if x.Code == dedupe.CodeUnavailable {
				result = ResultUnavailable
			} else if !x.Warning {
				m.reasons.WithLabelValues(x.Code).Inc()
			}
		}
		m.checks.WithLabelValues(result).Inc()
	}
}
