// Package http serves the outreach API with echo. Callers import it under an
// alias such as httpapi.
package http

import (
	"context"
	_ "embed"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/outreach/outreach/contact"
)

// TimelineReader reads customer timelines.
type TimelineReader interface {
	Timeline(ctx context.Context, customerID string, page contact.Page) ([]contact.Event, contact.State, error)
}

// EventProducer accepts valid events for the timeline, asynchronously.
type EventProducer interface {
	Produce(ctx context.Context, events []contact.Event) error
}

// EventIDs finds events whose id is stored already with other content, so
// that POST /v1/events refuses them before they are produced.
// contact/redis.Store is one.
type EventIDs interface {
	// IDConflicts returns, per event, an EConflict error naming the field
	// id, or nil.
	IDConflicts(ctx context.Context, events []contact.Event) ([]error, error)
}

// Check is a named readiness check; it returns nil when its dependency is
// usable.
type Check struct {
	Name  string
	Role  string // ReadyAPI or ReadyIngest: what the dependency serves
	Check func(ctx context.Context) error
}

// Readiness roles: /readyz?role=api is ready when checks can be answered,
// /readyz?role=ingest when events are being consumed; /readyz alone when
// both are.
const (
	ReadyAPI    = "api"
	ReadyIngest = "ingest"
)

// Config holds the server's dependencies and settings.
type Config struct {
	Timelines TimelineReader
	Producer  EventProducer
	// EventIDs, if set, is asked about the ids of posted events before
	// they are produced; the consumer refuses a reused id either way.
	EventIDs EventIDs
	Checker  Checker
	// Defaults are the currency and phone region that events, list
	// uploads and page requests are read with; they must be those of the
	// Checker.
	Defaults contact.Defaults
	// Keys authenticates requests; nil serves every request as an admin's.
	Keys  *Keys
	Now   func() time.Time // default time.Now
	Ready []Check
	// Decisions, if set, reads the audit trail back for
	// GET /v1/customers/{id}/decisions and the agent page.
	Decisions DecisionReader
	// FollowUps, if set, serves GET /v1/followups, the team leads' page
	// and the follow-up line of the agent page's complaints.
	FollowUps FollowUpLister
	// Insights, if set, serves GET /v1/insights and the insights page.
	Insights InsightReporter
	// Epoch, if set, serves POST /v1/admin/epoch, by which an operator
	// acknowledges a store reset.
	Epoch EpochAdmin
	// Versions names the versions (hashes) of the configuration in force,
	// shown by /readyz so that replicas that drifted apart can be found.
	Versions func() map[string]string
	Gatherer prometheus.Gatherer // serves /metrics; nil means no metrics
	Registry prometheus.Registerer
	MaxBody  int64 // request body limit in bytes; default 4 MiB; list uploads are exempt
	Logger   *slog.Logger
	Lists    ListsConfig // list scrubs and suppression lists (lists.go)
	// RateLimits limits each API key's requests by its role (ratelimit.go);
	// nil limits nothing.
	RateLimits RateLimits
}

// MaxEventsPerRequest is the most events POST /v1/events takes at once.
const MaxEventsPerRequest = 1000

// Server is the HTTP API. Its Handler is safe for concurrent use.
type Server struct {
	cfg      Config
	echo     *echo.Echo
	log      *slog.Logger
	limiters *limiters // nil: no rate limits
	scrubs   *scrubSlots
}

