package http

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/check"
)

// The agent's web page.
//
// The page shell (GET / and GET /customers/{id}) is open: it holds the
// search box and the layout, and no customer data. Its script fetches the
// customer panel, an HTML fragment rendered here from the same
// TimelineReader and Checker as the API, with the agent's key in the
// Authorization header. The key lives in the tab's sessionStorage and never
// in a URL, so it is not in history, logs or Referer headers.

//go:embed web
var webFiles embed.FS

var pageTemplates = template.Must(template.New("").ParseFS(webFiles, "web/*.html"))

// PanelPageSize is how many timeline entries the page shows at a time.
const PanelPageSize = 25

// pageCSP lets the page run only its own script and style: user text that
// slipped through escaping could still not run.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// registerPage registers the agent's web page and its assets.
func (s *Server) registerPage() {
	s.echo.GET("/", s.pageHome)
	s.echo.GET("/customers/:id", s.pageCustomer)
	s.echo.GET("/customers/:id/panel", s.pagePanel, s.authorize(RoleAgent))
	s.echo.POST("/customers/:id/check", s.pageCheck, s.authorize(RoleAgent))
	s.registerFollowUps() // followups.go
	for _, a := range pageAssets {
		s.echo.GET("/assets/"+a.name, a.serve)
	}
}

// shellView is the data of the page shell.
type shellView struct {
	CustomerID string
	// The team leads' follow-ups page: its filters, and the fragment the
	// script loads.
	FollowUps   bool
	Team, Owner string
	PanelSrc    string
	Auth        bool   // whether the page must ask for a key
	Problem     string // why the customer id in the URL cannot be shown
	AssetCSS    string
	AssetJS     string
}

// pageHome serves the shell with only the search box. The search form is a
// plain GET form, so ?customer= redirects to the customer's own URL.
func (s *Server) pageHome(c echo.Context) error {
	if raw := c.QueryParam("customer"); raw != "" {
		id := strings.Trim(raw, " ") // what a search box adds; other spaces are the id's
		if err := contact.ValidCustomerID(id); err != nil {
			return s.renderShell(c, http.StatusBadRequest, shellView{Problem: "That is not a valid customer id: " + safeMessage(err)})
		}
		return c.Redirect(http.StatusSeeOther, "/customers/"+url.PathEscape(id))
	}
	return s.renderShell(c, http.StatusOK, shellView{})
}

// pageCustomer serves the shell for one customer; the script loads the panel.
func (s *Server) pageCustomer(c echo.Context) error {
	id, err := customerParam(c)
	if err != nil {
		return s.renderShell(c, http.StatusBadRequest, shellView{Problem: "That is not a valid customer id: " + safeMessage(err)})
	}
	return s.renderShell(c, http.StatusOK, shellView{CustomerID: id})
}

func (s *Server) renderShell(c echo.Context, status int, v shellView) error {
	v.Auth = s.cfg.Keys != nil
	v.AssetCSS, v.AssetJS = assetURL("page.css"), assetURL("page.js")
	return s.renderHTML(c, status, "page", v)
}

// renderHTML renders template name into a buffer first, so that a template
// error becomes a clean 500 rather than half a page.
func (s *Server) renderHTML(c echo.Context, status int, name string, data any) error {
	var b bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&b, name, data); err != nil {
		return &contact.Error{Code: contact.EInternal, Message: "internal error", Err: err}
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set(echo.HeaderCacheControl, "no-store")
	return c.HTMLBlob(status, b.Bytes())
}

// alertView is an error shown in place of the panel or the verdict.
type alertView struct {
	Kind    string // "outage" or "problem"
	Title   string
	Message string
	Retry   bool
}

