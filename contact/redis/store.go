// Package redis keeps customer timelines in Redis.
//
// Every key of one customer shares the hash tag {c:ID}, so that in Redis
// Cluster they live in one slot and a pipeline of them is one round trip:
//
//	PREFIX{c:ID}:c  contacts         (sorted set: score = at in ms, member = event JSON)
//	PREFIX{c:ID}:p  purchases
//	PREFIX{c:ID}:x  complaints
//	PREFIX{c:ID}:o  opt-outs and opt-ins
//	PREFIX{c:ID}:f  contacts that made an offer (an index over :c)
//
// Events are stored in their canonical JSON encoding, so a redelivered event
// is the same member and ZADD leaves the set unchanged: applying an event
// twice stores it once, with plain pipelined commands and no scripts. Order
// comes from the score, whatever order events arrive in.
//
// Retention: each set keeps at most MaxEvents members and nothing older than
// Retention, trimmed on every write; every key but :o expires after Retention
// without writes. Opt-outs are consent records: they are kept (bounded in
// count) until the customer opts in again.
package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact"
)

// Defaults for Options.
const (
	DefaultPrefix    = "outreach:"
	DefaultRetention = 400 * 24 * time.Hour
	DefaultMaxEvents = 1000
)

// Options configures a Store. A zero Options consists entirely of defaults.
type Options struct {
	Prefix    string        // prepended to every key; default "outreach:"
	Retention time.Duration // age limit of stored events; default 400 days
	MaxEvents int           // count limit per customer and kind; default 1000
	Region    string        // region of phone numbers without a country code; default DefaultRegion
	Now       func() time.Time
	Logger    *slog.Logger
}

// Store is the Redis timeline store. It is safe for concurrent use.
type Store struct {
	rdb       goredis.UniversalClient
	prefix    string
	retention time.Duration
	maxEvents int
	now       func() time.Time
	log       *slog.Logger
	region    string      // see suppress.go
	phones    *phoneCache // see suppress.go
}

// New returns a Store over rdb, which may be a Client or a ClusterClient.
func New(rdb goredis.UniversalClient, o Options) *Store {
	s := &Store{rdb: rdb, prefix: o.Prefix, retention: o.Retention, maxEvents: o.MaxEvents, now: o.Now, log: o.Logger}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.retention <= 0 {
		s.retention = DefaultRetention
	}
	if s.maxEvents <= 0 {
		s.maxEvents = DefaultMaxEvents
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.region, s.phones = o.Region, &phoneCache{}
	if s.region == "" {
		s.region = DefaultRegion
	}
	return s
}

// Key kinds, one sorted set each.
const (
	kindContacts   = "c"
	kindPurchases  = "p"
	kindComplaints = "x"
	kindOpts       = "o"
	kindOffers     = "f"
)

func (s *Store) key(customerID, kind string) string {
	return s.prefix + "{c:" + customerID + "}:" + kind
}

func kindOf(e *contact.Event) string {
	switch e.Type {
	case contact.TypePurchase:
		return kindPurchases
	case contact.TypeComplaint:
		return kindComplaints
	case contact.TypeOptOut, contact.TypeOptIn:
		return kindOpts
	default:
		return kindContacts
	}
}

// Ping reports whether Redis answers. It returns an EUnavailable error if not.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return contact.Unavailable("redis", err)
	}
	return nil
}

// Apply stores events, which must be valid, in one pipeline. It is
// idempotent: applying the same events again changes nothing but key TTLs.
// On failure some events may have been stored; applying them all again is
// safe. It returns an EUnavailable error when Redis cannot be reached.
func (s *Store) Apply(ctx context.Context, events []contact.Event) error {
	if len(events) == 0 {
		return nil
	}
	now := s.now()
	cutoff := strconv.FormatInt(now.Add(-s.retention).UnixMilli(), 10)
	touched := make(map[string]bool)
	pipe := s.rdb.Pipeline()
	for i := range events {
		e := &events[i]
		member, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("store: unable to encode event %s: %w", e.ID, err)
		}
		z := goredis.Z{Score: float64(e.At.UnixMilli()), Member: member}
		kinds := []string{kindOf(e)}
		if e.Type == contact.TypeContact && e.Offer != nil {
			kinds = append(kinds, kindOffers)
		}
		for _, kind := range kinds {
			k := s.key(e.CustomerID, kind)
			pipe.ZAdd(ctx, k, z)
			touched[k] = kind == kindOpts
		}
	}
	for k, isOpts := range touched {
		if !isOpts {
			pipe.ZRemRangeByScore(ctx, k, "-inf", "("+cutoff)
			pipe.PExpire(ctx, k, s.retention)
		}
		pipe.ZRemRangeByRank(ctx, k, 0, int64(-s.maxEvents-1))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return contact.Unavailable("redis", fmt.Errorf("store: unable to apply %d events: %w", len(events), err))
	}
	// A contact made under a claim ends the claim.
	for i := range events {
		e := &events[i]
		if e.Claim == "" || e.Type != contact.TypeContact {
			continue
		}
		if id, err := tokenCustomer(e.Claim); err != nil || id != e.CustomerID {
			continue // not a claim on this customer: nothing to end
		}
		if _, err := s.ReleaseClaim(ctx, e.Claim); err != nil {
			return err
		}
	}
	return nil
}

// stateContacts is how many recent contacts the timeline reads to find the
// latest contact on each channel, which may lie beyond the page.
const stateContacts = 200

