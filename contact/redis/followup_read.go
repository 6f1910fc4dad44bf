package redis

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact"
)

// MaxOwnerFollowUps bounds what OwnerFollowUps reads.
const MaxOwnerFollowUps = 1000

// FollowUpTeams returns the teams that have indexed follow-ups, or had.
func (s *Store) FollowUpTeams(ctx context.Context) ([]string, error) {
	pipe := s.rdb.Pipeline()
	epochs := s.newEpochReads()
	epochs.add(ctx, pipe, "u")
	read := pipe.SMembers(ctx, s.teamsKey())
	_, _ = pipe.Exec(ctx)
	if err := epochs.check(); err != nil {
		return nil, err
	}
	teams, err := read.Result()
	if err != nil {
		return nil, contact.Unavailable("redis", fmt.Errorf("store: unable to read the follow-up teams: %w", err))
	}
	slices.Sort(teams)
	return teams, nil
}

// IndexedFollowUps reads each range in two round trips for all of them: the
// members of every shard, then the follow-ups of those selected.
func (s *Store) IndexedFollowUps(ctx context.Context, ranges []contact.FollowUpRange) ([][]contact.FollowUp, error) {
	type shardRead struct{ ties, rest *goredis.ZSliceCmd }
	pipe := s.rdb.Pipeline()
	epochs := s.newEpochReads()
	reads := make([][FollowUpShards]shardRead, len(ranges))
	for i, r := range ranges {
		for b := range FollowUpShards {
			epochs.add(ctx, pipe, shardTag(r.Team, b))
		}
		lo, hi := scoreBound(r.From, "-inf"), scoreBound(r.To, "+inf")
		if r.After != nil {
			at := strconv.FormatInt(r.After.OpenedAt.UnixMilli(), 10)
			lo = "(" + at
			for b := range FollowUpShards {
				reads[i][b].ties = pipe.ZRangeByScoreWithScores(ctx, s.shardKey(r.Team, b), &goredis.ZRangeBy{Min: at, Max: at})
			}
		}
		for b := range FollowUpShards {
			reads[i][b].rest = pipe.ZRangeByScoreWithScores(ctx, s.shardKey(r.Team, b), &goredis.ZRangeBy{Min: lo, Max: hi, Count: int64(r.Limit)})
		}
	}
	cmds, _ := pipe.Exec(ctx)
	if err := epochs.check(); err != nil {
		return nil, err
	}
	if err := firstError(cmds); err != nil {
		return nil, contact.Unavailable("redis", fmt.Errorf("store: unable to read the follow-up index: %w", err))
	}
	picked := make([][]pick, len(ranges))
	for i, r := range ranges {
		for b := range FollowUpShards {
			for _, cmd := range []*goredis.ZSliceCmd{reads[i][b].ties, reads[i][b].rest} {
				if cmd == nil {
					continue
				}
				for _, z := range cmd.Val() {
					p := pick{tag: shardTag(r.Team, b), member: z.Member.(string), at: int64(z.Score)}
					if r.After == nil || p.after(r.After) {
						picked[i] = append(picked[i], p)
					}
				}
			}
		}
		slices.SortFunc(picked[i], comparePicks)
		picked[i] = picked[i][:min(len(picked[i]), r.Limit)]
	}
	return s.followUpDetails(ctx, picked)
}