// renderPageError shows err as an alert fragment. Outages and internal
// errors are logged with their cause; the agent sees a safe message.
func (s *Server) renderPageError(c echo.Context, err error) error {
	code := contact.ErrorCode(err)
	status := statusOf[code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	v := alertView{Kind: "problem", Title: "This request could not be answered", Message: safeMessage(err)}
	switch code {
	case contact.EInvalid:
		v.Title = "Please correct this"
	case contact.EUnavailable:
		v = alertView{Kind: "outage", Retry: true, Title: "The contact history cannot be read right now",
			Message: "The store is unavailable. Do not call from memory: what this page would show is unknown. Try again in a moment."}
	case contact.EInternal:
		v = alertView{Kind: "problem", Retry: true, Title: "Something went wrong", Message: "The error was logged. Try again in a moment."}
	}
	if status >= 500 {
		s.log.Error("http: page request failed", "route", c.Path(), "status", status, "error", err)
	}
	return s.renderHTML(c, status, "alert", v)
}

// safeMessage is the message of err that a client may see.
func safeMessage(err error) string {
	var ce *contact.Error
	if errors.As(err, &ce) && ce.Code != contact.EInternal {
		if ce.Field != "" {
			return ce.Field + ": " + ce.Message
		}
		return ce.Message
	}
	return "internal error"
}

// pagePanel renders the customer panel: the state as badges and the first
// page of the timeline. With ?before= it renders only that later page of
// the timeline, for the "Show older" button.
func (s *Server) pagePanel(c echo.Context) error {
	id, err := customerParam(c)
	if err != nil {
		return s.renderPageError(c, err)
	}
	page := contact.Page{Limit: PanelPageSize}
	if v := c.QueryParam("before"); v != "" {
		if page.After, err = contact.ParseCursor("before", v); err != nil {
			return s.renderPageError(c, err)
		}
	}
	ctx := c.Request().Context()
	events, state, err := s.cfg.Timelines.Timeline(ctx, id, page)
	if err != nil {
		return s.renderPageError(c, err)
	}
	now := s.cfg.Now()
	open := map[string]bool{}
	for _, e := range state.OpenComplaints() {
		open[e.CaseID] = true
	}
	tl := timelineView{CustomerID: id, Events: make([]eventView, len(events))}
	for i := range events {
		tl.Events[i] = newEventView(&events[i], open, now)
	}
	if len(events) == page.Limit {
		tl.Next = contact.CursorOf(&events[len(events)-1]).String()
	}
	if !page.After.IsZero() {
		return s.renderHTML(c, http.StatusOK, "timeline-page", tl)
	}
	p := s.cfg.Checker.Policy()
	v := newPanelView(id, &state, p, now)
	v.Timeline = tl
	v.Empty = len(events) == 0
	s.addLiveFacts(c, &v, p, now)
	if s.cfg.FollowUps != nil {
		if items, err := s.cfg.FollowUps.CustomerFollowUps(ctx, id); err != nil {
			s.log.Warn("page: unable to read the follow-ups", "error", err)
		} else {
			v.addFollowUps(items, now)
		}
	}
	v.Decisions = s.lastDecisions(c, id, now)
	return s.renderHTML(c, http.StatusOK, "panel", v)
}

// addLiveFacts adds what only a check can tell: who holds a claim on the
// customer and which suppression lists name them. Neither depends on the
// channel or purpose of the check.
func (s *Server) addLiveFacts(c echo.Context, v *panelView, p *dedupe.Policy, now time.Time) {
	if s.cfg.Checker == nil {
		return
	}
	req := dedupe.Request{CustomerID: v.CustomerID, Channel: contact.Call, Purpose: "service"}
	results, err := s.cfg.Checker.Check(c.Request().Context(), []dedupe.Request{req}, check.Options{Policy: p, NoAudit: true})
	if err != nil || len(results) != 1 || hasCode(results[0].Reasons, dedupe.CodeUnavailable) {
		s.log.Warn("page: unable to read claims and suppression lists", "error", err)
		v.LiveProblem = "Active calls and do-not-call lists could not be checked right now. Use “Can I call now?” before calling."
		return
	}
	for _, r := range results[0].Reasons {
		switch r.Code {
		case dedupe.CodeClaimed:
			cl := claimView{Agent: r.Agent, Campaign: r.Campaign}
			if r.ExpiresAt != nil {
				cl.Until = newStamp(*r.ExpiresAt, now)
			}
			v.Claims = append(v.Claims, cl)
		case dedupe.CodeDoNotCall:
			v.Suppressions = append(v.Suppressions, reasonView{Code: r.Code, Message: r.Message, List: r.List, Expires: stampPtr(r.ExpiresAt, now)})
		}
	}
}

// pageDecisions is how many of the last checks the page shows, and
// pageDecisionsWait how long it waits for them.
const (
	pageDecisions     = 5
	pageDecisionsWait = 2 * time.Second
)

// lastDecisions reads the customer's last checks of the day from the audit
// trail; none when it cannot be read in time (the page shows the rest).
func (s *Server) lastDecisions(c echo.Context, id string, now time.Time) []decisionView {
	if s.cfg.Decisions == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), pageDecisionsWait)
	defer cancel()
	recs, _, err := s.cfg.Decisions.Decisions(ctx, id, now.Add(-24*time.Hour), pageDecisions)
	if err != nil {
		s.log.Warn("page: unable to read the last checks", "error", err)
		return nil
	}
	var out []decisionView
	for _, r := range recs {
		if r.Kind != dedupe.RecordCheck || r.Request == nil {
			continue
		}
		v := decisionView{At: newStamp(r.Time, now), Who: r.Role, Campaign: r.Request.Campaign, Allowed: r.Allowed}
		if r.Request.Agent != "" {
			v.Who = r.Request.Agent
		}
		var codes []string
		for _, x := range r.Reasons {
			if !x.Warning && !slices.Contains(codes, x.Code) {
				codes = append(codes, x.Code)
			}
		}
		v.Codes = strings.Join(codes, ", ")
		out = append(out, v)
	}
	return out
}

