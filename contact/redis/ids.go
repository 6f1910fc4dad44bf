package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact"
)

// IDConflicts says, before events are produced, which of them Apply would
// refuse for their id: for each event, an EConflict error naming the field
// id when its id is stored already for its customer with other content, or
// is given earlier in events with other content; else nil (a new id, or the
// same event again, which is a redelivery). It writes nothing and reads the
// id index of every event in one pipeline. The events must be normalized.
//
// It is advice, not a lock: an event stored between this call and Apply
// is not seen, and Apply refuses it then. The error is EUnavailable when
// Redis cannot be read.
func (s *Store) IDConflicts(ctx context.Context, events []contact.Event) ([]error, error) {
	if len(events) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*goredis.StringCmd, len(events))
	for i := range events {
		cmds[i] = pipe.HGet(ctx, s.key(events[i].CustomerID, kindIDs), events[i].ID)
	}
	_, _ = pipe.Exec(ctx) // each command's error is looked at below
	errs := make([]error, len(events))
	given := make(map[[2]string][]byte, len(events)) // digests by customer and id
	for i, cmd := range cmds {
		e := &events[i]
		d := digest(e.At, encodeRecord(nil, e))
		stored, err := cmd.Bytes()
		switch {
		case errors.Is(err, goredis.Nil):
		case err != nil:
			return nil, contact.Unavailable("redis", fmt.Errorf("store: unable to read the ids of %d events: %w", len(events), err))
		case !bytes.Equal(stored, d):
			errs[i] = idConflict()
			continue
		}
		k := [2]string{e.CustomerID, e.ID}
		if first, ok := given[k]; ok && !bytes.Equal(first, d) {
			errs[i] = idConflict()
			continue
		}
		given[k] = d
	}
	return errs, nil
}

// idConflict is the error of an event whose id is stored with other
// content.
func idConflict() error {
	return &contact.Error{Code: contact.EConflict, Field: "id", Message: "an event with this id and other content is stored already; ids must be unique"}
}
