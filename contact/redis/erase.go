package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact"
)

// Erasure of a customer (a forget event): the history, the state, the
// recent contacts, the offers and the claim go. What stops contact stays, as
// bare flags without history or free text, on purpose: erasing them would
// make the customer callable again:
//
//   - the opt-outs in force: their channel and time, no reason, agent or
//     campaign;
//   - the customer's entries on suppression lists: their list and expiry,
//     no reason.
//
// A tombstone, PREFIX{c:ID}:t (the erasure time, unix ms, kept for ever),
// makes applyScript drop every later-applied event dated up to it, so that
// a replay of the topic cannot bring the history back.

// ErasedID is the id of the bare opt-outs an erasure keeps.
const ErasedID = "erased"

func (s *Store) tombKey(customerID string) string { return s.key(customerID, "t") }

// erase erases a customer as of at, in one transaction of the customer's
// slot: a concurrent change of the state or of the suppression entries
// makes it start again. EUnavailable when Redis cannot be reached.
func (s *Store) erase(ctx context.Context, customerID string, at time.Time) error {
	st, dnc, tomb := s.key(customerID, kindState), s.memberKey(customerMember(customerID)), s.tombKey(customerID)
	txf := func(tx *goredis.Tx) error {
		slots, err := tx.HGetAll(ctx, st).Result()
		if err != nil {
			return err
		}
		entries, err := tx.HGetAll(ctx, dnc).Result()
		if err != nil {
			return err
		}
		prev, err := tx.Get(ctx, tomb).Int64()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return err
		}
		bareSlots, binding := s.bareConsent(customerID, slots)
		_, err = tx.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
			pipe.Del(ctx, s.key(customerID, kindHistory), s.key(customerID, kindIDs), st,
				s.key(customerID, kindRecent), s.key(customerID, kindOffers), s.claimKey(customerID), dnc)
			if len(bareSlots) > 0 {
				pipe.HSet(ctx, st, bareSlots)
				pipe.HSet(ctx, st, "#b", binding)
			}
			if bare := bareEntries(entries); len(bare) > 0 {
				pipe.HSet(ctx, dnc, bare)
			}
			pipe.Set(ctx, tomb, max(prev, at.UnixMilli()), 0)
			return nil
		})
		return err
	}
	for range 10 {
		err := s.rdb.Watch(ctx, txf, st, dnc, tomb)
		if errors.Is(err, goredis.TxFailedErr) {
			continue // something changed meanwhile: erase again
		}
		if err != nil {
			return contact.Unavailable("redis", fmt.Errorf("store: unable to erase a customer: %w", err))
		}
		return nil
	}
	return contact.Unavailable("redis", errors.New("store: unable to erase a customer: it kept changing"))
}

// bareConsent returns the consent slots that stop contact, stripped to
// their channel and time, and how many there are.
func (s *Store) bareConsent(customerID string, slots map[string]string) (map[string]any, int) {
	bare := map[string]any{}
	for field, v := range slots {
		f, ok := parseFact(field)
		if !ok || f.Kind != contact.FactConsent {
			continue
		}
		e, err := decodeSlot(customerID, v)
		if err != nil || e.Type != contact.TypeOptOut {
			// An undecodable consent fact may be an opt-out: keep it.
			if err != nil {
				bare[field] = v
			}
			continue
		}
		flag := contact.Event{ID: ErasedID, Type: contact.TypeOptOut, CustomerID: customerID, At: e.At, Channel: e.Channel}
		bare[field] = slotValue(&flag, encodeRecord(nil, &flag))
	}
	return bare, len(bare)
}

// bareEntries strips suppression entries to their list and expiry.
func bareEntries(entries map[string]string) map[string]any {
	bare := map[string]any{}
	for field, v := range entries {
		var e contact.Suppression
		if err := json.Unmarshal([]byte(v), &e); err != nil {
			bare[field] = v // an undecodable entry may be in force: keep it
			continue
		}
		if e.List == "" {
			e.List, _, _ = strings.Cut(field, ":")
		}
		b, _ := json.Marshal(contact.Suppression{List: e.List, ExpiresAt: e.ExpiresAt})
		bare[field] = b
	}
	return bare
}

// Erased returns when the customer was last erased; zero if never.
func (s *Store) Erased(ctx context.Context, customerID string) (time.Time, error) {
	v, err := s.rdb.Get(ctx, s.tombKey(customerID)).Result()
	if errors.Is(err, goredis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, contact.Unavailable("redis", err)
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, s.undecodable(s.tombKey(customerID), err)
	}
	return msTime(ms), nil
}
