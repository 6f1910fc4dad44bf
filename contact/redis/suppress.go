package redis

// Suppression (do-not-call) lists.
//
// An entry names a customer id or a phone number (E.164). The check must
// find every entry naming a customer or a number in one round trip, so
// entries are kept by member, not by list:
//
//	PREFIX{c:ID}:dnc       hash: "LIST:GEN" → the entry's JSON (contact.Suppression)
//	PREFIX{p:E164}:dnc     hash: the same, for a phone number
//	PREFIX{dnc}:lists      hash: LIST → the generation in force
//	PREFIX{l:LIST}:meta    hash: next → the last generation handed out;
//	                       loading:GEN → when a replace last wrote (unix ms)
//	PREFIX{l:LIST}:m:GEN   set: the members ("c:ID", "p:E164") of a generation
//	PREFIX{l:LIST}:add:RND hash: member → entry JSON, an addition being staged
//
// A customer's entries share its hash tag {c:ID}, so the check reads them in
// the same slot as its timeline. A phone's entries are another slot, which a
// ClusterClient pipelines in parallel. A check reads {dnc}:lists once per
// batch, and counts an entry only if its generation is the one in force.
//
// A replace writes a new generation, which no check sees, in pipelined
// batches, then puts it in force with one HSET: checks see the old list or
// the new one, never a mix, and a replace that fails (a bad line, a client
// that goes away) changes nothing. The old generation is then deleted, in
// batches, through its member set. An addition is staged in a hash of the
// list's slot and copied into the generation in force (and into any replace
// loading at the time) only once the whole upload has been read, so that it
// too is all or nothing. No command is O(list size), so a load of a million
// entries never holds Redis for more than one batch.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
	// staleLoad is how long a replace may go without writing before another
	// replace of its list takes it for abandoned (its process died) and
	// deletes what it wrote.
	staleLoad = 10 * time.Minute
	// stageTTL bounds how long a staged addition outlives a process that
	// died while reading it.
	stageTTL = time.Hour
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

func (s *Store) listKey(list, kind string) string { return s.prefix + "{l:" + list + "}:" + kind }

func (s *Store) genKey(list string, gen int64) string {
	return s.listKey(list, "m:"+strconv.FormatInt(gen, 10))
}

// memberKey is the hash of every entry naming member, "c:ID" or "p:E164":
// the customer's own hash tag, so that it sits in the customer's slot.
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
// E.164 form (see NormalizePhone); List is set to list, and a later entry for
// the same member wins. It returns how many entries it wrote.
//
// Checks see the old list until the whole sequence has been read and
// written, then the new one. If the sequence yields an error, the error is
// returned as is and the list is left unchanged; so it is if ctx ends or
// Redis fails first. Of two replaces of one list at once, the one that
// started last wins. Errors: EInvalid for a bad list name or entry,
// EUnavailable when Redis is down, and whatever the sequence yields.
func (s *Store) ReplaceSuppressions(ctx context.Context, list string, entries iter.Seq2[contact.Suppression, error]) (int, error) {
	if err := ValidListName(list); err != nil {
		return 0, err
	}
	meta := s.listKey(list, "meta")
	gen, err := s.rdb.HIncrBy(ctx, meta, "next", 1).Result()
	if err != nil {
		return 0, unavailable("start a list replace", err)
	}
	loading := loadingField(gen)
	if err := s.rdb.HSet(ctx, meta, loading, nowMillis(time.Now())).Err(); err != nil {
		return 0, unavailable("start a list replace", err)
	}
	w := &genWriter{s: s, list: list, gens: []int64{gen}, heartbeat: loading}
	abandon := func() {
		s.rdb.HDel(context.WithoutCancel(ctx), meta, loading)
		s.dropGenerations(list, []int64{gen})
	}
	n, err := w.writeAll(ctx, entries)
	if err != nil {
		abandon()
		return 0, err
	}
	prev, err := commitScript.Run(ctx, s.rdb, []string{s.dncListsKey()}, list, gen).Int64()
	if err != nil {
		abandon()
		return 0, unavailable("put a list in force", err)
	}
	drop := []int64{prev}
	if prev < 0 { // a replace that started later is already in force
		drop = []int64{gen}
	}
	if stale, err := s.staleLoads(ctx, list); err == nil {
		drop = append(drop, stale...)
	}
	s.rdb.HDel(context.WithoutCancel(ctx), meta, loading)
	s.dropGenerations(list, drop)
	return n, nil
}