// Timeline returns a page of a customer's events, newest first, with the
// state derived from the records kept. An unknown customer has an empty
// timeline, not an error. One round trip; EUnavailable when Redis is down.
func (s *Store) Timeline(ctx context.Context, customerID string, page contact.Page) ([]contact.Event, contact.State, error) {
	now := s.now()
	before := "+inf"
	if !page.Before.IsZero() {
		before = "(" + strconv.FormatInt(page.Before.UnixMilli(), 10)
	}
	pipe := s.rdb.Pipeline()
	var pageCmds []*goredis.StringSliceCmd
	for _, kind := range []string{kindContacts, kindPurchases, kindComplaints, kindOpts} {
		pageCmds = append(pageCmds, s.queueRead(ctx, pipe, customerID, kind, s.floor(kind, now, 0), before, page.Limit))
	}
	hist := s.queueHistory(ctx, pipe, customerID, now, Window{}, stateContacts)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, contact.State{}, contact.Unavailable("redis", fmt.Errorf("store: unable to read timeline: %w", err))
	}
	var events []contact.Event
	for _, cmd := range pageCmds {
		events = append(events, s.decode(cmd.Val())...)
	}
	events = uniqueByID(events)
	contact.SortNewestFirst(events)
	if len(events) > page.Limit {
		events = events[:page.Limit]
	}
	h := hist()
	return events, h.State(), nil
}

// Window says how far back History reads contacts and purchases; zero
// means everything retained.
type Window struct {
	Contacts  time.Duration
	Purchases time.Duration
}

// History returns the records of a customer that a decision at time at
// needs, in one round trip. EUnavailable when Redis is down.
func (s *Store) History(ctx context.Context, customerID string, at time.Time, w Window) (contact.History, error) {
	pipe := s.rdb.Pipeline()
	hist := s.queueHistory(ctx, pipe, customerID, at, w, s.maxEvents)
	if _, err := pipe.Exec(ctx); err != nil {
		return contact.History{}, contact.Unavailable("redis", fmt.Errorf("store: unable to read history: %w", err))
	}
	return hist(), nil
}

// queueHistory queues on pipe the reads of a customer's history as seen at
// time at, and returns the function that decodes them once pipe has run.
// At most maxContacts contacts are read, the newest.
func (s *Store) queueHistory(ctx context.Context, pipe goredis.Pipeliner, customerID string, at time.Time, w Window, maxContacts int) func() contact.History {
	// Records after at are read too and dropped by the decision, which
	// knows at; reading up to +inf keeps the read simple and bounded.
	contacts := s.queueRead(ctx, pipe, customerID, kindContacts, s.floor(kindContacts, at, w.Contacts), "+inf", maxContacts)
	offers := s.queueRead(ctx, pipe, customerID, kindOffers, s.floor(kindOffers, at, 0), "+inf", 0)
	purchases := s.queueRead(ctx, pipe, customerID, kindPurchases, s.floor(kindPurchases, at, w.Purchases), "+inf", 0)
	complaints := s.queueRead(ctx, pipe, customerID, kindComplaints, s.floor(kindComplaints, at, 0), "+inf", 0)
	opts := s.queueRead(ctx, pipe, customerID, kindOpts, s.floor(kindOpts, at, 0), "+inf", 0)
	return func() contact.History {
		return contact.History{
			Contacts:   uniqueByID(s.decode(contacts.Val())),
			Offers:     uniqueByID(s.decode(offers.Val())),
			Purchases:  uniqueByID(s.decode(purchases.Val())),
			Complaints: uniqueByID(s.decode(complaints.Val())),
			Opts:       uniqueByID(s.decode(opts.Val())),
		}
	}
}

// floor is the lowest score to read of kind for a question about time at:
// the retention limit, raised to at-d when d is positive. Opt records are
// kept regardless of age.
func (s *Store) floor(kind string, at time.Time, d time.Duration) string {
	if kind == kindOpts {
		return "-inf"
	}
	ms := s.now().Add(-s.retention).UnixMilli()
	if d > 0 {
		ms = max(ms, at.Add(-d).UnixMilli())
	}
	return strconv.FormatInt(ms, 10)
}

// queueRead queues a newest-first read of the scores [min, max] of one kind;
// count 0 means no limit.
func (s *Store) queueRead(ctx context.Context, pipe goredis.Pipeliner, customerID, kind, min, max string, count int) *goredis.StringSliceCmd {
	return pipe.ZRevRangeByScore(ctx, s.key(customerID, kind), &goredis.ZRangeBy{Min: min, Max: max, Count: int64(count)})
}

// decode parses stored members. A member that does not parse, which only a
// foreign writer can cause, is logged and skipped rather than failing a read.
func (s *Store) decode(members []string) []contact.Event {
	events := make([]contact.Event, 0, len(members))
	for _, m := range members {
		// Members are canonical JSON written by Apply: decode them as plain
		// structs, skipping Event's validating UnmarshalJSON, which parses
		// twice. This halves the cost of a check.
		var e storedEvent
		if err := jsonv2.Unmarshal([]byte(m), &e); err != nil {
			s.log.Warn("store: skipping an undecodable member", "error", err)
			continue
		}
		events = append(events, contact.Event(e))
	}
	return events
}

// storedEvent has Event's fields but not its methods.
type storedEvent contact.Event

// uniqueByID keeps the first event of each id. Members differ for one id only
// when a producer reused an id with other content; the id is the
// idempotency key, so one of them is shown.
func uniqueByID(events []contact.Event) []contact.Event {
	if len(events) < 2 {
		return events
	}
	seen := make(map[string]struct{}, len(events))
	out := events[:0]
	for _, e := range events {
		if _, ok := seen[e.ID]; ok {
			continue
		}
		seen[e.ID] = struct{}{}
		out = append(out, e)
	}
	return out
}
