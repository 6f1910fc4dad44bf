package http

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

// DecisionReader reads a customer's decision records back from the audit
// trail, newest first; partial when it stopped before the end.
type DecisionReader interface {
	Decisions(ctx context.Context, customerID string, since time.Time, limit int) (recs []dedupe.Record, partial bool, err error)
}

// Bounds of GET /v1/customers/{id}/decisions.
const (
	MaxDecisions        = 500
	defaultDecisionsAge = 24 * time.Hour
	maxDecisionsAge     = 90 * 24 * time.Hour
	decisionsTimeout    = 10 * time.Second
)

// forget erases a customer (DELETE /v1/customers/{id}): the forget event is
// written to the events topic and applied in order with the customer's
// other events. What stops contact is kept, bare: see the README.
func (s *Server) forget(c echo.Context) error {
	id, err := customerParam(c)
	if err != nil {
		return err
	}
	e, err := s.cfg.Checker.Forget(c.Request().Context(), id, callerOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"customer_id": id, "event_id": e.ID, "at": e.At,
		"status": "the erasure is written to the events topic and applied in order with the customer's events"})
}

// decisions answers with a customer's decision records
// (GET /v1/customers/{id}/decisions?since=24h&limit=50).
func (s *Server) decisions(c echo.Context) error {
	if s.cfg.Decisions == nil {
		return contact.Errorf(contact.ENotFound, "this server keeps no audit trail")
	}
	id, err := customerParam(c)
	if err != nil {
		return err
	}
	since, limit, err := decisionsQuery(c, s.cfg.Now())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), decisionsTimeout)
	defer cancel()
	recs, partial, err := s.cfg.Decisions.Decisions(ctx, id, since, limit)
	if err != nil {
		return err
	}
	if recs == nil {
		recs = []dedupe.Record{}
	}
	return c.JSON(http.StatusOK, map[string]any{"customer_id": id, "since": since, "decisions": recs, "partial": partial})
}

func decisionsQuery(c echo.Context, now time.Time) (time.Time, int, error) {
	age, limit := defaultDecisionsAge, 50
	if v := c.QueryParam("since"); v != "" {
		d, err := dedupe.ParseDuration(v)
		if err != nil || d <= 0 || d > maxDecisionsAge {
			return time.Time{}, 0, contact.Invalid("since", "must be a duration such as 24h or 7d, at most 90d; got %q", contact.Clip(v))
		}
		age = d
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxDecisions {
			return time.Time{}, 0, contact.Invalid("limit", "must be a whole number from 1 to %d", MaxDecisions)
		}
		limit = n
	}
	return now.Add(-age), limit, nil
}