// New returns a Server with every route registered.
func New(cfg Config) *Server {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 4 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Lists.UploadIdle <= 0 {
		cfg.Lists.UploadIdle = 2 * time.Minute
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	s := &Server{cfg: cfg, echo: e, log: cfg.Logger}
	if cfg.RateLimits != nil {
		s.limiters = newLimiters(cfg.RateLimits, cfg.Registry)
	}
	s.scrubs = newScrubSlots(cfg.Lists.ScrubConcurrency, cfg.Registry)
	e.HTTPErrorHandler = s.handleError
	e.Pre(routeOnEscapedPath) // path.go: ids are decoded once
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true, LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
		s.log.Error("http: panic", "error", err, "path", c.Path(), "stack", string(stack))
		return err
	}}))
	if cfg.Registry != nil {
		e.Use(s.instrument(cfg.Registry))
	}
	e.Use(decodePathParams)
	e.Use(s.refuseRepeatedQuery) // query.go
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
		Limit:   strconv.FormatInt(cfg.MaxBody, 10) + "B",
		Skipper: streamedUpload, // lists.go
	}))

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	if cfg.Gatherer != nil {
		e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{})))
	}
	e.GET("/openapi.yaml", s.openapi)
	e.GET("/v1/customers/:id/contacts", s.contacts, s.authorize(RoleAgent))
	e.POST("/v1/events", s.postEvents, s.authorize(RoleDialer))
	e.POST("/v1/check", s.check, s.authorize(RoleDialer, RoleAgent))
	e.POST("/v1/check/batch", s.checkBatch, s.authorize(RoleDialer, RoleAgent))
	e.DELETE("/v1/claims/:token", s.releaseClaim, s.authorize(RoleDialer))
	e.POST("/v1/admin/epoch", s.newEpoch, s.authorize(RoleAdmin))
	e.DELETE("/v1/customers/:id", s.forget, s.authorize(RoleAdmin))
	e.GET("/v1/customers/:id/decisions", s.decisions, s.authorize(RoleAgent))
	s.registerLists() // lists.go: list scrubs and suppression lists
	s.registerPage()  // page.go: the agent's web page
	// insights.go: GET /v1/insights and the insights page
	s.registerInsights()
	return s
}

// EpochAdmin declares a store whole again after a reset.
type EpochAdmin interface {
	// NewEpoch writes a new store epoch and returns it.
	NewEpoch(ctx context.Context) (string, error)
}

// newEpoch acknowledges a store reset: the operator accepts that what Redis
// lost is lost (or has restored it otherwise), and checks answer again.
func (s *Server) newEpoch(c echo.Context) error {
	if s.cfg.Epoch == nil {
		return contact.Errorf(contact.ENotFound, "this server keeps no store epoch")
	}
	epoch, err := s.cfg.Epoch.NewEpoch(c.Request().Context())
	if err != nil {
		return err
	}
	s.log.Warn("store reset acknowledged by an operator; checks answer again", "epoch", epoch)
	return c.JSON(http.StatusOK, map[string]string{"epoch": epoch})
}

// Handler returns the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Routes lists every registered route as "METHOD PATH".
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.echo.Routes() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

//go:embed openapi.yaml
var openapiDoc []byte

func (s *Server) openapi(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", openapiDoc)
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	role := c.QueryParam("role")
	if role != "" && role != ReadyAPI && role != ReadyIngest {
		return contact.Invalid("role", "must be api or ingest; got %q", contact.Clip(role))
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	var failed []string
	for _, ch := range s.cfg.Ready {
		if role != "" && ch.Role != role {
			continue
		}
		if err := ch.Check(ctx); err != nil {
			checks[ch.Name] = err.Error()
			failed = append(failed, ch.Name)
			continue
		}
		checks[ch.Name] = "ok"
	}
	body := map[string]any{"status": "ok", "checks": checks}
	if s.cfg.Versions != nil {
		body["versions"] = s.cfg.Versions()
	}
	if len(failed) > 0 {
		body["status"] = "unavailable"
		body["error"] = apiError{Code: contact.EUnavailable, Message: "not ready: " + strings.Join(failed, ", ")}
		return c.JSON(http.StatusServiceUnavailable, body)
	}
	return c.JSON(http.StatusOK, body)
}

// instrument counts requests and their latency by route and status.
func (s *Server) instrument(reg prometheus.Registerer) echo.MiddlewareFunc {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outreach_http_requests_total", Help: "HTTP requests by method, route and status.",
	}, []string{"method", "route", "status"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "outreach_http_request_seconds", Help: "HTTP request latency by method and route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30},
	}, []string{"method", "route"})
	reg.MustRegister(requests, latency)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err) // write the response now, so its status is known
			}
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			requests.WithLabelValues(c.Request().Method, route, strconv.Itoa(c.Response().Status)).Inc()
			latency.WithLabelValues(c.Request().Method, route).Observe(time.Since(start).Seconds())
			return nil
		}
	}
}

