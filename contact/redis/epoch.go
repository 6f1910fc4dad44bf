package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact"
)

// The store epoch notices a Redis that came back empty.
//
// Every one of the 16,384 hash slots of Redis Cluster holds an epoch key,
// PREFIX{e:N}:epoch, whose tag e:N hashes to that slot. A check reads the
// epoch keys of every slot it reads, in the same round trip: its customer's,
// those of its phones' suppression entries, and (with the lists in force)
// the {dnc} slot's. If a node restarted without its data, the keys of its
// slots are gone, and so are its customers' opt-outs, complaints, claims and
// suppression entries; the check then answers unavailable rather than
// allowed. On a single Redis all the
// keys live on one server and vanish together.
//
// The keys are written when the store is first used, and again when an
// operator acknowledges a reset or a replay has rebuilt the store.

// ErrStoreReset is the cause of the EUnavailable error of a check whose
// slot has lost its epoch: the store was reset and its data is gone. It is
// contact.ErrStoreReset.
var ErrStoreReset = contact.ErrStoreReset

// resetError is the error of a check, or of readiness, when the store was
// reset.
func resetError() error {
	return &contact.Error{Code: contact.EUnavailable, Message: "the store was reset", Err: ErrStoreReset}
}

const slots = 16384

// EpochState says what the epoch keys of a store tell.
type EpochState int

const (
	EpochOK    EpochState = iota // every slot has the store's epoch
	EpochFresh                   // no slot has an epoch: a store never used, or wholly reset
	EpochReset                   // some slots lost their epoch, or hold another: data is gone
)

func (s EpochState) String() string {
	return [...]string{"ok", "fresh", "reset"}[s]
}

// slotTags holds, for every slot, a hash tag that maps to it.
var slotTags = sync.OnceValue(func() *[slots]string {
	var tags [slots]string
	found := 0
	for n := 0; found < slots; n++ {
		tag := "e:" + strconv.Itoa(n)
		if sl := keySlot(tag); tags[sl] == "" {
			tags[sl] = tag
			found++
		}
	}
	return &tags
})

// keySlot is the Redis Cluster slot of a hash tag's content: CRC16-XMODEM
// modulo 16384.
func keySlot(tag string) int {
	var crc uint16
	for i := 0; i < len(tag); i++ {
		crc ^= uint16(tag[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % slots
}

// EpochTag returns the hash tag of the epoch key in the slot of a
// customer's keys; tools and tests use it to find that key.
func EpochTag(customerID string) string { return slotTags()[keySlot("c:"+customerID)] }

func (s *Store) epochKey(slot int) string { return s.prefix + "{" + slotTags()[slot] + "}:epoch" }

// epochReads reads, in a pipeline, the epoch keys of the slots that a read
// meets, each once, when the store checks its epoch: a slot that lost its
// epoch lost its data too, and an empty answer from it would be a false one.
type epochReads struct {
	s     *Store
	slots []int
	cmds  []*goredis.StringCmd
}

func (s *Store) newEpochReads() *epochReads { return &epochReads{s: s} }

// add queues the read of the epoch of the slot of a hash tag's keys.
func (e *epochReads) add(ctx context.Context, pipe goredis.Pipeliner, tag string) {
	if slot := keySlot(tag); e.s.epoch && !slices.Contains(e.slots, slot) {
		e.slots = append(e.slots, slot)
		e.cmds = append(e.cmds, pipe.Get(ctx, e.s.epochKey(slot)))
	}
}

// check returns the error of the first slot that lost its epoch, once the
// pipeline has run.
func (e *epochReads) check() error { return e.s.checkEpoch(e.cmds...) }

// Epoch reads every epoch key and says what they tell, with the epoch in
// force (empty when fresh). It reads 16,384 keys: it is for start-up and
// repairs, not for each check. EUnavailable when Redis cannot be read.
func (s *Store) Epoch(ctx context.Context) (EpochState, string, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*goredis.StringCmd, slots)
	for i := range cmds {
		cmds[i] = pipe.Get(ctx, s.epochKey(i))
	}
	_, _ = pipe.Exec(ctx)
	seen := map[string]int{}
	missing := 0
	for _, c := range cmds {
		v, err := c.Result()
		switch {
		case errors.Is(err, goredis.Nil):
			missing++
		case err != nil:
			return 0, "", contact.Unavailable("redis", fmt.Errorf("store: unable to read the epoch: %w", err))
		default:
			seen[v]++
		}
	}
	switch {
	case missing == slots:
		return EpochFresh, "", nil
	case missing > 0 || len(seen) > 1:
		return EpochReset, "", nil
	}
	for v := range seen {
		return EpochOK, v, nil
	}
	return EpochFresh, "", nil
}

// NewEpoch writes a new epoch into every slot, replacing what is there: the
// store is declared whole. Use it on a fresh store, after a replay, or when
// an operator accepts the loss of a reset. It returns the new epoch.
func (s *Store) NewEpoch(ctx context.Context) (string, error) {
	b := make([]byte, 8)
	rand.Read(b)
	epoch := hex.EncodeToString(b)
	pipe := s.rdb.Pipeline()
	for i := range slots {
		pipe.Set(ctx, s.epochKey(i), epoch, 0)
		if pipe.Len() >= 2048 {
			if _, err := pipe.Exec(ctx); err != nil {
				return "", contact.Unavailable("redis", fmt.Errorf("store: unable to write the epoch: %w", err))
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return "", contact.Unavailable("redis", fmt.Errorf("store: unable to write the epoch: %w", err))
	}
	s.reset.Store(false)
	return epoch, nil
}

// EpochSample checks the epoch keys of 64 slots spread over the key space,
// enough to meet every node of a cluster: a readiness check. It returns an
// EUnavailable error wrapping ErrStoreReset when any is missing, and also
// when a check has met a lost epoch, until the store is whole again: a new
// epoch in every slot, written by this process or another (outreachd
// replay, an acknowledgement that reached another instance). Until then it
// reads every slot's epoch.
func (s *Store) EpochSample(ctx context.Context) error {
	if s.reset.Load() {
		state, _, err := s.Epoch(ctx)
		if err != nil {
			return err
		}
		if state != EpochOK {
			return resetError()
		}
		s.reset.Store(false)
	}
	pipe := s.rdb.Pipeline()
	var cmds []*goredis.IntCmd
	for i := 0; i < slots; i += slots / 64 {
		cmds = append(cmds, pipe.Exists(ctx, s.epochKey(i)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return contact.Unavailable("redis", err)
	}
	for _, c := range cmds {
		if c.Val() != 1 {
			return resetError()
		}
	}
	return nil
}

// storeReset records that a check met a lost epoch, and logs it the first
// time, and returns the check's error.
func (s *Store) storeReset(key string) error {
	if !s.reset.Swap(true) {
		s.log.Error("store: the store was reset: an epoch key is gone, so its data is too; checks answer unavailable until a replay or an operator restores it",
			"key", key)
	}
	return resetError()
}
