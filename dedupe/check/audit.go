package check

import (
	"context"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

// Auditor keeps the audit trail of decisions; stream.AuditWriter is one.
type Auditor interface {
	// Record hands records to the trail. In best-effort mode it never
	// blocks and never fails: records it cannot keep are counted and
	// dropped. In required mode it returns once they are written, or an
	// error.
	Record(ctx context.Context, recs []dedupe.Record) error
}

// Producer writes events to the events topic.
type Producer interface {
	Produce(ctx context.Context, events []contact.Event) error
}

// Caller is who asked: the API key's role and an id of the key, never the
// key itself.
type Caller struct {
	Role  string
	KeyID string
}

func (c Caller) stamp(r *dedupe.Record, instance string) {
	r.Role, r.KeyID, r.Instance = c.Role, c.KeyID, instance
}

// audit records the live checks reqs answered with results. In required
// mode, checks that cannot be recorded are answered unavailable instead,
// and their claims released.
func (s *Service) audit(ctx context.Context, o Options, p *dedupe.Policy, reqs []dedupe.Request, results []dedupe.Result, now time.Time) {
	if s.cfg.Auditor == nil {
		return
	}
	recs := make([]dedupe.Record, len(results))
	for i := range results {
		recs[i] = dedupe.CheckRecord(&reqs[i], &results[i], p.Version(), now)
		o.Caller.stamp(&recs[i], s.cfg.Instance)
	}
	if s.cfg.AuditRequired {
		// A check waits for its record at most as long as for its facts.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
	}
	err := s.cfg.Auditor.Record(ctx, recs)
	if err == nil || !s.cfg.AuditRequired {
		return
	}
	s.log.Error("check: the decisions could not be recorded in the audit trail, which is required; answering unavailable", "checks", len(results), "error", err)
	for i := range results {
		if c := results[i].Claim; c != nil {
			s.release(ctx, c.Token)
		}
		results[i].Claim = nil
		results[i].Decision = dedupe.Decision{Reasons: []dedupe.Reason{{Code: dedupe.CodeUnavailable,
			Message: "the decision could not be recorded in the audit trail, which this service requires, so the contact is blocked to be safe"}}}
	}
}

// auditScrub records the summary of a scrub.
func (s *Service) auditScrub(ctx context.Context, caller Caller, sum dedupe.ScrubSummary, policy string) {
	if s.cfg.Auditor == nil {
		return
	}
	r := dedupe.Record{Kind: dedupe.RecordScrub, Time: s.now(), Policy: policy, Scrub: &sum}
	caller.stamp(&r, s.cfg.Instance)
	if err := s.cfg.Auditor.Record(ctx, []dedupe.Record{r}); err != nil {
		s.log.Warn("scrub: the summary could not be recorded in the audit trail", "error", err)
	}
}

// Forget erases a customer: it writes a forget event to the events topic,
// which the consumer applies in order with the customer's other events, and
// records who asked. EInvalid for a bad customer id; EUnavailable when Kafka
// cannot take the event.
func (s *Service) Forget(ctx context.Context, customerID string, caller Caller) (contact.Event, error) {
	if s.cfg.Events == nil {
		return contact.Event{}, contact.Errorf(contact.EUnavailable, "this service cannot write events")
	}
	now := s.now()
	e := contact.Event{ID: "forget-" + newID(), Type: contact.TypeForget, CustomerID: customerID, At: now}
	if err := e.Normalize(s.cfg.Defaults); err != nil {
		return contact.Event{}, err
	}
	if err := s.cfg.Events.Produce(ctx, []contact.Event{e}); err != nil {
		return contact.Event{}, err
	}
	if s.cfg.Auditor != nil {
		r := dedupe.Record{Kind: dedupe.RecordErasure, Time: now, CustomerID: customerID, Policy: s.cfg.Policy().Version()}
		caller.stamp(&r, s.cfg.Instance)
		if err := s.cfg.Auditor.Record(ctx, []dedupe.Record{r}); err != nil {
			s.log.Warn("forget: the erasure could not be recorded in the audit trail", "customer_id", customerID, "error", err)
		}
	}
	s.log.Info("forget: the customer's erasure was written to the events topic", "customer_id", customerID, "event", e.ID)
	return e, nil
}
