package http

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

// Checker answers pre-dial checks and ends claims.
type Checker interface {
	Check(ctx context.Context, p *dedupe.Policy, reqs []dedupe.Request) ([]dedupe.Result, error)
	ReleaseClaim(ctx context.Context, token string) (bool, error)
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

// decide normalizes reqs and checks them. A store outage is not an error:
// every result is then the policy's unavailable decision. In a batch,
// errors name the index of the check at fault.
func (s *Server) decide(c echo.Context, reqs []dedupe.Request, batch bool) ([]dedupe.Result, error) {
	now := s.cfg.Now()
	for i := range reqs {
		if err := reqs[i].Normalize(now); err != nil {
			return nil, withIndex(err, i, batch)
		}
		if reqs[i].Claim && roleOf(c) == RoleAgent {
			return nil, withIndex(&contact.Error{Code: contact.EForbidden, Field: "claim",
				Message: "the agent role may check but not claim"}, i, batch)
		}
	}
	p := s.cfg.Policy()
	results, err := s.cfg.Checker.Check(c.Request().Context(), p, reqs)
	if err == nil {
		return results, nil
	}
	if contact.ErrorCode(err) != contact.EUnavailable {
		return nil, err
	}
	s.log.Warn("check: the store is unavailable; answering with the policy's fallback", "error", err, "fail_open", p.FailOpen())
	results = make([]dedupe.Result, len(reqs))
	for i := range reqs {
		results[i] = dedupe.Result{CustomerID: reqs[i].CustomerID, Decision: dedupe.Unavailable(p)}
	}
	return results, nil
}

func (s *Server) releaseClaim(c echo.Context) error {
	released, err := s.cfg.Checker.ReleaseClaim(c.Request().Context(), c.Param("token"))
	if err != nil {
		return err
	}
	if !released {
		return contact.Errorf(contact.ENotFound, "no active claim has this token; it may have expired or been released")
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