// commitScript puts generation ARGV[2] of list ARGV[1] in force, unless a
// later one already is. It returns the generation it replaced (0 for none),
// or -1 if it did not.
var commitScript = goredis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local gen = tonumber(ARGV[2])
if gen > cur then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return cur
end
return -1`)

// AddSuppressions adds the entries of the sequence to list, creating the
// list if need be, and returns how many distinct members it added or
// updated. Entries are as for ReplaceSuppressions. Nothing is added unless
// the whole sequence is read without error; the error is then returned as
// is. Additions made while a replace of the list is loading go into the new
// version too. Errors: EInvalid, EUnavailable, and whatever the sequence
// yields.
func (s *Store) AddSuppressions(ctx context.Context, list string, entries iter.Seq2[contact.Suppression, error]) (int, error) {
	if err := ValidListName(list); err != nil {
		return 0, err
	}
	rnd := make([]byte, 8)
	rand.Read(rnd)
	stage := s.listKey(list, "add:"+hex.EncodeToString(rnd))
	defer s.rdb.Unlink(context.WithoutCancel(ctx), stage)

	pipe := s.rdb.Pipeline()
	flush := func() error {
		if pipe.Len() == 0 {
			return nil
		}
		pipe.PExpire(ctx, stage, stageTTL)
		if _, err := pipe.Exec(ctx); err != nil {
			return unavailable("stage suppression entries", err)
		}
		return nil
	}
	for e, err := range entries {
		if err != nil {
			return 0, err
		}
		member, data, err := entryMember(list, e)
		if err != nil {
			return 0, err
		}
		pipe.HSet(ctx, stage, member, data)
		if pipe.Len() >= suppressBatch {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}

	// Every entry is read and valid: copy them into the list.
	if _, err := s.inForce(ctx, list, true); err != nil {
		return 0, err
	}
	staged, err := s.rdb.HLen(ctx, stage).Result()
	if err != nil {
		return 0, unavailable("count staged suppression entries", err)
	}
	var cursor uint64
	for {
		kvs, next, err := s.rdb.HScan(ctx, stage, cursor, "", suppressBatch).Result()
		if err != nil {
			return 0, unavailable("read staged suppression entries", err)
		}
		// Read per batch, so that a replace that starts meanwhile gets
		// the rest of the additions.
		gens, err := s.targetGenerations(ctx, list)
		if err != nil {
			return 0, err
		}
		w := &genWriter{s: s, list: list, gens: gens}
		for i := 0; i+1 < len(kvs); i += 2 {
			w.add(ctx, kvs[i], kvs[i+1])
		}
		if err := w.flush(ctx); err != nil {
			return 0, err
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	return int(staged), nil
}

// genWriter writes entries of one list into generations, in pipelined
// batches.
type genWriter struct {
	s         *Store
	list      string
	gens      []int64
	heartbeat string // the meta field a replace refreshes with each batch
	pipe      goredis.Pipeliner
	members   []any
}

func (w *genWriter) add(ctx context.Context, member string, data any) {
	if w.pipe == nil {
		w.pipe = w.s.rdb.Pipeline()
	}
	key := w.s.memberKey(member)
	for _, g := range w.gens {
		w.pipe.HSet(ctx, key, entryField(w.list, g), data)
	}
	w.members = append(w.members, member)
}

func (w *genWriter) flush(ctx context.Context) error {
	if len(w.members) == 0 {
		return nil
	}
	for _, g := range w.gens {
		w.pipe.SAdd(ctx, w.s.genKey(w.list, g), w.members...)
	}
	if w.heartbeat != "" {
		w.pipe.HSet(ctx, w.s.listKey(w.list, "meta"), w.heartbeat, nowMillis(time.Now()))
	}
	_, err := w.pipe.Exec(ctx)
	w.members = w.members[:0]
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
		if len(w.members) >= suppressBatch {
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

// inForce returns the generation of list in force. With create, a list that
// does not exist is created empty; without, it is an ENotFound error.
func (s *Store) inForce(ctx context.Context, list string, create bool) (int64, error) {
	v, err := s.rdb.HGet(ctx, s.dncListsKey(), list).Result()
	if errors.Is(err, goredis.Nil) {
		if !create {
			return 0, contact.Errorf(contact.ENotFound, "there is no suppression list %q", list)
		}
		gen, err := s.rdb.HIncrBy(ctx, s.listKey(list, "meta"), "next", 1).Result()
		if err != nil {
			return 0, unavailable("create a list", err)
		}
		if err := s.rdb.HSetNX(ctx, s.dncListsKey(), list, gen).Err(); err != nil {
			return 0, unavailable("create a list", err)
		}
		return s.inForce(ctx, list, false)
	}
	if err != nil {
		return 0, unavailable("read a list", err)
	}
	gen, err := parseGen(v)
	if err != nil {
		return 0, fmt.Errorf("store: list %s has the generation %q: %w", list, v, err)
	}
	return gen, nil
}

// targetGenerations returns the generation of list in force and those of
// the replaces loading, which a change to the list must reach.
func (s *Store) targetGenerations(ctx context.Context, list string) ([]int64, error) {
	pipe := s.rdb.Pipeline()
	cur := pipe.HGet(ctx, s.dncListsKey(), list)
	meta := pipe.HGetAll(ctx, s.listKey(list, "meta"))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, unavailable("read a list", err)
	}
	var gens []int64
	if g, err := parseGen(cur.Val()); err == nil {
		gens = append(gens, g)
	} else {
		return nil, contact.Errorf(contact.ENotFound, "there is no suppression list %q", list)
	}
	for f := range meta.Val() {
		if v, ok := strings.CutPrefix(f, "loading:"); ok {
			if g, err := parseGen(v); err == nil {
				gens = append(gens, g)
			}
		}
	}
	return gens, nil
}

// staleLoads returns the generations of replaces of list that stopped
// writing more than staleLoad ago, and forgets them.
func (s *Store) staleLoads(ctx context.Context, list string) ([]int64, error) {
	meta := s.listKey(list, "meta")
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
	set := s.genKey(list, gen)
	field := entryField(list, gen)
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
	return s.rdb.Unlink(ctx, set).Err()
}

// DeleteSuppression removes the entry of list that key names (its
// CustomerID, or its Phone, which NormalizePhone reads), and reports
// whether the list held it. Errors: EInvalid, ENotFound for a list that does
// not exist, EUnavailable.
func (s *Store) DeleteSuppression(ctx context.Context, list string, key contact.Suppression) (bool, error) {
	if err := ValidListName(list); err != nil {
		return false, err
	}
	member, err := s.keyMember(key)
	if err != nil {
		return false, err
	}
	gens, err := s.targetGenerations(ctx, list)
	if err != nil {
		return false, err
	}
	pipe := s.rdb.Pipeline()
	dels := make([]*goredis.IntCmd, len(gens))
	for i, g := range gens {
		dels[i] = pipe.HDel(ctx, s.memberKey(member), entryField(list, g))
		pipe.SRem(ctx, s.genKey(list, g), member)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return false, unavailable("delete a suppression entry", err)
	}
	return dels[0].Val() == 1, nil
}

// GetSuppression returns the entry of list that key names (its CustomerID,
// or its Phone, which NormalizePhone reads), expired or not. Errors:
// EInvalid, ENotFound for a list or an entry that does not exist,
// EUnavailable.
func (s *Store) GetSuppression(ctx context.Context, list string, key contact.Suppression) (contact.Suppression, error) {
	if err := ValidListName(list); err != nil {
		return contact.Suppression{}, err
	}
	member, err := s.keyMember(key)
	if err != nil {
		return contact.Suppression{}, err
	}
	gen, err := s.inForce(ctx, list, false)
	if err != nil {
		return contact.Suppression{}, err
	}
	v, err := s.rdb.HGet(ctx, s.memberKey(member), entryField(list, gen)).Result()
	if errors.Is(err, goredis.Nil) {
		return contact.Suppression{}, contact.Errorf(contact.ENotFound, "list %s has no such entry", list)
	}
	if err != nil {
		return contact.Suppression{}, unavailable("read a suppression entry", err)
	}
	var e contact.Suppression
	if err := json.Unmarshal([]byte(v), &e); err != nil {
		return contact.Suppression{}, fmt.Errorf("store: undecodable suppression entry in list %s: %w", list, err)
	}
	return e, nil
}

// SuppressionCount returns how many entries list holds, expired ones
// included. Errors: EInvalid, ENotFound for a list that does not exist,
// EUnavailable.
func (s *Store) SuppressionCount(ctx context.Context, list string) (int, error) {
	if err := ValidListName(list); err != nil {
		return 0, err
	}
	gen, err := s.inForce(ctx, list, false)
	if err != nil {
		return 0, err
	}
	n, err := s.rdb.SCard(ctx, s.genKey(list, gen)).Result()
	if err != nil {
		return 0, unavailable("count a list", err)
	}
	return int(n), nil
}

// suppressionReads are the reads of a check batch's suppression entries,
// queued on its pipeline.
type suppressionReads struct {
	s       *Store
	lists   *goredis.MapStringStringCmd
	members [][]*goredis.MapStringStringCmd // per lookup: the customer, then its phones
}

// queueSuppressions queues on pipe the reads of every entry naming the
// customers of lookups and their phones.
func (s *Store) queueSuppressions(ctx context.Context, pipe goredis.Pipeliner, lookups []contact.Lookup) *suppressionReads {
	r := &suppressionReads{
		s:       s,
		lists:   pipe.HGetAll(ctx, s.dncListsKey()),
		members: make([][]*goredis.MapStringStringCmd, len(lookups)),
	}
	for i := range lookups {
		cmds := make([]*goredis.MapStringStringCmd, 0, 1+len(lookups[i].Phones))
		cmds = append(cmds, pipe.HGetAll(ctx, s.memberKey(customerMember(lookups[i].CustomerID))))
		for _, p := range lookups[i].Phones {
			cmds = append(cmds, pipe.HGetAll(ctx, s.memberKey(phoneMember(p))))
		}
		r.members[i] = cmds
	}
	return r
}

// hits returns the entries in force that name lookup i, once the pipeline
// has run. Any failed read, and any entry that cannot be decoded, is an
// EUnavailable error: an unread entry could be the one that forbids the
// call.
func (r *suppressionReads) hits(i int) ([]contact.Suppression, error) {
	for _, cmd := range append([]*goredis.MapStringStringCmd{r.lists}, r.members[i]...) {
		if err := cmd.Err(); err != nil {
			return nil, contact.Unavailable("redis", fmt.Errorf("store: unable to read suppression entries: %w", err))
		}
	}
	inForce := r.lists.Val()
	if len(inForce) == 0 {
		return nil, nil
	}
	var out []contact.Suppression
	for _, cmd := range r.members[i] {
		for field, v := range cmd.Val() {
			list, gen, ok := strings.Cut(field, ":")
			if !ok || inForce[list] != gen {
				continue // an old, failed or loading version
			}
			var e contact.Suppression
			if err := json.Unmarshal([]byte(v), &e); err != nil {
				return nil, r.s.undecodable(cmd.Args()[1].(string)+" "+strconv.Quote(field), err)
			}
			out = append(out, e)
		}
	}
	return out, nil
}