// formField is the form value name without the spaces and tabs that
// typing adds around it. Other characters, such as a control character
// that Unicode counts as space, stay, for validation to refuse.
func formField(c echo.Context, name string) string {
	return strings.Trim(c.FormValue(name), " \t")
}

// pageCheck answers "Can I call now?" with the verdict of POST /v1/check,
// rendered. The page never claims: whatever the form says, Claim is false.
func (s *Server) pageCheck(c echo.Context) error {
	id, err := customerParam(c)
	if err != nil {
		return s.renderPageError(c, err)
	}
	req := dedupe.Request{
		CustomerID: id,
		Channel:    contact.Channel(c.FormValue("channel")),
		Purpose:    c.FormValue("purpose"),
		Product:    formField(c, "product"),
	}
	currency := strings.ToUpper(formField(c, "currency"))
	if currency != "" {
		if err := contact.ValidCurrency("offer.currency", currency); err != nil {
			return s.renderPageError(c, err)
		}
	}
	if p := formField(c, "price"); p != "" {
		if currency == "" {
			currency = s.cfg.Defaults.Currency
			if currency == "" {
				currency = contact.DefaultCurrency
			}
		}
		price, err := contact.ParseMoney("offer.price", p, "offer.currency", currency)
		if err != nil {
			return s.renderPageError(c, err)
		}
		req.Offer = &contact.Offer{Price: &price}
	}
	reqs := []dedupe.Request{req}
	results, err := s.decide(c, reqs, false)
	if err != nil {
		return s.renderPageError(c, err)
	}
	req = reqs[0] // normalized: the purpose defaults to sales
	now := s.cfg.Now()
	r := results[0]
	v := verdictView{Allowed: r.Allowed, Request: req, Checked: newStamp(now, now), ChannelName: channelNames[req.Channel], Action: channelActions[req.Channel]}
	if req.Offer != nil {
		v.Price = money(req.Offer.Price)
	}
	for _, x := range r.Reasons {
		rv := reasonView{Code: x.Code, Label: reasonLabels[x.Code], Message: x.Message, Warning: x.Warning, List: x.List, Expires: stampPtr(x.ExpiresAt, now)}
		if rv.Label == "" {
			rv.Label = x.Code
		}
		if x.Warning {
			v.Warnings++
		} else {
			v.Blocking++
		}
		v.Reasons = append(v.Reasons, rv)
	}
	return s.renderHTML(c, http.StatusOK, "verdict", v)
}
