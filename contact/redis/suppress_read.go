package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact"
)

// How long a process trusts its copy of {dnc}:lists. Past listsFresh a
// check has it refreshed in the background; past listsStale, when it could
// not be refreshed, checks fail: a list put in force since could be the one
// that forbids the call.
const (
	listsFresh = time.Second
	listsStale = 10 * time.Second
)

// lists is a copy of {dnc}:lists: for each list, the generations that count.
type lists struct {
	gens map[string][]string
	ver  string
	at   time.Time
}

// inForce reports whether generation gen of list counts.
func (l *lists) inForce(list, gen string) bool { return slices.Contains(l.gens[list], gen) }

// listsCache holds a Store's copy of {dnc}:lists.
type listsCache struct {
	copy       atomic.Pointer[lists]
	refreshing atomic.Bool
}

// lists returns the lists in force, from the process's copy when it is
// fresh enough; EUnavailable when they cannot be read and the copy is
// stale or missing.
func (s *Store) lists(ctx context.Context) (*lists, error) {
	cur := s.listCache.copy.Load()
	if cur != nil {
		age := time.Since(cur.at)
		if age < listsFresh {
			return cur, nil
		}
		if age < listsStale {
			if s.listCache.refreshing.CompareAndSwap(false, true) {
				go func() {
					defer s.listCache.refreshing.Store(false)
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					defer cancel()
					if _, err := s.refreshLists(ctx, cur); err != nil {
						s.log.Warn("store: unable to refresh the suppression lists in force", "error", err)
					}
				}()
			}
			return cur, nil
		}
	}
	return s.refreshLists(ctx, cur)
}

// refreshLists reads {dnc}:ver, and {dnc}:lists when it changed since cur.
// When the store checks its epoch, the epoch of the {dnc} slot is read with
// the version: lists gone with their node would leave every entry out of
// force.
func (s *Store) refreshLists(ctx context.Context, cur *lists) (*lists, error) {
	pipe := s.rdb.Pipeline()
	verCmd := pipe.Get(ctx, s.dncVerKey())
	epochs := s.newEpochReads()
	epochs.add(ctx, pipe, "dnc")
	_, _ = pipe.Exec(ctx) // each command's error is looked at below
	ver, err := verCmd.Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, unavailable("read the suppression lists in force", err)
	}
	if err := epochs.check(); err != nil {
		return nil, err
	}
	if cur != nil && cur.ver == ver {
		next := &lists{gens: cur.gens, ver: ver, at: time.Now()}
		s.listCache.copy.Store(next)
		return next, nil
	}
	all, err := s.rdb.HGetAll(ctx, s.dncListsKey()).Result()
	if err != nil {
		return nil, unavailable("read the suppression lists in force", err)
	}
	next := &lists{gens: map[string][]string{}, ver: ver, at: time.Now()}
	for list, v := range all {
		for i, item := range strings.Fields(v) {
			gen, _, _ := strings.Cut(item, ":")
			if i == 0 && gen == "0" {
				continue // a list created by an addition has no base yet
			}
			next.gens[list] = append(next.gens[list], gen)
		}
	}
	s.listCache.copy.Store(next)
	return next, nil
}

// generations returns the generations of list in force, newest first:
// ENotFound for a list that does not exist.
func (s *Store) generations(ctx context.Context, list string) ([]int64, error) {
	l, err := s.refreshLists(ctx, s.listCache.copy.Load())
	if err != nil {
		return nil, err
	}
	names, ok := l.gens[list]
	if !ok {
		return nil, contact.Errorf(contact.ENotFound, "there is no suppression list %q", list)
	}
	var gens []int64
	for _, g := range names {
		if n, err := parseGen(g); err == nil {
			gens = append(gens, n)
		}
	}
	slices.Sort(gens)
	slices.Reverse(gens)
	return gens, nil
}

// DeleteSuppression removes the entry of list that key names (its
// CustomerID, or its Phone in E.164 form), and reports whether the list held
// it. Errors: EInvalid, ENotFound for a list that does not exist,
// EUnavailable.
func (s *Store) DeleteSuppression(ctx context.Context, list string, key contact.Suppression) (bool, error) {
	if err := ValidListName(list); err != nil {
		return false, err
	}
	member, err := s.keyMember(key)
	if err != nil {
		return false, err
	}
	gens, err := s.generations(ctx, list)
	if err != nil {
		return false, err
	}
	fields := make([]string, len(gens))
	for i, g := range gens {
		fields[i] = entryField(list, g)
	}
	// One HDEL, in the member's slot, is what checks see; the member sets
	// only serve counts and deletions of whole generations.
	n, err := s.rdb.HDel(ctx, s.memberKey(member), fields...).Result()
	if err != nil {
		return false, unavailable("delete a suppression entry", err)
	}
	pipe := s.rdb.Pipeline()
	for _, g := range gens {
		pipe.SRem(ctx, s.bucketKey(list, g, bucketOf(member)), member)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		s.log.Warn("store: a deleted suppression entry is still in a member set; counts may be off", "list", list, "error", err)
	}
	return n > 0, nil
}

