package redis

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact"
)

// applyScript stores one event of a customer, atomically:
//
//   - the tombstone of an erasure: an event dated up to it is dropped;
//   - the id index: a second event with a stored id is a redelivery (the same
//     digest: nothing changes) or a conflict (the first version stands);
//   - the history entry, trimmed to the retention and the count limit,
//     with its id index;
//   - each slot of the state the event competes for, where it wins if its
//     order key is greater (a byte comparison: Lua's < on strings follows
//     the server's locale), keeping a count of binding slots so that a state
//     with none expires and one with any persists;
//   - the recent outbound contacts and the offers, trimmed by age and count;
//   - the claim the event's contact was made under, released.
//
// KEYS: history, ids, state, recent, offers, claim, tombstone.
// ARGV: now, retention, maxEvents, id, digest, score, member, nslots,
// then per slot: field, binding ("1"/"0"), value (order key length (2 bytes),
// order key, record); then recent id, recent horizon, recent max; then
// offer member, offer expiry, offer max; then the claim prefix.
// It returns 0 (applied), 1 (a redelivery), 2 (a conflict) or 3 (erased).
var applyScript = goredis.NewScript(`
local function gt(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
local function okey(v)
  local n = string.byte(v, 2) * 256 + string.byte(v, 3)
  return string.sub(v, 4, 3 + n)
end
local function gone(ids, members)
  for _, m in ipairs(members) do
    redis.call('HDEL', ids, string.sub(m, 1, string.find(m, '\31', 1, true) - 1))
  end
end
local h, ids, st, rc, of, claim = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now, ttl, maxev = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tomb = redis.call('GET', KEYS[7])
if tomb and tonumber(ARGV[6]) <= tonumber(tomb) then return 3 end
local score = tonumber(ARGV[6])
local keep = score >= now - ttl
-- The id index: HSETNX both looks the id up and, for a new event kept in
-- the history, records it, in one call.
if keep then
  if redis.call('HSETNX', ids, ARGV[4], ARGV[5]) == 0 then
    if redis.call('HGET', ids, ARGV[4]) == ARGV[5] then return 1 end
    return 2
  end
else
  local old = redis.call('HGET', ids, ARGV[4])
  if old then
    if old == ARGV[5] then return 1 end
    return 2
  end
end
if keep then
  redis.call('ZADD', h, score, ARGV[7])
  local cutoff = '(' .. (now - ttl)
  local old = redis.call('ZRANGEBYSCORE', h, '-inf', cutoff)
  if #old > 0 then
    gone(ids, old)
    redis.call('ZREMRANGEBYSCORE', h, '-inf', cutoff)
  end
  local over = redis.call('ZCARD', h) - maxev
  if over > 0 then
    gone(ids, redis.call('ZRANGE', h, 0, over - 1))
    redis.call('ZREMRANGEBYRANK', h, 0, over - 1)
  end
  redis.call('PEXPIRE', h, ttl)
  redis.call('PEXPIRE', ids, ttl)
end
-- The state: every slot the event competes for, and the count of binding
-- slots, read in one HMGET and written in one HSET.
local n = tonumber(ARGV[8])
local a = 9
local fields = {'#b'}
for i = 1, n do fields[i + 1] = ARGV[a + 3 * (i - 1)] end
local cur = redis.call('HMGET', st, unpack(fields))
local bound = tonumber(cur[1] or '0')
local set = {}
local delta = 0
for i = 1, n do
  local field, binding, value = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  a = a + 3
  local c = cur[i + 1]
  if not c or gt(okey(value), okey(c)) then
    set[#set + 1] = field
    set[#set + 1] = value
    if binding == '1' then delta = delta + 1 end
    if c and string.sub(c, 1, 1) == '1' then delta = delta - 1 end
  end
end
if #set > 0 then redis.call('HSET', st, unpack(set)) end
if delta ~= 0 then bound = redis.call('HINCRBY', st, '#b', delta) end
if bound > 0 then
  redis.call('PERSIST', st)
else
  redis.call('PEXPIRE', st, ttl) -- a no-op when there is no state
end
if ARGV[a] ~= '' then
  local horizon = tonumber(ARGV[a + 1])
  redis.call('ZADD', rc, score, ARGV[a])
  redis.call('ZREMRANGEBYSCORE', rc, '-inf', '(' .. (now - horizon))
  redis.call('ZREMRANGEBYRANK', rc, 0, -tonumber(ARGV[a + 2]) - 1)
  redis.call('PEXPIRE', rc, horizon)
end
a = a + 3
if ARGV[a] ~= '' then
  redis.call('ZADD', of, ARGV[a + 1], ARGV[a])
  redis.call('ZREMRANGEBYSCORE', of, '-inf', '(' .. now)
  redis.call('ZREMRANGEBYRANK', of, 0, -tonumber(ARGV[a + 2]) - 1)
  local last = redis.call('ZRANGE', of, -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIREAT', of, last[2]) end
end
a = a + 3
if ARGV[a] ~= '' then
  local v = redis.call('GET', claim)
  if v and string.find(v, ARGV[a], 1, true) == 1 then redis.call('DEL', claim) end
end
return 0`)

