package redis

// Suppression (do-not-call) lists.
//
// An entry names a customer id or a phone number (E.164). The check must
// find every entry naming a customer or a number in one round trip, so
// entries are kept by member, not by list:
//
//	PREFIX{c:ID}:dnc         hash: "LIST:GEN" → the entry's JSON (contact.Suppression)
//	PREFIX{p:E164}:dnc       hash: the same, for a phone number
//	PREFIX{dnc}:lists        hash: LIST → the generations in force (see below)
//	PREFIX{dnc}:ver          counter: bumped on every change of {dnc}:lists
//	PREFIX{l:LIST}:meta      hash: next → the last number handed out;
//	                         loading:GEN → when a load last wrote (unix ms)
//	PREFIX{l:LIST:B}:m:GEN   set: the members of generation GEN in bucket B
//	                         (0–63, by a hash of the member)
//
// A customer's entries share its hash tag {c:ID}, so a check reads them in
// the same slot as the customer's state. A generation's members are spread
// over 64 buckets, so that a list of millions spreads over the nodes of a
// cluster and no command on one of them is long.
//
// Every load (a replace or an addition) writes a new generation, which no
// check counts, in pipelined batches, and then puts it in force with one
// script on {dnc}:lists: checks see the list before or after, never a mix,
// and a load that fails (a bad line, a client that goes away, a node that
// fails mid-copy) changes nothing. The value of a list in {dnc}:lists is its
// base generation (the last replace) followed by the additions put in force
// since, as "ADD:SEQ", where SEQ is a number handed out when the addition was
// put in force. A replace keeps the additions put in force after it started
// (SEQ greater than its generation) and drops the rest, which its upload
// replaces; the generations it drops are deleted, in batches, through their
// member sets.
//
// Processes cache {dnc}:lists (suppress_read.go), refreshed against
// {dnc}:ver at most once a second, so that no key is read by every check of
// the fleet.

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"iter"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/phone"
)

const (
	// suppressBatch is how many entries one pipeline of a load writes.
	suppressBatch = 1000
	// memberBuckets is how many sets a generation's members spread over.
	memberBuckets = 64
	// staleLoad is how long a load may go without writing before another
	// replace of its list takes it for abandoned (its process died) and
	// deletes what it wrote.
	staleLoad = 10 * time.Minute
	// cleanupTimeout bounds the deletion of an old or failed generation,
	// which goes on after the request that caused it has ended.
	cleanupTimeout = 5 * time.Minute
	maxReasonLen   = 256
)

var listName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ValidListName checks the name of a suppression list: 1 to 64 characters
// of a-z, 0-9, '-' and '_', starting with a letter or digit.
func ValidListName(name string) error {
	if !listName.MatchString(name) {
		return contact.Invalid("list", "must be 1 to 64 characters of a-z, 0-9, - and _, starting with a letter or digit; got %q", contact.Clip(name))
	}
	return nil
}

// Keys of suppression lists.

func (s *Store) dncListsKey() string { return s.prefix + "{dnc}:lists" }
func (s *Store) dncVerKey() string   { return s.prefix + "{dnc}:ver" }
func (s *Store) metaKey(list string) string {
	return s.prefix + "{l:" + list + "}:meta"
}

// bucketKey is the member set of a generation's bucket b.
func (s *Store) bucketKey(list string, gen int64, b int) string {
	return s.prefix + "{l:" + list + ":" + strconv.Itoa(b) + "}:m:" + strconv.FormatInt(gen, 10)
}

func bucketOf(member string) int {
	h := fnv.New32a()
	h.Write([]byte(member))
	return int(h.Sum32() % memberBuckets)
}

// memberKey is the hash of every entry naming member, "c:ID" or "p:E164":
// the member's own hash tag, so that it sits in the customer's slot.
func (s *Store) memberKey(member string) string { return s.prefix + "{" + member + "}:dnc" }

func entryField(list string, gen int64) string { return list + ":" + strconv.FormatInt(gen, 10) }

