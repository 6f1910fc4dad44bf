// Package redis keeps customer timelines and decision states in Redis.
//
// Every key of one customer shares the hash tag {c:ID}, so that in Redis
// Cluster they live in one slot and a pipeline of them is one round trip:
//
//	PREFIX{c:ID}:h      history (sorted set: score = at in ms, member = id 0x1f record)
//	PREFIX{c:ID}:i      ids of the history (hash: id → digest of the content)
//	PREFIX{c:ID}:s      decision state (hash: slot → value; see apply.go)
//	PREFIX{c:ID}:r      recent outbound contacts (sorted set: score = at, member = id)
//	PREFIX{c:ID}:f      offers that may still bind (sorted set: score = expiry, member = id 0x1f at record)
//	PREFIX{c:ID}:claim  the active claim (string with a TTL)
//	PREFIX{c:ID}:dnc    suppression entries naming the customer (see suppress.go)
//
// Records are compact binary (codec.go). A check reads the state, the recent
// contacts, the offers, the claim and the suppression entries: a few small
// keys whatever the length of the history. Each event is applied by one
// script (apply.go), so that the history and the state never disagree and
// merges are atomic.
//
// Retention: the history keeps at most MaxEvents events and nothing older
// than Retention, and expires after Retention without writes. The state
// keeps every binding fact (opt-outs, open complaints) without limit; a
// state with none expires after Retention without writes.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

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
	Retention time.Duration // age limit of the history; default 400 days
	MaxEvents int           // count limit of the history per customer; default 1000
	// Limits bound the non-binding parts of the state; they come from the
	// policy in force and may change between calls. nil means defaults.
	Limits func() contact.Limits
	// Epoch makes every check read the store epoch of every slot it reads
	// (epoch.go), so that a Redis that came back empty answers unavailable.
	// The epoch must have been written with NewEpoch.
	Epoch  bool
	Now    func() time.Time
	Logger *slog.Logger
}

// Store is the Redis timeline store. It is safe for concurrent use.
type Store struct {
	rdb       goredis.UniversalClient
	prefix    string
	retention time.Duration
	maxEvents int
	limitsFn  func() contact.Limits
	epoch     bool
	reset     atomic.Bool  // a check met a lost epoch since the last NewEpoch
	redeliv   atomic.Int64 // events Apply found stored already (Redelivered)
	listCache listsCache   // the suppression lists in force (suppress_read.go)
	now       func() time.Time
	log       *slog.Logger
}

// New returns a Store over rdb, which may be a Client or a ClusterClient.
func New(rdb goredis.UniversalClient, o Options) *Store {
	s := &Store{rdb: rdb, prefix: o.Prefix, retention: o.Retention, maxEvents: o.MaxEvents, limitsFn: o.Limits, epoch: o.Epoch, now: o.Now, log: o.Logger}
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
	return s
}

func (s *Store) limits() contact.Limits {
	if s.limitsFn == nil {
		return contact.Limits{}.WithDefaults()
	}
	return s.limitsFn().WithDefaults()
}

// Key kinds of a customer.
const (
	kindHistory = "h"
	kindIDs     = "i"
	kindState   = "s"
	kindRecent  = "r"
	kindOffers  = "f"
	kindClaim   = "claim"
)

func (s *Store) key(customerID, kind string) string {
	return s.prefix + "{c:" + customerID + "}:" + kind
}

// claimKey holds the active claim on a customer: a string set with NX and
// a TTL, whose value is the claim's JSON with the token first.
func (s *Store) claimKey(customerID string) string { return s.key(customerID, kindClaim) }

// Ping reports whether Redis answers. It returns an EUnavailable error if not.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return contact.Unavailable("redis", err)
	}
	return nil
}

// LoadScripts loads the store's scripts into Redis (on every node of a
// cluster), so that pipelines can call them by hash.
func (s *Store) LoadScripts(ctx context.Context) error {
	load := func(ctx context.Context, c *goredis.Client) error {
		for _, sc := range []*goredis.Script{applyScript, releaseScript} {
			if err := sc.Load(ctx, c).Err(); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	if cc, ok := s.rdb.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, load)
	} else if c, ok := s.rdb.(*goredis.Client); ok {
		err = load(ctx, c)
	} else {
		err = errors.New("unknown client type")
	}
	if err != nil {
		return contact.Unavailable("redis", fmt.Errorf("store: unable to load scripts: %w", err))
	}
	return nil
}

