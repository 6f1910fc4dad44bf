package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/outreach/outreach/contact"
)

// postEvents takes one event or an array of up to MaxEventsPerRequest,
// validates them all and produces them to Kafka, or none of them.
func (s *Server) postEvents(c echo.Context) error {
	body, err := readBody(c) // contact.Decode refuses invalid UTF-8, by index
	if err != nil {
		return err
	}
	body = bytes.TrimSpace(body)
	var raws []json.RawMessage
	switch {
	case len(body) == 0:
		return contact.Invalid("", "the body is empty; send an event object or an array of events")
	case body[0] == '[':
		if err := json.Unmarshal(body, &raws); err != nil {
			return contact.Invalid("", "malformed JSON array: %v", err)
		}
		if len(raws) == 0 {
			return contact.Invalid("", "the array is empty")
		}
		if len(raws) > MaxEventsPerRequest {
			return contact.Invalid("", "at most %d events per request; got %d", MaxEventsPerRequest, len(raws))
		}
	default:
		raws = []json.RawMessage{body}
	}
	events := make([]contact.Event, len(raws))
	for i, raw := range raws {
		e, err := contact.Decode(raw, s.cfg.Defaults)
		if err == nil && e.Type == contact.TypeForget {
			// An erasure is DELETE /v1/customers/{id}: role admin, audited.
			err = contact.Invalid("type", "forget is not posted: erase a customer with DELETE /v1/customers/{id} (role admin)")
		}
		if err != nil {
			return &indexedError{index: i, err: err}
		}
		events[i] = e
	}
	if err := s.refuseReusedIDs(c.Request().Context(), events); err != nil {
		return err
	}
	if err := s.cfg.Producer.Produce(c.Request().Context(), events); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]int{"accepted": len(events)})
}

// refuseReusedIDs returns a 409 naming the first event whose id is stored
// already with other content. When the ids cannot be read, the events go
// on: ingestion does not wait for Redis, and the consumer dead-letters a
// reused id (id_conflict), as it does one posted twice at once.
func (s *Server) refuseReusedIDs(ctx context.Context, events []contact.Event) error {
	if s.cfg.EventIDs == nil {
		return nil
	}
	conflicts, err := s.cfg.EventIDs.IDConflicts(ctx, events)
	if err != nil {
		s.log.Warn("events: ids not checked before producing; the consumer refuses a reused one", "events", len(events), "error", err)
		return nil
	}
	for i, err := range conflicts {
		if err != nil {
			return &indexedError{index: i, err: err}
		}
	}
	return nil
}

// timelineResponse is the body of GET /v1/customers/{id}/contacts.
type timelineResponse struct {
	CustomerID string          `json:"customer_id"`
	Events     []contact.Event `json:"events"`
	State      contact.State   `json:"state"`
	// Next is the before= cursor of the next page, when there may be one:
	// an opaque token.
	Next string `json:"next,omitempty"`
}

// MaxPageSize is the largest limit a timeline page takes.
const MaxPageSize = 1000

func (s *Server) contacts(c echo.Context) error {
	id, err := customerParam(c)
	if err != nil {
		return err
	}
	page := contact.Page{Limit: 50}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageSize {
			return contact.Invalid("limit", "must be a whole number from 1 to %d", MaxPageSize)
		}
		page.Limit = n
	}
	if v := c.QueryParam("before"); v != "" {
		if page.After, err = contact.ParseCursor("before", v); err != nil {
			return err
		}
	}
	events, state, err := s.cfg.Timelines.Timeline(c.Request().Context(), id, page)
	if err != nil {
		return err
	}
	resp := timelineResponse{CustomerID: id, Events: events, State: state}
	if resp.Events == nil {
		resp.Events = []contact.Event{}
	}
	if len(events) == page.Limit {
		resp.Next = contact.CursorOf(&events[len(events)-1]).String()
	}
	return c.JSON(http.StatusOK, resp)
}

// customerParam returns the validated :id path parameter.
func customerParam(c echo.Context) (string, error) {
	id := c.Param("id")
	if err := contact.ValidCustomerID(id); err != nil {
		return "", err
	}
	return id, nil
}

// readBody reads a JSON request body, refusing other content types.
func readBody(c echo.Context) ([]byte, error) {
	if err := requireJSON(c); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return nil, bodyError(err)
	}
	return body, nil
}

// inBatch moves the index of a batch element from the field path of an
// EInvalid error to its index: "checks.2.agent" becomes field "agent" of
// index 2, and so does "2.agent" of an array body.
func inBatch(err error) error {
	var ce *contact.Error
	if !errors.As(err, &ce) {
		return err
	}
	parts := strings.SplitN(strings.TrimPrefix(ce.Field, "checks."), ".", 2)
	i, convErr := strconv.Atoi(parts[0])
	if convErr != nil || len(parts) != 2 || strconv.Itoa(i) != parts[0] {
		return err
	}
	return &indexedError{index: i, err: contact.Invalid(parts[1], "%s", ce.Message)}
}

// requireJSON rejects a body that is declared as something other than JSON.
func requireJSON(c echo.Context) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if ct == "" {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(ct)
	if mt != echo.MIMEApplicationJSON {
		return contact.Errorf(contact.EUnsupported, "Content-Type must be application/json; got %q", mt)
	}
	return nil
}

// bodyError turns a failed body read into the right API error.
func bodyError(err error) error {
	var he *echo.HTTPError
	var ce *contact.Error
	switch {
	case errors.As(err, &he):
		return he
	case errors.As(err, &ce):
		return ce // such as a stalled upload (progressReader)
	}
	return contact.Invalid("", "unable to read the request body")
}