// Apply results.
const (
	applied    = 0
	redelivery = 1
	conflict   = 2
	erased     = 3
)

// Apply stores events, which must be normalized, in one pipeline of one
// script call each. It is idempotent: applying the same events again changes
// nothing but key TTLs, and the state it ends in does not depend on the
// order of the events.
//
// A forget event erases the customer (erase.go), in its place among the
// events. It returns one error per event: nil; an EConflict error for an
// event whose id is stored with other content (the stored one stands); an
// EGone error for an event dated up to an erasure of its customer, which is
// dropped; or an EInternal error when Redis refused that event alone (a key of the wrong
// type, a script error), which applying it again will likely not mend. The
// second result is an EUnavailable error when Redis cannot be reached or
// cannot take writes at all (a timeout, a lost connection, out of memory,
// loading, a cluster without a master): nothing is to blame on an event,
// and the batch is to be applied again. On any failure some events may have
// been applied; applying them all again is safe.
//
// Then the follow-ups of the customers whose open complaints the events may
// have changed are derived again (followup.go).
func (s *Store) Apply(ctx context.Context, events []contact.Event) ([]error, error) {
	errs := make([]error, 0, len(events))
	var follow []string
	for len(events) > 0 {
		// A forget event erases what came before it, in order.
		n := 0
		for n < len(events) && events[n].Type != contact.TypeForget {
			n++
		}
		part, customers, err := s.applyEvents(ctx, events[:n])
		if err != nil {
			return nil, err
		}
		errs = append(errs, part...)
		follow = append(follow, customers...)
		if n < len(events) {
			if err := s.erase(ctx, events[n].CustomerID, events[n].At); err != nil {
				return nil, err
			}
			errs = append(errs, nil)
			follow = append(follow, events[n].CustomerID)
			n++
		}
		events = events[n:]
	}
	slices.Sort(follow)
	if err := s.syncFollowUps(ctx, slices.Compact(follow)); err != nil {
		return nil, err
	}
	return errs, nil
}

// applyEvents applies events, none of them a forget event, in one pipeline.
// It returns the customers whose follow-ups the events may have changed:
// those of a complaint, and those with follow-ups of an outbound contact.
func (s *Store) applyEvents(ctx context.Context, events []contact.Event) ([]error, []string, error) {
	if len(events) == 0 {
		return nil, nil, nil
	}
	now := s.now()
	limits := s.limits()
	pipe := s.rdb.Pipeline()
	cmds := make([]*goredis.Cmd, len(events))
	for i := range events {
		keys, args := s.applyArgs(&events[i], now.UnixMilli(), limits)
		cmds[i] = applyScript.EvalSha(ctx, pipe, keys, args...)
	}
	var follow []string
	contacted := map[string]*goredis.IntCmd{} // after the scripts: a pipeline runs in order
	for i := range events {
		switch e := &events[i]; {
		case e.Type == contact.TypeComplaint:
			follow = append(follow, e.CustomerID)
		case e.IsOutboundContact() && contacted[e.CustomerID] == nil:
			contacted[e.CustomerID] = pipe.Exists(ctx, s.followKey(e.CustomerID))
		}
	}
	_, _ = pipe.Exec(ctx) // each command's error is looked at below
	errs := make([]error, len(events))
	refused := 0
	for i, cmd := range cmds {
		n, err := cmd.Int()
		switch {
		case isNoScript(err):
			// Redis lost its scripts (a restart): load them and go again.
			if err := s.LoadScripts(ctx); err != nil {
				return nil, nil, err
			}
			return s.applyEvents(ctx, events)
		case err != nil && !refusal(err):
			return nil, nil, contact.Unavailable("redis", fmt.Errorf("store: unable to apply %d events: %w", len(events), err))
		case err != nil:
			errs[i] = &contact.Error{Code: contact.EInternal, Message: "the store refused the event", Err: err}
			refused++
		case n == conflict:
			errs[i] = idConflict()
		case n == redelivery:
			s.redeliv.Add(1)
		case n == erased:
			errs[i] = &contact.Error{Code: contact.EGone, Message: "the customer was erased after this event"}
		}
	}
	if refused > 1 && refused == len(events) {
		// Every event refused alike is the server's fault, not theirs.
		return nil, nil, contact.Unavailable("redis", fmt.Errorf("store: Redis refused all %d events: %w", len(events), errs[0]))
	}
	for c, cmd := range contacted {
		if err := cmd.Err(); err != nil {
			return nil, nil, contact.Unavailable("redis", fmt.Errorf("store: unable to apply %d events: %w", len(events), err))
		}
		if cmd.Val() > 0 {
			follow = append(follow, c)
		}
	}
	return errs, follow, nil
}

// Redelivered returns how many events Apply found stored already, with the
// same content, since the store was made: redeliveries (after a crash, a
// rebalance or a retry) that idempotence absorbed.
func (s *Store) Redelivered() int64 { return s.redeliv.Load() }

