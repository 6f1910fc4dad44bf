package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact"
)

// Follow-ups of open complaint cases (contact.FollowUp):
//
//	PREFIX{c:ID}:u         the customer's follow-ups (hash: case id → JSON)
//	PREFIX{u:TEAM:B}       the index: open cases not yet followed up, of one
//	                       team, in FollowUpShards shards by customer (sorted
//	                       set: score = opened at in ms, member = customer
//	                       0x1f case)
//	PREFIX{u:TEAM:B}:d     the follow-ups of the index (hash: member → JSON)
//	PREFIX{o:OWNER}        the same cases by owner (sorted set: score = opened
//	                       at, member = team 0x1f customer 0x1f case)
//	PREFIX{u}:teams        the teams that have an index (set)
//
// TEAM and OWNER are hashes of the names, so that any name makes a valid
// hash tag. A customer's follow-ups are derived (contact.FollowUps) from
// the customer's state and history, which do not depend on the order events
// arrive in, each time an event may change them: a complaint, or an
// outbound contact of a customer who has open cases. Then the index is
// brought in line: what the customer's hash held before is taken out of
// it, what it holds now is put in. A replay derives the same again.
//
// The customer's keys and the index are in different slots, so the two are
// not written atomically: a failed write fails the apply, which the
// consumer retries, and the next derivation mends what the failure left.

// FollowUpShards is how many keys the index of one team is spread over.
const FollowUpShards = 16

const (
	kindFollowUps = "u"
	sep           = "\x1f"
)

func nameTag(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:8])
}

func (s *Store) followKey(customerID string) string { return s.key(customerID, kindFollowUps) }
func shardTag(team string, b int) string            { return "u:" + nameTag(team) + ":" + strconv.Itoa(b) }
func (s *Store) teamsKey() string                   { return s.prefix + "{u}:teams" }
func (s *Store) shardKey(team string, b int) string { return s.prefix + "{" + shardTag(team, b) + "}" }
func ownerTag(owner string) string                  { return "o:" + nameTag(owner) }
func (s *Store) ownerKey(owner string) string       { return s.prefix + "{" + ownerTag(owner) + "}" }

func shardOf(customerID string) int {
	return int(crc32.ChecksumIEEE([]byte(customerID)) % FollowUpShards)
}

func indexMember(f *contact.FollowUp) string { return f.CustomerID + sep + f.CaseID }

// indexed reports whether f belongs in the index: no one followed it up.
func indexed(f *contact.FollowUp) bool { return f.FollowedUp == nil }

// queueFollowUps queues the read of a customer's follow-ups on pipe.
func (s *Store) queueFollowUps(ctx context.Context, pipe goredis.Pipeliner, customerID string) func() ([]contact.FollowUp, error) {
	cmd := pipe.HGetAll(ctx, s.followKey(customerID))
	return func() ([]contact.FollowUp, error) {
		if err := cmd.Err(); err != nil {
			return nil, contact.Unavailable("redis", fmt.Errorf("store: unable to read follow-ups: %w", err))
		}
		out := make([]contact.FollowUp, 0, len(cmd.Val()))
		for _, v := range cmd.Val() {
			var f contact.FollowUp
			if err := json.Unmarshal([]byte(v), &f); err != nil {
				return nil, s.undecodable(s.followKey(customerID), err)
			}
			out = append(out, f)
		}
		slices.SortFunc(out, func(a, b contact.FollowUp) int { return strings.Compare(a.CaseID, b.CaseID) })
		return out, nil
	}
}

// syncFollowUps derives the follow-ups of customers again and brings their
// hashes and the index in line. A customer whose stored values cannot be
// decoded is logged and left as it is: its checks fail closed anyway.
func (s *Store) syncFollowUps(ctx context.Context, customers []string) error {
	if len(customers) == 0 {
		return nil
	}
	now := s.now()
	type read struct {
		state func() (contact.State, error)
		hist  *goredis.ZSliceCmd
		old   func() ([]contact.FollowUp, error)
	}
	pipe := s.rdb.Pipeline()
	reads := make([]read, len(customers))
	for i, c := range customers {
		reads[i] = read{s.queueState(ctx, pipe, c, now, nil), pipe.ZRangeWithScores(ctx, s.key(c, kindHistory), 0, -1), s.queueFollowUps(ctx, pipe, c)}
	}
	cmds, _ := pipe.Exec(ctx)
	if err := firstError(cmds); err != nil {
		return contact.Unavailable("redis", fmt.Errorf("store: unable to read follow-ups: %w", err))
	}
	w := s.rdb.Pipeline()
	for i, c := range customers {
		st, err := reads[i].state()
		var events []contact.Event
		if err == nil {
			events, err = s.decodeHistory(c, reads[i].hist)
		}
		var old []contact.FollowUp
		if err == nil {
			old, err = reads[i].old()
		}
		if err != nil {
			s.log.Error("store: the follow-ups of a customer cannot be derived", "customer", c, "error", err)
			continue
		}
		s.queueFollowUpWrites(ctx, w, c, old, contact.FollowUps(c, &st, events))
	}
	if w.Len() == 0 {
		return nil
	}
	cmds, _ = w.Exec(ctx)
	if err := firstError(cmds); err != nil {
		return contact.Unavailable("redis", fmt.Errorf("store: unable to write follow-ups: %w", err))
	}
	return nil
}