func customerMember(id string) string  { return "c:" + id }
func phoneMember(e164 string) string   { return "p:" + e164 }
func loadingField(gen int64) string    { return "loading:" + strconv.FormatInt(gen, 10) }
func nowMillis(t time.Time) string     { return strconv.FormatInt(t.UnixMilli(), 10) }
func parseGen(v string) (int64, error) { return strconv.ParseInt(v, 10, 64) }

// entryMember validates e, an entry of list, and returns its member and
// stored JSON.
func entryMember(list string, e contact.Suppression) (string, []byte, error) {
	var member string
	switch {
	case e.CustomerID != "" && e.Phone != "":
		return "", nil, contact.Invalid("", "an entry names a customer_id or a phone, not both")
	case e.CustomerID != "":
		if err := contact.ValidCustomerID(e.CustomerID); err != nil {
			return "", nil, err
		}
		member = customerMember(e.CustomerID)
	case e.Phone != "":
		if !phone.IsE164(e.Phone) {
			return "", nil, contact.Invalid("phone", "must be in E.164 form, such as +4791234567")
		}
		member = phoneMember(e.Phone)
	default:
		return "", nil, contact.Invalid("", "an entry needs a customer_id or a phone")
	}
	if utf8.RuneCountInString(e.Reason) > maxReasonLen {
		return "", nil, contact.Invalid("reason", "must be at most %d characters", maxReasonLen)
	}
	e.List = list
	if e.ExpiresAt != nil {
		t := e.ExpiresAt.UTC()
		e.ExpiresAt = &t
	}
	data, err := json.Marshal(e)
	if err != nil {
		return "", nil, fmt.Errorf("store: unable to encode a suppression entry: %w", err)
	}
	return member, data, nil
}

// keyMember returns the member that key names: its CustomerID or its Phone,
// in E.164 form.
func (s *Store) keyMember(key contact.Suppression) (string, error) {
	switch {
	case key.CustomerID != "" && key.Phone != "":
		return "", contact.Invalid("", "name a customer_id or a phone, not both")
	case key.CustomerID != "":
		if err := contact.ValidCustomerID(key.CustomerID); err != nil {
			return "", err
		}
		return customerMember(key.CustomerID), nil
	case key.Phone != "":
		if !phone.IsE164(key.Phone) {
			return "", contact.Invalid("phone", "must be in E.164 form, such as +4791234567")
		}
		return phoneMember(key.Phone), nil
	}
	return "", contact.Invalid("", "name a customer_id or a phone")
}

func unavailable(what string, err error) error {
	return contact.Unavailable("redis", fmt.Errorf("store: unable to %s: %w", what, err))
}

// ReplaceSuppressions makes list hold exactly the entries of the sequence,
// creating the list if need be. Each entry names a CustomerID or a Phone in
// E.164 form; List is set to list, and a later entry for the same member
// wins. It returns how many entries it wrote.
//
// Checks see the old list until the whole sequence has been read and
// written, then the new one. If the sequence yields an error, the error is
// returned as is and the list is left unchanged; so it is if ctx ends or
// Redis fails first. Of two replaces of one list at once, the one that
// started last wins; an addition put in force while a replace loads is kept.
// Errors: EInvalid for a bad list name or entry, EUnavailable when Redis is
// down, and whatever the sequence yields.
func (s *Store) ReplaceSuppressions(ctx context.Context, list string, entries iter.Seq2[contact.Suppression, error]) (int, error) {
	return s.load(ctx, list, entries, true)
}

// AddSuppressions adds the entries of the sequence to list, creating the
// list if need be, and returns how many distinct members it added or
// updated. Entries are as for
// ReplaceSuppressions. Nothing is added unless the whole sequence is read
// and written: the entries are put in force together, at once. Errors:
// EInvalid, EUnavailable, and whatever the sequence yields.
func (s *Store) AddSuppressions(ctx context.Context, list string, entries iter.Seq2[contact.Suppression, error]) (int, error) {
	return s.load(ctx, list, entries, false)
}

