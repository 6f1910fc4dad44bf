// Package redis keeps the collision insight's counters in Redis.
//
// The counters of one partition of the decisions topic share the hash tag
// {i:TOPIC:PARTITION}, so that Redis Cluster keeps them in one slot with
// that partition's offset guard, and one script counts a batch of the
// partition atomically:
//
//	PREFIX{i:TOPIC:P}:offset               the last offset counted (string, no TTL)
//	PREFIX{i:TOPIC:P}:FAMILY:YYYYMMDD:h    the day's counters by hour (hash: HH 0x1f field → n)
//	PREFIX{i:TOPIC:P}:FAMILY:YYYYMMDD:d    the day's totals (hash: field → n)
//	PREFIX{i:TOPIC}:partitions             the partitions that have counters (set)
//
// Counting is exact under at-least-once delivery: a message at or below the
// guard's offset was counted already and is skipped, in the same script
// that adds the others and moves the guard. Each partition is written by the
// one consumer that owns it, so the keys spread over as many slots as the
// topic has partitions, and no key is shared by the whole fleet.
//
// A day's keys expire Retention after the end of the day. The day totals
// let a read of 90 days take 90 small hashes per partition rather than
// 2,160 hours.
package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

// DefaultPrefix is Options.Prefix's default, that of the timeline store.
const DefaultPrefix = "outreach:"

// Options configures Counters.
type Options struct {
	Prefix    string        // prepended to every key; default "outreach:"
	Topic     string        // the decisions topic, whose offsets the guards hold; required
	Retention time.Duration // how long after its day a counter is kept; default dedupe.InsightRetention
	Now       func() time.Time
}

// Counters keeps the insight counters of one topic. It is safe for
// concurrent use.
type Counters struct {
	rdb        goredis.UniversalClient
	prefix     string
	topic      string
	retention  time.Duration
	now        func() time.Time
	registered sync.Map // partitions added to the partitions set by this process
}