// firstError returns the first error of cmds other than the absence of a key.
func firstError(cmds []goredis.Cmder) error {
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil && !errors.Is(err, goredis.Nil) {
			return err
		}
	}
	return nil
}

func (s *Store) decodeHistory(customerID string, cmd *goredis.ZSliceCmd) ([]contact.Event, error) {
	if err := cmd.Err(); err != nil {
		return nil, contact.Unavailable("redis", fmt.Errorf("store: unable to read a history: %w", err))
	}
	events := make([]contact.Event, 0, len(cmd.Val()))
	for _, z := range cmd.Val() {
		e, err := s.decodeMember(customerID, z)
		if err != nil {
			return nil, s.undecodable(s.key(customerID, kindHistory), err)
		}
		events = append(events, e)
	}
	return events, nil
}

// queueFollowUpWrites queues what turns a customer's follow-ups from old
// into want: each that changed leaves the index and enters it again.
func (s *Store) queueFollowUpWrites(ctx context.Context, w goredis.Pipeliner, customerID string, old, want []contact.FollowUp) {
	was := map[string][]byte{}
	for i := range old {
		b, _ := json.Marshal(&old[i])
		was[old[i].CaseID] = b
	}
	keep := map[string]bool{}
	for i := range want {
		f := &want[i]
		b, _ := json.Marshal(f)
		keep[f.CaseID] = true
		if prev, ok := was[f.CaseID]; ok && string(prev) == string(b) {
			continue
		}
		if prev, ok := was[f.CaseID]; ok {
			s.queueUnindex(ctx, w, prev)
		}
		w.HSet(ctx, s.followKey(customerID), f.CaseID, b)
		if indexed(f) {
			s.queueIndex(ctx, w, f, b)
		}
	}
	for caseID, prev := range was {
		if !keep[caseID] {
			s.queueUnindex(ctx, w, prev)
			w.HDel(ctx, s.followKey(customerID), caseID)
		}
	}
}

func (s *Store) queueIndex(ctx context.Context, w goredis.Pipeliner, f *contact.FollowUp, b []byte) {
	key, m := s.shardKey(f.Team, shardOf(f.CustomerID)), indexMember(f)
	score := float64(f.OpenedAt.UnixMilli())
	w.ZAdd(ctx, key, goredis.Z{Score: score, Member: m})
	w.HSet(ctx, key+":d", m, b)
	if f.Owner != "" {
		w.ZAdd(ctx, s.ownerKey(f.Owner), goredis.Z{Score: score, Member: f.Team + sep + m})
	}
	w.SAdd(ctx, s.teamsKey(), f.Team)
}

// queueUnindex takes the follow-up stored as prev out of the index.
func (s *Store) queueUnindex(ctx context.Context, w goredis.Pipeliner, prev []byte) {
	var f contact.FollowUp
	if json.Unmarshal(prev, &f) != nil {
		return
	}
	key, m := s.shardKey(f.Team, shardOf(f.CustomerID)), indexMember(&f)
	w.ZRem(ctx, key, m)
	w.HDel(ctx, key+":d", m)
	if f.Owner != "" {
		w.ZRem(ctx, s.ownerKey(f.Owner), f.Team+sep+m)
	}
}

// FollowUps returns a customer's follow-ups, by case id.
func (s *Store) FollowUps(ctx context.Context, customerID string) ([]contact.FollowUp, error) {
	pipe := s.rdb.Pipeline()
	epochs := s.newEpochReads()
	epochs.add(ctx, pipe, "c:"+customerID)
	read := s.queueFollowUps(ctx, pipe, customerID)
	_, _ = pipe.Exec(ctx)
	if err := epochs.check(); err != nil {
		return nil, err
	}
	return read()
}

// RebuildFollowUps derives the follow-ups of customers again, as applying
// their events does.
func (s *Store) RebuildFollowUps(ctx context.Context, customers []string) error {
	return s.syncFollowUps(ctx, customers)
}
