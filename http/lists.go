package http

import (
	"context"
	"iter"
	"mime"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

// Suppressions keeps suppression (do-not-call) lists. Entries name a
// CustomerID or a Phone in E.164 form, never both.
type Suppressions interface {
	// ReplaceSuppressions makes list hold exactly the entries, all or
	// nothing, and returns how many it wrote. An error the sequence yields
	// is returned as is.
	ReplaceSuppressions(ctx context.Context, list string, entries iter.Seq2[dedupe.Suppression, error]) (int, error)
	// AddSuppressions adds the entries to list, all or nothing.
	AddSuppressions(ctx context.Context, list string, entries iter.Seq2[dedupe.Suppression, error]) (int, error)
	// DeleteSuppression removes the entry key names and reports whether
	// there was one.
	DeleteSuppression(ctx context.Context, list string, key dedupe.Suppression) (bool, error)
	// GetSuppression returns the entry key names; ENotFound if none.
	GetSuppression(ctx context.Context, list string, key dedupe.Suppression) (dedupe.Suppression, error)
	// SuppressionCount returns how many entries list holds; ENotFound for
	// a list that does not exist.
	SuppressionCount(ctx context.Context, list string) (int, error)
}

// ListsConfig configures list scrubs and suppression lists. A zero
// ListsConfig serves scrubs without phone normalisation or presets, and
// answers suppression requests with 503.
type ListsConfig struct {
	Suppressions Suppressions
	// Presets returns the named policies a scrub may use instead of the
	// live one (?policy=NAME); nil means none.
	Presets func() map[string]*dedupe.Policy
	// ScrubBatch is how many rows a scrub checks in one store round trip;
	// default 500.
	ScrubBatch int
	// ScrubInFlight is how many batches of one scrub may be checked at
	// once; default 4.
	ScrubInFlight int
}

// registerLists registers the list scrub and suppression-list routes.
func (s *Server) registerLists() {
	marketing := s.authorize(RoleMarketing)
	s.echo.POST("/v1/lists/scrub", s.scrub, marketing)
	s.echo.PUT("/v1/suppressions/:list", s.replaceSuppressions, marketing)
	s.echo.POST("/v1/suppressions/:list", s.addSuppressions, marketing)
	s.echo.GET("/v1/suppressions/:list", s.getSuppressions, marketing)
	s.echo.DELETE("/v1/suppressions/:list/:entry", s.deleteSuppression, marketing)
}

// streamedUpload reports whether c is a list upload, which is read as a
// stream and so exempt from the body limit.
func streamedUpload(c echo.Context) bool {
	switch c.Request().Method + " " + c.Path() {
	case "POST /v1/lists/scrub", "PUT /v1/suppressions/:list", "POST /v1/suppressions/:list":
		return true
	}
	return false
}

// requireCSV rejects a list upload declared as something other than CSV.
// No Content-Type, text/plain and application/octet-stream are taken as
// CSV, since that is what curl and spreadsheets send.
func requireCSV(c echo.Context) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if ct == "" {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(ct)
	switch mt {
	case "text/csv", "application/csv", "text/plain", "application/octet-stream", "application/x-www-form-urlencoded":
		return nil
	}
	return contact.Errorf(contact.EUnsupported, "Content-Type must be text/csv; got %q", mt)
}

// fullDuplex lets a handler read the request body while it writes the
// response, which HTTP/1 servers do not do by default. It fails only on a
// ResponseWriter that cannot (a test recorder), where it does not matter.
func fullDuplex(c echo.Context) *http.ResponseController {
	rc := http.NewResponseController(c.Response())
	_ = rc.EnableFullDuplex()
	return rc
}