// load writes the entries into a new generation of list and puts it in
// force: as the list's base with replace, else as an addition.
func (s *Store) load(ctx context.Context, list string, entries iter.Seq2[contact.Suppression, error], replace bool) (int, error) {
	if err := ValidListName(list); err != nil {
		return 0, err
	}
	meta := s.metaKey(list)
	gen, err := s.rdb.HIncrBy(ctx, meta, "next", 1).Result()
	if err != nil {
		return 0, unavailable("start loading a list", err)
	}
	loading := loadingField(gen)
	if err := s.rdb.HSet(ctx, meta, loading, nowMillis(time.Now())).Err(); err != nil {
		return 0, unavailable("start loading a list", err)
	}
	w := &genWriter{s: s, list: list, gen: gen, heartbeat: loading}
	n, err := w.writeAll(ctx, entries)
	if err == nil && !replace {
		n, err = s.members(ctx, list, gen)
	}
	if err == nil {
		err = s.putInForce(ctx, list, gen, replace)
	}
	s.rdb.HDel(context.WithoutCancel(ctx), meta, loading)
	if err != nil {
		s.dropGenerations(list, []int64{gen})
		return 0, err
	}
	return n, nil
}

// putInForce makes generation gen of list count: as its base (replace),
// or as an addition.
func (s *Store) putInForce(ctx context.Context, list string, gen int64, replace bool) error {
	// This process sees its own change at once; others within listsFresh.
	defer s.listCache.copy.Store(nil)
	if !replace {
		seq, err := s.rdb.HIncrBy(ctx, s.metaKey(list), "next", 1).Result()
		if err != nil {
			return unavailable("put an addition in force", err)
		}
		err = addScript.Run(ctx, s.rdb, []string{s.dncListsKey(), s.dncVerKey()}, list, fmt.Sprintf("%d:%d", gen, seq)).Err()
		if err != nil {
			return unavailable("put an addition in force", err)
		}
		return nil
	}
	dropped, err := commitScript.Run(ctx, s.rdb, []string{s.dncListsKey(), s.dncVerKey()}, list, gen).StringSlice()
	if err != nil {
		return unavailable("put a list in force", err)
	}
	var drop []int64
	for _, g := range dropped {
		if n, err := parseGen(g); err == nil {
			drop = append(drop, n)
		}
	}
	if stale, err := s.staleLoads(ctx, list); err == nil {
		drop = append(drop, stale...)
	}
	s.dropGenerations(list, drop)
	return nil
}

// members counts the distinct members of a generation.
func (s *Store) members(ctx context.Context, list string, gen int64) (int, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*goredis.IntCmd, memberBuckets)
	for b := range memberBuckets {
		cmds[b] = pipe.SCard(ctx, s.bucketKey(list, gen, b))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, unavailable("count suppression entries", err)
	}
	n := 0
	for _, c := range cmds {
		n += int(c.Val())
	}
	return n, nil
}

// commitScript puts generation ARGV[2] in force as the base of list
// ARGV[1], unless a later replace already is. It keeps the additions put in
// force after the replace started (their SEQ is greater) and returns the
// generations it no longer counts (its own, if a later replace won).
var commitScript = goredis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local gen = tonumber(ARGV[2])
local keep, drop = {ARGV[2]}, {}
if cur then
  local base = nil
  for item in string.gmatch(cur, '%S+') do
    if not base then
      base = tonumber(item)
      if base > gen then return {ARGV[2]} end
      table.insert(drop, item)
    else
      local add, seq = string.match(item, '^(%d+):(%d+)$')
      if tonumber(seq) > gen then table.insert(keep, item) else table.insert(drop, add) end
    end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], table.concat(keep, ' '))
redis.call('INCR', KEYS[2])
return drop`)

// addScript appends an addition ARGV[2] ("GEN:SEQ") to list ARGV[1],
// creating the list if need be (with an empty base, generation 0).
var addScript = goredis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or '0'
redis.call('HSET', KEYS[1], ARGV[1], cur .. ' ' .. ARGV[2])
redis.call('INCR', KEYS[2])
return 1`)