// New returns Counters over rdb, a Client or a ClusterClient.
func New(rdb goredis.UniversalClient, o Options) *Counters {
	c := &Counters{rdb: rdb, prefix: o.Prefix, topic: o.Topic, retention: o.Retention, now: o.Now}
	if c.prefix == "" {
		c.prefix = DefaultPrefix
	}
	if c.retention <= 0 {
		c.retention = dedupe.InsightRetention
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

func (c *Counters) tag(partition int) string {
	return c.prefix + "{i:" + c.topic + ":" + strconv.Itoa(partition) + "}:"
}

func (c *Counters) partitionsKey() string { return c.prefix + "{i:" + c.topic + "}:partitions" }

func (c *Counters) dayKey(partition int, family string, day time.Time, hourly bool) string {
	kind := ":d"
	if hourly {
		kind = ":h"
	}
	return c.tag(partition) + family + ":" + day.Format("20060102") + kind
}

// countScript adds a batch of one partition's tallies, skipping those at
// or below the guard's offset, then moves the guard to the last one.
// Counters are summed in the script first, so that one HINCRBY adds each
// distinct counter of the batch.
//
// KEYS: the guard, then per day of the batch and per family its hourly
// and its day hash. ARGV: the number of days, the number of families, the
// expiry of each day (unix ms), then per tally: offset, day (1-based),
// hour ("00"-"23"), the number of counters, and per counter its family
// (0-based) and field. It returns how many tallies were skipped.
var countScript = goredis.NewScript(`
local ndays, nfam = tonumber(ARGV[1]), tonumber(ARGV[2])
local guard = tonumber(redis.call('GET', KEYS[1]) or '-1')
local last, lastArg, skipped = guard, nil, 0
local sums, order, expiry = {}, {}, {}
local function bump(k, f)
  local id = k .. '\0' .. f
  if sums[id] then
    sums[id] = sums[id] + 1
  else
    sums[id] = 1
    order[#order + 1] = {k, f, id}
  end
end
local a = 3 + ndays
while a <= #ARGV do
  local off, day, hh, n = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), ARGV[a + 2], tonumber(ARGV[a + 3])
  a = a + 4
  if off > last then
    last, lastArg = off, ARGV[a - 4]
    local base = 2 + (day - 1) * 2 * nfam
    for i = 0, n - 1 do
      local k = base + 2 * tonumber(ARGV[a + 2 * i])
      local f = ARGV[a + 2 * i + 1]
      bump(k, hh .. '\31' .. f)
      bump(k + 1, f)
      expiry[k], expiry[k + 1] = ARGV[2 + day], ARGV[2 + day]
    end
  else
    skipped = skipped + 1
  end
  a = a + 2 * n
end
for _, o in ipairs(order) do
  redis.call('HINCRBY', KEYS[o[1]], o[2], sums[o[3]])
end
for k, at in pairs(expiry) do
  redis.call('PEXPIREAT', KEYS[k], at)
end
if lastArg then redis.call('SET', KEYS[1], lastArg) end
return skipped`)

// LoadScripts loads the script into Redis (on every master of a cluster),
// so that pipelines can call it by hash.
func (c *Counters) LoadScripts(ctx context.Context) error {
	load := func(ctx context.Context, cl *goredis.Client) error { return countScript.Load(ctx, cl).Err() }
	var err error
	switch cl := c.rdb.(type) {
	case *goredis.ClusterClient:
		err = cl.ForEachMaster(ctx, load)
	case *goredis.Client:
		err = load(ctx, cl)
	default:
		err = errors.New("unknown client type")
	}
	if err != nil {
		return contact.Unavailable("redis", fmt.Errorf("insights: unable to load scripts: %w", err))
	}
	return nil
}

// Count adds the tallies of each partition, given in offset (Seq) order,
// exactly once: a tally at or below the last offset counted for its
// partition was counted before and is skipped. Each partition's tallies
// are counted atomically, all partitions in one round trip. It returns how
// many tallies were skipped, and an EUnavailable error when Redis fails;
// counting the same tallies again is then safe. Tallies dated before the
// retention move the guard and count nothing.
func (c *Counters) Count(ctx context.Context, tallies map[int][]dedupe.Tally) (skipped int, err error) {
	pipe := c.rdb.Pipeline()
	var cmds []*goredis.Cmd
	for partition, ts := range tallies {
		if len(ts) == 0 {
			continue
		}
		if _, ok := c.registered.Load(partition); !ok {
			pipe.SAdd(ctx, c.partitionsKey(), partition)
		}
		keys, args := c.countArgs(partition, ts)
		cmds = append(cmds, countScript.EvalSha(ctx, pipe, keys, args...))
	}
	if len(cmds) == 0 {
		return 0, nil
	}
	_, err = pipe.Exec(ctx)
	if isNoScript(err) {
		// Redis lost its scripts (a restart): load them and go again.
		if err := c.LoadScripts(ctx); err != nil {
			return 0, err
		}
		return c.Count(ctx, tallies)
	}
	if err != nil {
		return 0, contact.Unavailable("redis", fmt.Errorf("insights: unable to count %d partitions: %w", len(cmds), err))
	}
	for partition, ts := range tallies {
		if len(ts) > 0 {
			c.registered.Store(partition, true)
		}
	}
	for _, cmd := range cmds {
		n, _ := cmd.Int()
		skipped += n
	}
	return skipped, nil
}

// countArgs builds the keys and arguments of countScript for one
// partition's tallies.
func (c *Counters) countArgs(partition int, ts []dedupe.Tally) ([]string, []any) {
	oldest := c.now().Add(-c.retention).UTC().Truncate(24 * time.Hour)
	var days []time.Time
	dayOf := map[time.Time]int{}
	body := make([]any, 0, len(ts)*24)
	for _, t := range ts {
		day := t.Hour.UTC().Truncate(24 * time.Hour)
		counters := t.Counters
		if day.Before(oldest) {
			counters = nil // gone by now: only its offset counts
		}
		d, ok := dayOf[day]
		if !ok && len(counters) > 0 {
			days = append(days, day)
			d = len(days)
			dayOf[day] = d
		}
		body = append(body, t.Seq, d, t.Hour.UTC().Format("15"), len(counters))
		for _, ct := range counters {
			body = append(body, slices.Index(dedupe.InsightFamilies, ct.Family), ct.Field)
		}
	}
	keys := make([]string, 0, 1+2*len(days)*len(dedupe.InsightFamilies))
	keys = append(keys, c.tag(partition)+"offset")
	args := make([]any, 0, 2+len(days)+len(body))
	args = append(args, len(days), len(dedupe.InsightFamilies))
	for _, day := range days {
		for _, f := range dedupe.InsightFamilies {
			keys = append(keys, c.dayKey(partition, f, day, true), c.dayKey(partition, f, day, false))
		}
		args = append(args, day.Add(24*time.Hour+c.retention).UnixMilli())
	}
	return keys, append(args, body...)
}

// Read returns the counters of family on each of days, summed over the
// partitions: with InsightDay.Hourly one cell per hour and field, else one
// per day and field. EUnavailable when Redis cannot be read or holds what
// is not a counter.
func (c *Counters) Read(ctx context.Context, family string, days []dedupe.InsightDay) ([]dedupe.InsightCell, error) {
	members, err := c.rdb.SMembers(ctx, c.partitionsKey()).Result()
	if err != nil {
		return nil, contact.Unavailable("redis", fmt.Errorf("insights: unable to read the partitions: %w", err))
	}
	pipe := c.rdb.Pipeline()
	type read struct {
		day dedupe.InsightDay
		cmd *goredis.MapStringStringCmd
	}
	var reads []read
	for _, m := range members {
		partition, err := strconv.Atoi(m)
		if err != nil {
			return nil, c.corrupt(c.partitionsKey(), m)
		}
		for _, d := range days {
			reads = append(reads, read{d, pipe.HGetAll(ctx, c.dayKey(partition, family, d.Day, d.Hourly))})
		}
	}
	if len(reads) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, contact.Unavailable("redis", fmt.Errorf("insights: unable to read the counters: %w", err))
		}
	}
	type cellKey struct {
		at    time.Time
		field string
	}
	sums := map[cellKey]int64{}
	for _, r := range reads {
		for field, v := range r.cmd.Val() {
			n, err := strconv.ParseInt(v, 10, 64)
			at := r.day.Day
			if r.day.Hourly {
				hh, rest, ok := strings.Cut(field, "\x1f")
				h, herr := strconv.Atoi(hh)
				if !ok || herr != nil || h < 0 || h > 23 {
					return nil, c.corrupt(r.cmd.Args()[1].(string), field)
				}
				at, field = at.Add(time.Duration(h)*time.Hour), rest
			}
			if err != nil {
				return nil, c.corrupt(r.cmd.Args()[1].(string), field)
			}
			sums[cellKey{at, field}] += n
		}
	}
	cells := make([]dedupe.InsightCell, 0, len(sums))
	for k, n := range sums {
		cells = append(cells, dedupe.InsightCell{At: k.at, Field: k.field, N: n})
	}
	return cells, nil
}

func (c *Counters) corrupt(key, what string) error {
	return &contact.Error{Code: contact.EUnavailable, Message: "the insight counters hold a value that cannot be read",
		Err: fmt.Errorf("insights: %s holds %q", key, what)}
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