// errorBody is the one error shape of the API.
type errorBody struct {
	Error apiError `json:"error"`
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	Index   *int   `json:"index,omitempty"`
}

// indexedError marks which element of a batch an error is about.
type indexedError struct {
	index int
	err   error
}

func (e *indexedError) Error() string { return e.err.Error() }
func (e *indexedError) Unwrap() error { return e.err }

// statusClientClosedRequest is logged for requests whose client went away,
// as nginx does; the client never sees it.
const statusClientClosedRequest = 499

var statusOf = map[string]int{
	contact.EInvalid:      http.StatusBadRequest,
	contact.ENotFound:     http.StatusNotFound,
	contact.EConflict:     http.StatusConflict,
	contact.EUnauthorized: http.StatusUnauthorized,
	contact.EForbidden:    http.StatusForbidden,
	contact.ETooLarge:     http.StatusRequestEntityTooLarge,
	contact.EUnsupported:  http.StatusUnsupportedMediaType,
	contact.ERateLimited:  http.StatusTooManyRequests,
	contact.ETimeout:      http.StatusRequestTimeout,
	contact.EUnavailable:  http.StatusServiceUnavailable,
	contact.EInternal:     http.StatusInternalServerError,
}

var codeOfStatus = map[int]string{
	http.StatusBadRequest:            contact.EInvalid,
	http.StatusNotFound:              contact.ENotFound,
	http.StatusConflict:              contact.EConflict,
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusUnauthorized:          contact.EUnauthorized,
	http.StatusForbidden:             contact.EForbidden,
	http.StatusRequestEntityTooLarge: contact.ETooLarge,
	http.StatusUnsupportedMediaType:  contact.EUnsupported,
	http.StatusTooManyRequests:       contact.ERateLimited,
	http.StatusRequestTimeout:        contact.ETimeout,
	http.StatusServiceUnavailable:    contact.EUnavailable,
}

// handleError writes every error in the one shape. Only internal errors
// and outages are logged with their cause; clients see the safe message.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
		// The client hung up: nobody reads an answer, and nothing failed.
		c.Response().WriteHeader(statusClientClosedRequest)
		return
	}
	var body apiError
	status := http.StatusInternalServerError
	var ce *contact.Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ce):
		status = statusOf[ce.Code]
		body = apiError{Code: ce.Code, Message: ce.Message, Field: ce.Field}
	case errors.As(err, &he):
		status = he.Code
		body = apiError{Code: codeOfStatus[status], Message: http.StatusText(status)}
		if m, ok := he.Message.(string); ok {
			body.Message = m
		}
		if status == http.StatusRequestEntityTooLarge {
			body.Message = "the request body is larger than " + strconv.FormatInt(s.cfg.MaxBody, 10) + " bytes"
		}
		if status == http.StatusNotFound {
			body.Message = "no such route: " + c.Request().Method + " " + c.Request().URL.Path
		}
	default:
		body = apiError{Code: contact.EInternal, Message: "internal error"}
	}
	if body.Code == "" {
		body.Code = contact.EInternal
	}
	var ie *indexedError
	if errors.As(err, &ie) {
		body.Index = &ie.index
	}
	if status >= 500 {
		s.log.Error("http: request failed", slog.Group("request", "method", c.Request().Method, "route", c.Path()), "status", status, "error", err)
	}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(status)
	} else {
		err = c.JSON(status, errorBody{Error: body})
	}
	if err != nil {
		s.log.Warn("http: unable to write an error response", "error", err)
	}
}