// genWriter writes entries of one list into a generation, in pipelined
// batches.
type genWriter struct {
	s         *Store
	list      string
	gen       int64
	heartbeat string // the meta field the load refreshes with each batch
	pipe      goredis.Pipeliner
	buckets   map[int][]any
	n         int
}

func (w *genWriter) add(ctx context.Context, member string, data any) {
	if w.pipe == nil {
		w.pipe, w.buckets = w.s.rdb.Pipeline(), map[int][]any{}
	}
	w.pipe.HSet(ctx, w.s.memberKey(member), entryField(w.list, w.gen), data)
	b := bucketOf(member)
	w.buckets[b] = append(w.buckets[b], member)
	w.n++
}

func (w *genWriter) flush(ctx context.Context) error {
	if w.n == 0 {
		return nil
	}
	for b, members := range w.buckets {
		w.pipe.SAdd(ctx, w.s.bucketKey(w.list, w.gen, b), members...)
	}
	w.pipe.HSet(ctx, w.s.metaKey(w.list), w.heartbeat, nowMillis(time.Now()))
	_, err := w.pipe.Exec(ctx)
	w.n = 0
	clear(w.buckets)
	if err != nil {
		return unavailable("write suppression entries", err)
	}
	return nil
}

func (w *genWriter) writeAll(ctx context.Context, entries iter.Seq2[contact.Suppression, error]) (int, error) {
	n := 0
	for e, err := range entries {
		if err != nil {
			return 0, err
		}
		member, data, err := entryMember(w.list, e)
		if err != nil {
			return 0, err
		}
		w.add(ctx, member, data)
		n++
		if w.n >= suppressBatch {
			if err := w.flush(ctx); err != nil {
				return 0, err
			}
		}
	}
	if err := w.flush(ctx); err != nil {
		return 0, err
	}
	return n, nil
}

// staleLoads returns the generations of loads of list that stopped writing
// more than staleLoad ago, and forgets them.
func (s *Store) staleLoads(ctx context.Context, list string) ([]int64, error) {
	meta := s.metaKey(list)
	fields, err := s.rdb.HGetAll(ctx, meta).Result()
	if err != nil {
		return nil, err
	}
	cutoff := time.Now().Add(-staleLoad).UnixMilli()
	var stale []int64
	for f, v := range fields {
		g, ok := strings.CutPrefix(f, "loading:")
		ms, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil || ms >= cutoff {
			continue
		}
		if gen, err := parseGen(g); err == nil {
			stale = append(stale, gen)
			s.rdb.HDel(ctx, meta, f)
		}
	}
	return stale, nil
}

// dropGenerations deletes generations of list, none of them in force, batch
// by batch through their member sets. It goes on after the request that
// called it ends, for up to cleanupTimeout. A failure leaves entries that
// no check counts, and is logged.
func (s *Store) dropGenerations(list string, gens []int64) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	for _, gen := range gens {
		if gen <= 0 {
			continue
		}
		if err := s.dropGeneration(ctx, list, gen); err != nil {
			s.log.Warn("store: unable to delete an old version of a suppression list; checks ignore it", "list", list, "generation", gen, "error", err)
		}
	}
}

func (s *Store) dropGeneration(ctx context.Context, list string, gen int64) error {
	field := entryField(list, gen)
	for b := range memberBuckets {
		set := s.bucketKey(list, gen, b)
		var cursor uint64
		for {
			members, next, err := s.rdb.SScan(ctx, set, cursor, "", suppressBatch).Result()
			if err != nil {
				return err
			}
			if len(members) > 0 {
				pipe := s.rdb.Pipeline()
				for _, m := range members {
					pipe.HDel(ctx, s.memberKey(m), field)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					return err
				}
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
		if err := s.rdb.Unlink(ctx, set).Err(); err != nil {
			return err
		}
	}
	return nil
}
