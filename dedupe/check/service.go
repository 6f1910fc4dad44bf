// Package check is the pre-dial check and the list scrub: the use cases
// between the transports (HTTP) and the store. It normalizes requests, reads
// the facts of every customer from the store in one round trip through the
// small Store interface it declares, decides with dedupe, and releases the
// claims that blocked checks took. It never answers "allowed" for a check
// whose facts could not be read.
package check

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

// Store reads the facts of checks and ends claims. contact/redis.Store is
// one.
type Store interface {
	// Facts reads the facts of each lookup, and takes the claims they
	// ask for, in one round trip. A lookup whose facts could not be read
	// has Facts.Err set.
	Facts(ctx context.Context, lookups []contact.Lookup) []contact.Facts
	// ReleaseClaim ends the claim with the given token and reports
	// whether it was still held.
	ReleaseClaim(ctx context.Context, token string) (bool, error)
}

// Config configures a Service. Store and Policy are required.
type Config struct {
	Store Store
	// Policy returns the policy in force; it may change between calls.
	Policy   func() *dedupe.Policy
	Defaults contact.Defaults // the currency and phone region of requests
	// Timeout bounds a check's store reads; after it the check answers
	// unavailable. Default DefaultTimeout.
	Timeout time.Duration
	Now     func() time.Time // default time.Now
	Logger  *slog.Logger
	Metrics *Metrics // nil counts nothing
	// Auditor, if set, keeps the audit trail: a record of every live
	// check, of every scrub and of every erasure. With AuditRequired, a
	// check that cannot be recorded answers unavailable.
	Auditor       Auditor
	AuditRequired bool
	Instance      string   // names this process in audit records
	Events        Producer // writes forget events; nil: Forget fails
	// FollowUps reads the index of open complaints to follow up; nil:
	// FollowUps fails.
	FollowUps FollowUpIndex
}

// Service answers checks and scrubs. It is safe for concurrent use.
type Service struct {
	cfg      Config
	log      *slog.Logger
	coalesce *coalescer // the store reads of live checks
}

// DefaultTimeout is Config.Timeout's default: a dialer needs a bounded answer.
const DefaultTimeout = 300 * time.Millisecond

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, log: cfg.Logger, coalesce: &coalescer{store: cfg.Store}}
}

// Policy returns the policy in force.
func (s *Service) Policy() *dedupe.Policy { return s.cfg.Policy() }

// IndexError says which request of a batch an error is about.
type IndexError struct {
	Index int
	Err   error
}

func (e *IndexError) Error() string { return e.Err.Error() }
func (e *IndexError) Unwrap() error { return e.Err }

// Options qualify a call of Check.
type Options struct {
	// Policy replaces the policy in force (a what-if scrub); nil uses it.
	Policy *dedupe.Policy
	// Caller is who asks, for the audit trail.
	Caller Caller
	// NoAudit leaves the checks out of the audit trail: they are not
	// decisions anyone acts on (the agent page's look at claims and lists).
	NoAudit bool
}

// Check answers reqs, in order. Each request is normalized first; an
// invalid one makes the whole call fail with an *IndexError wrapping an
// EInvalid error, and nothing is checked. A check whose facts cannot be read
// is answered with the policy's unavailable decision (blocked, unless the
// policy fails open), alone: the others are decided. A claim taken for a
// check that is not allowed is released again.
func (s *Service) Check(ctx context.Context, reqs []dedupe.Request, o Options) ([]dedupe.Result, error) {
	now := s.now()
	for i := range reqs {
		if err := reqs[i].Normalize(now, s.cfg.Defaults); err != nil {
			return nil, &IndexError{Index: i, Err: err}
		}
	}
	p := o.Policy
	if p == nil {
		p = s.cfg.Policy()
	}
	results := s.decide(ctx, p, reqs, now, true)
	if !o.NoAudit {
		s.audit(ctx, o, p, reqs, results, now)
	}
	return results, nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

// decide checks normalized requests under p. Live checks read the store
// for at most the configured timeout, share round trips and are counted in
// the metrics; a scrub's rows read for at most scrubReadTimeout, alone, and
// are not counted.
func (s *Service) decide(ctx context.Context, p *dedupe.Policy, reqs []dedupe.Request, now time.Time, live bool) []dedupe.Result {
	timeout := scrubReadTimeout
	if live {
		timeout = s.cfg.Timeout
	}
	start := time.Now()
	lookups := make([]contact.Lookup, len(reqs))
	for i := range reqs {
		lookups[i] = lookup(&reqs[i], p, now)
	}
	var facts []contact.Facts
	if live && len(lookups) <= coalesceAtMost {
		// Concurrent checks share store round trips (coalesce.go).
		facts = s.coalesce.facts(lookups, start.Add(timeout))
	} else {
		readCtx, cancel := context.WithTimeout(ctx, timeout)
		facts = s.cfg.Store.Facts(readCtx, lookups)
		cancel()
	}
	results := make([]dedupe.Result, len(reqs))
	var failed []error
	for i := range reqs {
		r, f := &reqs[i], &facts[i]
		results[i].CustomerID = r.CustomerID
		if f.Err != nil {
			failed = append(failed, f.Err)
			results[i].Decision = dedupe.Unavailable(p)
			if errors.Is(f.Err, contact.ErrStoreReset) {
				results[i].Decision = dedupe.StoreReset(p)
			}
			continue
		}
		results[i].Decision = dedupe.Decide(p, r, f, now)
		switch {
		case f.Taken != nil && results[i].Allowed:
			results[i].Claim = f.Taken
		case f.Taken != nil:
			s.release(ctx, f.Taken.Token)
		}
	}
	if len(failed) > 0 {
		s.log.Warn("check: facts could not be read; answering with the policy's fallback",
			"checks", len(reqs), "unavailable", len(failed), "fail_open", p.FailOpen(), "error", failed[0])
	}
	if live {
		s.cfg.Metrics.observe(results, time.Since(start))
	}
	return results
}

// lookup is what the store must read for r.
func lookup(r *dedupe.Request, p *dedupe.Policy, now time.Time) contact.Lookup {
	l := contact.Lookup{CustomerID: r.CustomerID}
	if r.Phone != "" {
		l.Phones = []string{r.Phone}
	}
	l.OfferProducts = []string{} // only better_offer reads offers, of its product
	if r.Product != "" && r.Offer != nil && r.Offer.Price != nil {
		l.OfferProducts = []string{r.Product}
	}
	l.FollowUps = r.Agent != "" && slices.Contains(contact.FollowUpPurposes, r.Purpose)
	if r.Claim {
		l.Claim = &contact.Claim{Agent: r.Agent, Campaign: r.Campaign, ExpiresAt: now.Add(p.ClaimTTL())}
		l.ClaimTTL = p.ClaimTTL()
	}
	return l
}

func newID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// release gives back the claim of a blocked check. It expires at its TTL
// anyway, so a failure is only logged.
func (s *Service) release(ctx context.Context, token string) {
	if _, err := s.cfg.Store.ReleaseClaim(context.WithoutCancel(ctx), token); err != nil {
		s.log.Warn("check: unable to release the claim of a blocked check", "error", err)
	}
}

// ReleaseClaim ends the claim with the given token. ENotFound when no
// claim holds it; EInvalid for a token that is not one; EUnavailable.
func (s *Service) ReleaseClaim(ctx context.Context, token string) error {
	released, err := s.cfg.Store.ReleaseClaim(ctx, token)
	if err != nil {
		return err
	}
	if !released {
		return contact.Errorf(contact.ENotFound, "no active claim has this token; it may have expired or been released")
	}
	return nil
}