// Timeline returns a page of a customer's history, newest first by (at,
// id), with the customer's state. An unknown customer has an empty timeline,
// not an error. One round trip; EUnavailable when Redis is down or holds a
// record that cannot be read.
func (s *Store) Timeline(ctx context.Context, customerID string, page contact.Page) ([]contact.Event, contact.State, error) {
	now := s.now()
	pipe := s.rdb.Pipeline()
	key := s.key(customerID, kindHistory)
	var ties *goredis.ZSliceCmd
	max := "+inf"
	if !page.After.IsZero() {
		ms := formatMillis(page.After.At.UnixMilli())
		ties = pipe.ZRevRangeByScoreWithScores(ctx, key, &goredis.ZRangeBy{Min: ms, Max: ms})
		max = "(" + ms
	}
	older := pipe.ZRevRangeByScoreWithScores(ctx, key, &goredis.ZRangeBy{Min: "-inf", Max: max, Count: int64(page.Limit)})
	state := s.queueState(ctx, pipe, customerID, now, nil)
	_, _ = pipe.Exec(ctx)

	var events []contact.Event
	for _, cmd := range []*goredis.ZSliceCmd{ties, older} {
		if cmd == nil {
			continue
		}
		if err := cmd.Err(); err != nil {
			return nil, contact.State{}, contact.Unavailable("redis", fmt.Errorf("store: unable to read a timeline: %w", err))
		}
		for _, z := range cmd.Val() {
			e, err := s.decodeMember(customerID, z)
			if err != nil {
				return nil, contact.State{}, s.undecodable(key, err)
			}
			if page.After.IsZero() || page.After.Before(&e) {
				events = append(events, e)
			}
		}
	}
	contact.SortNewestFirst(events)
	events = events[:min(len(events), page.Limit)]
	st, err := state()
	if err != nil {
		return nil, contact.State{}, err
	}
	return events, st, nil
}

// undecodable logs a stored value that cannot be read, with its key, and
// returns the error a read that met it fails with: the store cannot say what
// it holds, so nothing may be decided from it.
func (s *Store) undecodable(key string, err error) error {
	s.log.Error("store: a stored value cannot be decoded", "key", key, "error", err)
	return &contact.Error{Code: contact.EUnavailable, Message: "the store holds a record that cannot be read", Err: err}
}

func (s *Store) decodeMember(customerID string, z goredis.Z) (contact.Event, error) {
	m, _ := z.Member.(string)
	id, record, ok := splitMember(m)
	if !ok || z.Score != math.Trunc(z.Score) {
		return contact.Event{}, errRecord
	}
	return decodeRecord(record, customerID, id, msTime(int64(z.Score)))
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// queueState queues on pipe the reads of a customer's state as of now, and
// returns the function that decodes them once pipe has run. It fails with
// EUnavailable if any read failed or any value cannot be decoded. Offers of
// products not in offerProducts are left out, unless it is nil (see
// contact.Lookup).
func (s *Store) queueState(ctx context.Context, pipe goredis.Pipeliner, customerID string, now time.Time, offerProducts []string) func() (contact.State, error) {
	slots := pipe.HGetAll(ctx, s.key(customerID, kindState))
	recent := pipe.ZRangeWithScores(ctx, s.key(customerID, kindRecent), 0, -1)
	offers := pipe.ZRangeByScoreWithScores(ctx, s.key(customerID, kindOffers), &goredis.ZRangeBy{Min: "(" + formatMillis(now.UnixMilli()), Max: "+inf"})
	return func() (contact.State, error) {
		for _, cmd := range []goredis.Cmder{slots, recent, offers} {
			if err := cmd.Err(); err != nil {
				return contact.State{}, contact.Unavailable("redis", fmt.Errorf("store: unable to read a state: %w", err))
			}
		}
		var st contact.State
		for field, v := range slots.Val() {
			if field == "#b" {
				continue
			}
			f, ok := parseFact(field)
			e, err := decodeSlot(customerID, v)
			if !ok || err != nil {
				return contact.State{}, s.undecodable(s.key(customerID, kindState)+" "+strconv.Quote(field), errors.Join(errSlot, err))
			}
			st.Put(f, &e)
		}
		for i := len(recent.Val()) - 1; i >= 0; i-- {
			z := recent.Val()[i]
			id, _ := z.Member.(string)
			st.Recent = append(st.Recent, contact.Stamp{At: msTime(int64(z.Score)), ID: id})
		}
		for _, z := range offers.Val() {
			e, err := decodeOffer(customerID, z, offerProducts)
			if errors.Is(err, errOtherProduct) {
				continue
			}
			if err != nil {
				return contact.State{}, s.undecodable(s.key(customerID, kindOffers), err)
			}
			st.Offers = append(st.Offers, e)
		}
		contact.SortNewestFirst(st.Offers)
		return st, nil
	}
}

// errOtherProduct is decodeOffer's answer for an offer of a product not
// asked for.
var errOtherProduct = errors.New("store: an offer of another product")

// decodeOffer decodes an offer, unless products is not nil and does not
// name its product: then it reads only as far as the product and returns
// errOtherProduct. Either way a record that does not start as the codec
// says is an error, so that a check still fails closed over it.
func decodeOffer(customerID string, z goredis.Z, products []string) (contact.Event, error) {
	m, _ := z.Member.(string)
	id, rest, ok := splitMember(m)
	record, at, okAt := decodeOfferAt(rest)
	if !ok || !okAt {
		return contact.Event{}, errRecord
	}
	if products != nil {
		p, err := recordProduct(record) // cheap: no copy but the product's
		if err != nil {
			return contact.Event{}, err
		}
		if !slices.Contains(products, p) {
			return contact.Event{}, errOtherProduct
		}
	}
	return decodeRecord(record, customerID, id, msTime(at))
}