// GetSuppression returns the entry of list that key names (its CustomerID,
// or its Phone in E.164 form), expired or not: the one of the newest
// generation. Errors: EInvalid, ENotFound for a list or an entry that does
// not exist, EUnavailable.
func (s *Store) GetSuppression(ctx context.Context, list string, key contact.Suppression) (contact.Suppression, error) {
	if err := ValidListName(list); err != nil {
		return contact.Suppression{}, err
	}
	member, err := s.keyMember(key)
	if err != nil {
		return contact.Suppression{}, err
	}
	gens, err := s.generations(ctx, list)
	if err != nil {
		return contact.Suppression{}, err
	}
	fields := make([]string, len(gens))
	for i, g := range gens {
		fields[i] = entryField(list, g)
	}
	vals, err := s.rdb.HMGet(ctx, s.memberKey(member), fields...).Result()
	if err != nil {
		return contact.Suppression{}, unavailable("read a suppression entry", err)
	}
	for _, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		var e contact.Suppression
		if err := json.Unmarshal([]byte(str), &e); err != nil {
			return contact.Suppression{}, fmt.Errorf("store: undecodable suppression entry in list %s: %w", list, err)
		}
		return e, nil
	}
	return contact.Suppression{}, contact.Errorf(contact.ENotFound, "list %s has no such entry", list)
}

// SuppressionCount returns how many entries list holds, expired ones
// included; a member added again by an addition counts again until the
// next replace. Errors: EInvalid, ENotFound for a list that does not
// exist, EUnavailable.
func (s *Store) SuppressionCount(ctx context.Context, list string) (int, error) {
	if err := ValidListName(list); err != nil {
		return 0, err
	}
	gens, err := s.generations(ctx, list)
	if err != nil {
		return 0, err
	}
	pipe := s.rdb.Pipeline()
	var cmds []*goredis.IntCmd
	for _, g := range gens {
		for b := range memberBuckets {
			cmds = append(cmds, pipe.SCard(ctx, s.bucketKey(list, g, b)))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, unavailable("count a list", err)
	}
	n := 0
	for _, c := range cmds {
		n += int(c.Val())
	}
	return n, nil
}

// suppressionReads are the reads of a check batch's suppression entries,
// queued on its pipeline.
type suppressionReads struct {
	s       *Store
	lists   *lists
	err     error                           // the lists in force could not be read
	members [][]*goredis.MapStringStringCmd // per lookup: the customer, then its phones
}

// queueSuppressions queues on pipe the reads of every entry naming the
// customers of lookups and their phones.
func (s *Store) queueSuppressions(ctx context.Context, pipe goredis.Pipeliner, lookups []contact.Lookup) *suppressionReads {
	r := &suppressionReads{s: s, members: make([][]*goredis.MapStringStringCmd, len(lookups))}
	r.lists, r.err = s.lists(ctx)
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
	if r.err != nil {
		return nil, r.err
	}
	for _, cmd := range r.members[i] {
		if err := cmd.Err(); err != nil {
			return nil, contact.Unavailable("redis", fmt.Errorf("store: unable to read suppression entries: %w", err))
		}
	}
	var out []contact.Suppression
	for _, cmd := range r.members[i] {
		newest := map[string]int64{} // list → the generation of its entry in out
		at := map[string]int{}
		for field, v := range cmd.Val() {
			list, gen, ok := strings.Cut(field, ":")
			if !ok || !r.lists.inForce(list, gen) {
				continue // an old, failed or loading version
			}
			var e contact.Suppression
			if err := json.Unmarshal([]byte(v), &e); err != nil {
				return nil, r.s.undecodable(cmd.Args()[1].(string)+" "+strconv.Quote(field), err)
			}
			// A member added to a list again counts once: the newest entry.
			g, _ := parseGen(gen)
			if j, seen := at[list]; seen {
				if g > newest[list] {
					out[j], newest[list] = e, g
				}
				continue
			}
			at[list], newest[list] = len(out), g
			out = append(out, e)
		}
	}
	return out, nil
}
