package main

import (
	"context"

	"github.com/outreach/outreach/dedupe/insight"
	insightredis "github.com/outreach/outreach/dedupe/insight/redis"
	"github.com/outreach/outreach/stream"
)

// newInsights builds the collision insight over Redis, and starts its
// aggregator on the decisions topic unless OUTREACH_INSIGHTS is off; Close
// stops the aggregator after its batch in flight, before Redis closes.
func (m *Main) newInsights(ctx, bgCtx context.Context) (*insight.Service, error) {
	cfg := m.Config
	counters := insightredis.New(m.rdb, insightredis.Options{Prefix: cfg.RedisPrefix, Topic: cfg.DecisionsTopic})
	if err := counters.LoadScripts(ctx); err != nil {
		m.Logger.Warn("insights: redis scripts not loaded; they load on first use", "error", err)
	}
	if !cfg.Insights {
		m.Logger.Info("the insights aggregator is off here (OUTREACH_INSIGHTS=off): /v1/insights shows what other replicas count")
		return insight.New(counters, nil), nil
	}
	agg, err := stream.NewAggregator(stream.AggregatorConfig{
		Brokers: m.brokers, Topic: cfg.DecisionsTopic, Group: cfg.InsightsGroup,
		BatchSize: cfg.BatchSize, BatchWait: cfg.BatchWait, StopTimeout: cfg.ShutdownTimeout, MaxFuture: cfg.MaxFuture,
		Logger: m.Logger, Registry: m.reg,
	}, counters)
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(bgCtx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := agg.Run(runCtx); err != nil {
			m.Logger.Error("insights aggregator stopped", "error", err)
		}
	}()
	m.closers = append(m.closers, func() error {
		stop()
		<-done
		return nil
	})
	return insight.New(counters, nil), nil
}
