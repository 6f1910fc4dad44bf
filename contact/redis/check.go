package redis

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

// claimKey holds the active claim on a customer: a string set with NX and
// a TTL, whose value is the claim's JSON with the token first.
func (s *Store) claimKey(customerID string) string { return s.key(customerID, "claim") }

// Check decides each request under policy p. For each it reads everything
// the decision needs and, when the request asks for a claim, tries to take
// it, all in one pipeline: one round trip for the whole batch. A claim taken
// for a request that turns out blocked is released again, which costs a
// second round trip only then.
//
// Requests must be normalized. Results are in the order of reqs. When Redis
// cannot be reached it returns an EUnavailable error and no results; the
// caller answers with dedupe.Unavailable. A request's Phone is read with
// NormalizePhone, and one that cannot be read is an EInvalid error (field
// "phone"). Every suppression list is checked against the customer id and
// the phone, in the same round trip.
func (s *Store) Check(ctx context.Context, p *dedupe.Policy, reqs []dedupe.Request) ([]dedupe.Result, error) {
	w := Window{Contacts: p.ContactWindow(), Purchases: p.PurchaseLookback()}
	type pending struct {
		history func() contact.History
		holder  *goredis.StringCmd
		take    *goredis.BoolCmd // nil unless the request claims
		claim   dedupe.Claim
	}
	phones, err := s.normalizePhones(reqs)
	if err != nil {
		return nil, err
	}
	pipe := s.rdb.Pipeline()
	suppressions := s.queueSuppressions(ctx, pipe, reqs, phones)
	ps := make([]pending, len(reqs))
	for i := range reqs {
		r := &reqs[i]
		ps[i].history = s.queueHistory(ctx, pipe, r.CustomerID, r.At, w, s.maxEvents)
		key := s.claimKey(r.CustomerID)
		// SET NX comes before GET, so that a check that loses the race
		// reads the winner's claim: commands of one pipeline run in order.
		if r.Claim {
			token, err := newToken(r.CustomerID)
			if err != nil {
				return nil, err
			}
			ps[i].claim = dedupe.Claim{Token: token, Agent: r.Agent, Campaign: r.Campaign, ExpiresAt: s.now().Add(p.ClaimTTL()).UTC().Truncate(time.Millisecond)}
			value, _ := json.Marshal(ps[i].claim)
			ps[i].take = pipe.SetNX(ctx, key, value, p.ClaimTTL())
		}
		ps[i].holder = pipe.Get(ctx, key)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, contact.Unavailable("redis", fmt.Errorf("store: unable to read check facts: %w", err))
	}

	results := make([]dedupe.Result, len(reqs))
	var release []dedupe.Claim
	for i := range reqs {
		r, pd := &reqs[i], &ps[i]
		facts := dedupe.Facts{History: pd.history(), Suppressions: suppressions.hits(i)}
		took := pd.take != nil && pd.take.Val()
		if !took {
			facts.Claim = s.decodeClaim(pd.holder)
			if facts.Claim == nil && pd.take != nil {
				// The winner's claim ended between our SET and GET; it
				// was held when we asked, so the answer is still claimed.
				facts.Claim = &dedupe.Claim{}
			}
		}
		results[i] = dedupe.Result{CustomerID: r.CustomerID, Decision: dedupe.Decide(p, r, &facts)}
		switch {
		case took && results[i].Allowed:
			c := pd.claim
			results[i].Claim = &c
		case took:
			release = append(release, pd.claim)
		}
	}
	for _, c := range release {
		if _, err := s.ReleaseClaim(ctx, c.Token); err != nil {
			// It expires at its TTL anyway.
			s.log.Warn("store: unable to release the claim of a blocked check", "error", err)
		}
	}
	return results, nil
}

// decodeClaim returns the claim a GET read, nil if there is none.
func (s *Store) decodeClaim(cmd *goredis.StringCmd) *dedupe.Claim {
	v, err := cmd.Result()
	if err != nil {
		return nil
	}
	var c dedupe.Claim
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		s.log.Warn("store: undecodable claim", "error", err)
		return &dedupe.Claim{}
	}
	c.Token = "" // a token is only ever shown to its holder
	return &c
}

// releaseScript deletes a claim only if it still holds the token given:
// a claim that expired and was taken by someone else stays.
var releaseScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.find(v, ARGV[1], 1, true) == 1 then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// LoadScripts loads the store's scripts into Redis, so that the first
// release does not pay for it. Scripts run only to release claims, never on
// the ingest or check path.
func (s *Store) LoadScripts(ctx context.Context) error {
	if err := releaseScript.Load(ctx, s.rdb).Err(); err != nil {
		return contact.Unavailable("redis", fmt.Errorf("store: unable to load scripts: %w", err))
	}
	return nil
}

// ReleaseClaim ends the claim with the given token. It reports whether the
// claim was still held; EInvalid for a token that is not one of ours,
// EUnavailable when Redis is down.
func (s *Store) ReleaseClaim(ctx context.Context, token string) (bool, error) {
	customerID, err := tokenCustomer(token)
	if err != nil {
		return false, err
	}
	prefix := `{"token":` + jsonString(token)
	n, err := releaseScript.Run(ctx, s.rdb, []string{s.claimKey(customerID)}, prefix).Int()
	if err != nil {
		return false, contact.Unavailable("redis", fmt.Errorf("store: unable to release a claim: %w", err))
	}
	return n == 1, nil
}

// A claim token is the customer id, base64url-encoded, a dot, and 128
// random bits in hex, so that a release finds the claim key from the token
// alone.
func newToken(customerID string) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("store: unable to make a token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(customerID)) + "." + hex.EncodeToString(b), nil
}

func tokenCustomer(token string) (string, error) {
	enc, random, ok := strings.Cut(token, ".")
	id, err := base64.RawURLEncoding.DecodeString(enc)
	if !ok || err != nil || len(random) != 32 || contact.ValidCustomerID(string(id)) != nil {
		return "", contact.Invalid("token", "is not a claim token")
	}
	if _, err := hex.DecodeString(random); err != nil {
		return "", contact.Invalid("token", "is not a claim token")
	}
	return string(id), nil
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