// OwnerFollowUps reads the indexed follow-ups of an owner's cases, oldest
// opening first, at most MaxOwnerFollowUps.
func (s *Store) OwnerFollowUps(ctx context.Context, owner string) ([]contact.FollowUp, error) {
	pipe := s.rdb.Pipeline()
	epochs := s.newEpochReads()
	epochs.add(ctx, pipe, ownerTag(owner))
	read := pipe.ZRangeWithScores(ctx, s.ownerKey(owner), 0, MaxOwnerFollowUps-1)
	_, _ = pipe.Exec(ctx)
	if err := epochs.check(); err != nil {
		return nil, err
	}
	zs, err := read.Result()
	if err != nil {
		return nil, contact.Unavailable("redis", fmt.Errorf("store: unable to read an owner's follow-ups: %w", err))
	}
	picks := make([]pick, 0, len(zs))
	for _, z := range zs {
		team, m, ok := strings.Cut(z.Member.(string), sep)
		customer, _, ok2 := strings.Cut(m, sep)
		if !ok || !ok2 {
			return nil, s.undecodable(s.ownerKey(owner), errRecord)
		}
		picks = append(picks, pick{tag: shardTag(team, shardOf(customer)), member: m, at: int64(z.Score)})
	}
	out, err := s.followUpDetails(ctx, [][]pick{picks})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// CountFollowUps counts the indexed follow-ups of each range (Limit and
// After are not used), in one round trip.
func (s *Store) CountFollowUps(ctx context.Context, ranges []contact.FollowUpRange) ([]int64, error) {
	pipe := s.rdb.Pipeline()
	epochs := s.newEpochReads()
	cmds := make([][FollowUpShards]*goredis.IntCmd, len(ranges))
	for i, r := range ranges {
		for b := range FollowUpShards {
			epochs.add(ctx, pipe, shardTag(r.Team, b))
			cmds[i][b] = pipe.ZCount(ctx, s.shardKey(r.Team, b), scoreBound(r.From, "-inf"), scoreBound(r.To, "+inf"))
		}
	}
	all, _ := pipe.Exec(ctx)
	if err := epochs.check(); err != nil {
		return nil, err
	}
	if err := firstError(all); err != nil {
		return nil, contact.Unavailable("redis", fmt.Errorf("store: unable to count follow-ups: %w", err))
	}
	out := make([]int64, len(ranges))
	for i := range ranges {
		for b := range FollowUpShards {
			out[i] += cmds[i][b].Val()
		}
	}
	return out, nil
}

// pick is a member of the index chosen for a page, and the tag of its shard.
type pick struct {
	tag, member string
	at          int64
}

func (p pick) after(f *contact.FollowUp) bool {
	if at := f.OpenedAt.UnixMilli(); p.at != at {
		return p.at > at
	}
	return p.member > indexMember(f)
}

func comparePicks(a, b pick) int {
	return cmp.Or(cmp.Compare(a.at, b.at), strings.Compare(a.member, b.member))
}

// followUpDetails reads the follow-ups of picks, in their order. One that
// left the index meanwhile is left out.
func (s *Store) followUpDetails(ctx context.Context, picks [][]pick) ([][]contact.FollowUp, error) {
	pipe := s.rdb.Pipeline()
	epochs := s.newEpochReads()
	cmds := make([][]*goredis.StringCmd, len(picks))
	for i, ps := range picks {
		for _, p := range ps {
			epochs.add(ctx, pipe, p.tag)
			cmds[i] = append(cmds[i], pipe.HGet(ctx, s.prefix+"{"+p.tag+"}:d", p.member))
		}
	}
	all, _ := pipe.Exec(ctx)
	if err := epochs.check(); err != nil {
		return nil, err
	}
	if err := firstError(all); err != nil {
		return nil, contact.Unavailable("redis", fmt.Errorf("store: unable to read follow-ups: %w", err))
	}
	out := make([][]contact.FollowUp, len(picks))
	for i := range picks {
		for j, cmd := range cmds[i] {
			if cmd.Err() != nil {
				continue // gone since the first read
			}
			var f contact.FollowUp
			if err := json.Unmarshal([]byte(cmd.Val()), &f); err != nil {
				return nil, s.undecodable(s.prefix+"{"+picks[i][j].tag+"}:d", err)
			}
			out[i] = append(out[i], f)
		}
	}
	return out, nil
}

func scoreBound(t time.Time, inf string) string {
	if t.IsZero() {
		return inf
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}
