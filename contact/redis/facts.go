package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact"
)

// Facts reads, for each lookup, the customer's state, the claim held on the
// customer and the suppression entries naming the customer or its phones,
// and takes the claim a lookup asks for, all in one pipeline: one round
// trip for the whole batch.
//
// Every command of the pipeline is checked: a lookup whose reads met any
// error (other than the absence of a key) or a value that cannot be
// decoded gets Facts.Err, EUnavailable, and the other lookups their facts.
// A lookup that took its claim before a read of it failed keeps no claim:
// the claim is released again.
func (s *Store) Facts(ctx context.Context, lookups []contact.Lookup) []contact.Facts {
	now := s.now()
	type pending struct {
		state  func() (contact.State, error)
		epochs *epochReads
		take   *goredis.BoolCmd // nil unless the lookup claims
		holder *goredis.StringCmd
		claim  contact.Claim
		fus    func() ([]contact.FollowUp, error) // nil unless the lookup asks
	}
	pipe := s.rdb.Pipeline()
	sup := s.queueSuppressions(ctx, pipe, lookups)
	ps := make([]pending, len(lookups))
	for i := range lookups {
		l, p := &lookups[i], &ps[i]
		// The epochs of every slot read: the customer's, and those of
		// its phones' suppression entries.
		p.epochs = s.newEpochReads()
		p.epochs.add(ctx, pipe, customerMember(l.CustomerID))
		for _, phone := range l.Phones {
			p.epochs.add(ctx, pipe, phoneMember(phone))
		}
		p.state = s.queueState(ctx, pipe, l.CustomerID, now, l.OfferProducts)
		key := s.claimKey(l.CustomerID)
		// SET NX comes before GET, so that a check that loses the race
		// reads the winner's claim: commands of one pipeline run in order.
		if l.Claim != nil {
			p.claim = *l.Claim
			p.claim.Token = newToken(l.CustomerID)
			value, _ := json.Marshal(p.claim)
			p.take = pipe.SetNX(ctx, key, value, l.ClaimTTL)
		}
		p.holder = pipe.Get(ctx, key)
		if l.FollowUps {
			p.fus = s.queueFollowUps(ctx, pipe, l.CustomerID)
		}
	}
	_, _ = pipe.Exec(ctx) // each command's error is looked at below

	out := make([]contact.Facts, len(lookups))
	for i := range lookups {
		p := &ps[i]
		err := p.epochs.check()
		var f contact.Facts
		if err == nil {
			f, err = s.facts(p.state, p.take, p.holder, sup, i)
		}
		if err == nil && p.fus != nil {
			f.FollowUps, err = p.fus()
		}
		if p.take != nil && p.take.Err() == nil && p.take.Val() {
			f.Taken = &p.claim
		}
		if err != nil {
			if lookups[i].Claim != nil {
				// The SET may have been applied even if its answer was
				// lost; the release deletes only our own token.
				go s.release(ctx, p.claim.Token)
			}
			f = contact.Facts{Err: err}
		}
		out[i] = f
	}
	return out
}

// checkEpoch fails a read of a slot that has lost its epoch: the node that
// holds it came back without its data.
func (s *Store) checkEpoch(cmds ...*goredis.StringCmd) error {
	for _, cmd := range cmds {
		err := cmd.Err()
		switch {
		case errors.Is(err, goredis.Nil):
			return s.storeReset(cmd.Args()[1].(string))
		case err != nil:
			return contact.Unavailable("redis", fmt.Errorf("store: unable to read the epoch: %w", err))
		}
	}
	return nil
}

// facts gathers the reads of lookup i once the pipeline has run.
func (s *Store) facts(state func() (contact.State, error), take *goredis.BoolCmd, holder *goredis.StringCmd, sup *suppressionReads, i int) (contact.Facts, error) {
	var f contact.Facts
	st, err := state()
	if err != nil {
		return f, err
	}
	f.State = st
	if f.Suppressions, err = sup.hits(i); err != nil {
		return f, err
	}
	if take != nil && take.Err() != nil {
		return f, contact.Unavailable("redis", fmt.Errorf("store: unable to take a claim: %w", take.Err()))
	}
	if take != nil && take.Val() {
		return f, nil // ours; the GET after it reads it back
	}
	if f.Claim, err = s.decodeClaim(holder); err != nil {
		return f, err
	}
	if f.Claim == nil && take != nil {
		// The winner's claim ended between our SET and GET; it was held
		// when we asked, so the answer is still claimed.
		f.Claim = &contact.Claim{}
	}
	return f, nil
}

// decodeClaim returns the claim a GET read, nil if there is none.
func (s *Store) decodeClaim(cmd *goredis.StringCmd) (*contact.Claim, error) {
	v, err := cmd.Result()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, contact.Unavailable("redis", fmt.Errorf("store: unable to read a claim: %w", err))
	}
	var c contact.Claim
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		return nil, s.undecodable(cmd.Args()[1].(string), err)
	}
	c.Token = "" // a token is only ever shown to its holder
	return &c, nil
}

// release gives back a claim taken for a check that cannot be answered. It
// expires at its TTL anyway.
func (s *Store) release(ctx context.Context, token string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if _, err := s.ReleaseClaim(ctx, token); err != nil {
		s.log.Warn("store: unable to release the claim of an unanswered check", "error", err)
	}
}
