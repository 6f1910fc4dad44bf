package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"net/http"
	"os"
	"sync/atomic"
	"time"

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
	// ScrubConcurrency is how many scrubs may run at once; past it a scrub
	// is refused with 429 (rate_limited). Each holds a few MiB of batches.
	// Default DefaultScrubConcurrency.
	ScrubConcurrency int
	// UploadIdle is how long a list upload may go without progress before
	// it is cut: the server's read and write timeouts do not apply to
	// uploads, which may rightly take longer. Default 2 minutes.
	UploadIdle time.Duration
}

// registerLists registers the list scrub and suppression-list routes.
func (s *Server) registerLists() {
	marketing := s.authorize(RoleMarketing)
	s.echo.POST("/v1/lists/scrub", s.scrub, marketing, s.uploadDeadlines)
	s.echo.PUT("/v1/suppressions/:list", s.replaceSuppressions, marketing, s.uploadDeadlines)
	s.echo.POST("/v1/suppressions/:list", s.addSuppressions, marketing, s.uploadDeadlines)
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

// uploadDeadlines replaces the server's read and write deadlines of an
// authorized list upload, which may rightly take longer than any other
// request: reading may take UploadIdle to make progress (the handler moves
// the deadline on as it does), and writing has no deadline until the
// handler sets one. Unauthorized uploads keep the server's deadlines.
func (s *Server) uploadDeadlines(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rc := http.NewResponseController(c.Response())
		_ = rc.SetReadDeadline(time.Now().Add(s.cfg.Lists.UploadIdle))
		_ = rc.SetWriteDeadline(time.Time{})
		return next(c)
	}
}

// uploadProgress is how much of a list upload counts as progress.
const uploadProgress = 64 << 10

// progressReader cuts an upload whose client keeps it waiting, in all,
// UploadIdle for the next uploadProgress bytes, so that a stalled or
// trickling upload is cut and a moving one never is, however long it
// takes. Only the time spent waiting for the client counts, not the time
// the handler spends on what it read. A stall is an ETimeout error. At the
// end of the body it clears the deadline: the server then reads the
// connection in the background to notice a client that goes away, and a
// deadline left in place would end that read, and the request with it.
type progressReader struct {
	r        io.Reader
	rc       *http.ResponseController
	idle     time.Duration
	n        int                       // bytes since the last progress
	waited   time.Duration             // time waited since the last progress
	deadline atomic.Pointer[time.Time] // the read deadline in force; nil: none
}

func (p *progressReader) Read(b []byte) (int, error) {
	start := time.Now()
	d := start.Add(p.idle - p.waited)
	p.deadline.Store(&d)
	_ = p.rc.SetReadDeadline(d)
	n, err := p.r.Read(b)
	p.waited += time.Since(start)
	if p.n += n; p.n >= uploadProgress {
		p.n, p.waited = 0, 0
	}
	switch {
	case errors.Is(err, io.EOF):
		p.deadline.Store(nil)
		_ = p.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = &contact.Error{Code: contact.ETimeout, Field: "list", Err: err,
			Message: fmt.Sprintf("the upload stalled: the server waited %v for the next %d KiB", p.idle, uploadProgress>>10)}
	}
	return n, err
}

// stalled reports whether the read deadline has passed.
func (p *progressReader) stalled() bool {
	d := p.deadline.Load()
	return d != nil && !time.Now().Before(*d)
}

// uploadContext returns the context of the work on an upload read through
// p. It ends when the client goes away, but not when the upload stalls:
// net/http cancels a request's context on any failed read, its deadline
// included, and the handler must still answer a client that is there but
// slow.
func uploadContext(parent context.Context, p *progressReader) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		if !p.stalled() {
			cancel()
		}
	})
	return ctx, func() {
		stop()
		cancel()
	}
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

// readCloser is a request body read through a wrapper.
type readCloser struct {
	io.Reader
	io.Closer
}