// refusal reports whether err is Redis refusing one event for what it is
// (a key of the wrong type, an error of the script on this event's data),
// rather than a failure of the server or the connection, which is an outage
// to wait out.
func refusal(err error) bool {
	var rerr goredis.Error
	if !errors.As(err, &rerr) {
		return false // a network error, a timeout, a canceled context
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "WRONGTYPE") || strings.Contains(msg, "user_script") || strings.Contains(msg, "Error running script")
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// applyArgs builds the keys and arguments of applyScript for e.
func (s *Store) applyArgs(e *contact.Event, now int64, l contact.Limits) ([]string, []any) {
	id := e.CustomerID
	keys := []string{s.key(id, kindHistory), s.key(id, kindIDs), s.key(id, kindState), s.key(id, kindRecent), s.key(id, kindOffers), s.claimKey(id), s.tombKey(id)}
	record := encodeRecord(nil, e)
	at := e.At.UnixMilli()
	args := make([]any, 0, 20)
	args = append(args, now, s.retention.Milliseconds(), s.maxEvents, e.ID, digest(e.At, record), at, historyMember(e.ID, record))
	facts := e.Facts()
	args = append(args, len(facts))
	for _, f := range facts {
		binding := "0"
		if e.Binding() {
			binding = "1"
		}
		args = append(args, slotField(f), binding, slotValue(e, record))
	}
	recent := ""
	if e.RecentContact() {
		recent = e.ID
	}
	args = append(args, recent, l.Recent.Milliseconds(), l.RecentMax)
	offer, expiry := "", int64(0)
	if e.MadeOffer() {
		offer, expiry = string(historyMember(e.ID, encodeOfferAt(record, at))), e.OfferExpiry(l.Offers).UnixMilli()
	}
	args = append(args, offer, expiry, l.OffersMax)
	claimPrefix := ""
	if e.Type == contact.TypeContact && e.Claim != "" {
		if cid, err := tokenCustomer(e.Claim); err == nil && cid == e.CustomerID {
			claimPrefix = `{"token":` + jsonString(e.Claim)
		}
	}
	return keys, append(args, claimPrefix)
}

// historyMember is how an event is kept in the history: its id, a 0x1f
// separator (ids hold no control characters) and its record. Members of one
// score then sort by id, which is the timeline's order.
func historyMember(id string, record []byte) []byte {
	b := make([]byte, 0, len(id)+1+len(record))
	return append(append(append(b, id...), 0x1f), record...)
}

func splitMember(m string) (id string, record []byte, ok bool) {
	i := strings.IndexByte(m, 0x1f)
	if i < 1 {
		return "", nil, false
	}
	return m[:i], []byte(m[i+1:]), true
}

// An offer is kept with its time, which its score (the expiry) does not say:
// 8 bytes of unix ms before the record.
func encodeOfferAt(record []byte, at int64) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(at)), record...)
}

// decodeOfferAt splits what encodeOfferAt made; ok is false when b is too
// short to hold the time.
func decodeOfferAt(b []byte) (record []byte, at int64, ok bool) {
	if len(b) < 8 {
		return nil, 0, false
	}
	return b[8:], int64(binary.BigEndian.Uint64(b)), true
}

// slotField names a slot of the state hash: its kind, ':' and its key.
func slotField(f contact.Fact) string { return string(f.Kind) + ":" + f.Key }

// slotValue is a slot's value: the binding flag, the order key's length
// (2 bytes) and the order key, then the record. The order key compares, as
// bytes, the way contact.Supersedes orders events: the time (8 bytes, big
// endian), the rank, then the id.
func slotValue(e *contact.Event, record []byte) string {
	key := binary.BigEndian.AppendUint64(nil, uint64(e.At.UnixMilli()))
	key = append(append(key, byte(e.Rank())), e.ID...)
	b := make([]byte, 0, 3+len(key)+len(record))
	flag := byte('0')
	if e.Binding() {
		flag = '1'
	}
	b = append(binary.BigEndian.AppendUint16(append(b, flag), uint16(len(key))), key...)
	return string(append(b, record...))
}

var errSlot = errors.New("store: undecodable state slot")

// decodeSlot reads a slot value made by slotValue.
func decodeSlot(customerID, v string) (contact.Event, error) {
	if len(v) < 3 {
		return contact.Event{}, errSlot
	}
	n := int(binary.BigEndian.Uint16([]byte(v[1:3])))
	if len(v) < 3+n || n < 10 {
		return contact.Event{}, errSlot
	}
	key := []byte(v[3 : 3+n])
	at := int64(binary.BigEndian.Uint64(key[:8]))
	e, err := decodeRecord([]byte(v[3+n:]), customerID, string(key[9:]), msTime(at))
	if err != nil {
		return e, err
	}
	if e.Rank() != int(key[8]) {
		return e, errSlot
	}
	return e, nil
}

func parseFact(field string) (contact.Fact, bool) {
	kind, key, ok := strings.Cut(field, ":")
	if !ok || len(kind) != 1 {
		return contact.Fact{}, false
	}
	return contact.Fact{Kind: kind[0], Key: key}, true
}

func formatMillis(ms int64) string { return strconv.FormatInt(ms, 10) }
