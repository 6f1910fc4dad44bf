package http

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/check"
)

// Checker answers pre-dial checks and scrubs, and ends claims;
// dedupe/check.Service is one.
type Checker interface {
	Check(ctx context.Context, reqs []dedupe.Request, o check.Options) ([]dedupe.Result, error)
	ReleaseClaim(ctx context.Context, token string) error
	Scrub(ctx context.Context, o check.ScrubOptions, next func() (check.Row, error), emit func([]check.Verdict, error) error) error
	// Forget erases a customer, asynchronously, and returns the forget
	// event it wrote.
	Forget(ctx context.Context, customerID string, caller check.Caller) (contact.Event, error)
	// Policy returns the policy in force.
	Policy() *dedupe.Policy
}

// MaxChecksPerBatch is the most checks POST /v1/check/batch takes at once.
const MaxChecksPerBatch = 1000

func (s *Server) check(c echo.Context) error {
	body, err := readJSON(c)
	if err != nil {
		return err
	}
	req, err := decodeRequest(body)
	if err != nil {
		return err
	}
	results, err := s.decide(c, []dedupe.Request{req}, false)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, results[0])
}

func (s *Server) checkBatch(c echo.Context) error {
	body, err := readJSON(c)
	if err != nil {
		return err
	}
	var batch struct {
		Checks []json.RawMessage `json:"checks"`
	}
	if err := json.Unmarshal(body, &batch); err != nil {
		return contact.JSONError(err)
	}
	switch n := len(batch.Checks); {
	case n == 0:
		return contact.Invalid("checks", "is required and must not be empty")
	case n > MaxChecksPerBatch:
		return contact.Invalid("checks", "must hold at most %d checks; got %d", MaxChecksPerBatch, n)
	}
	reqs := make([]dedupe.Request, len(batch.Checks))
	for i, raw := range batch.Checks {
		if reqs[i], err = decodeRequest(raw); err != nil {
			return &indexedError{index: i, err: err}
		}
	}
	results, err := s.decide(c, reqs, true)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"results": results})
}

// decide checks reqs. The agent role may not claim. In a batch, errors name
// the index of the check at fault.
func (s *Server) decide(c echo.Context, reqs []dedupe.Request, batch bool) ([]dedupe.Result, error) {
	for i := range reqs {
		if reqs[i].Claim && roleOf(c) == RoleAgent {
			return nil, withIndex(&contact.Error{Code: contact.EForbidden, Field: "claim",
				Message: "the agent role may check but not claim"}, i, batch)
		}
	}
	results, err := s.cfg.Checker.Check(c.Request().Context(), reqs, check.Options{Caller: callerOf(c)})
	var ie *check.IndexError
	if errors.As(err, &ie) {
		return nil, withIndex(ie.Err, ie.Index, batch)
	}
	return results, err
}

func (s *Server) releaseClaim(c echo.Context) error {
	if err := s.cfg.Checker.ReleaseClaim(c.Request().Context(), c.Param("token")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// decodeRequest decodes one check request. Its times are read as RFC 3339
// strings so that a bad one is reported with its field.
func decodeRequest(raw []byte) (dedupe.Request, error) {
	type plain dedupe.Request
	var w struct {
		plain
		At string `json:"at"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return dedupe.Request{}, contact.JSONError(err)
	}
	req := dedupe.Request(w.plain)
	req.At = time.Time{}
	if w.At != "" {
		t, err := contact.ParseTime("at", w.At)
		if err != nil {
			return dedupe.Request{}, err
		}
		req.At = t
	}
	return req, nil
}

// readJSON reads a JSON request body, refusing other content types and
// invalid UTF-8, which is named by its field (and, in a batch, its index).
func readJSON(c echo.Context) ([]byte, error) {
	body, err := readBody(c)
	if err != nil {
		return nil, err
	}
	if err := contact.ValidJSONText(body); err != nil {
		return nil, inBatch(err)
	}
	return body, nil
}

// withIndex marks err as about element i of a batch.
func withIndex(err error, i int, batch bool) error {
	if !batch {
		return err
	}
	return &indexedError{index: i, err: err}
}
