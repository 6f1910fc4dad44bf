package http

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
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
	for _, a := range pageAssets {
		s.echo.GET("/assets/"+a.name, a.serve)
	}
}

// shellView is the data of the page shell.
type shellView struct {
	CustomerID string
	Auth       bool   // whether the page must ask for a key
	Problem    string // why the customer id in the URL cannot be shown
	AssetCSS   string
	AssetJS    string
}

// pageHome serves the shell with only the search box. The search form is a
// plain GET form, so ?customer= redirects to the customer's own URL.
func (s *Server) pageHome(c echo.Context) error {
	if id := strings.TrimSpace(c.QueryParam("customer")); id != "" {
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
		Product:    strings.TrimSpace(c.FormValue("product")),
	}
	if p := strings.TrimSpace(c.FormValue("price")); p != "" {
		currency := strings.ToUpper(strings.TrimSpace(c.FormValue("currency")))
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

// stamp is a time as the page shows it: relative to now and absolute in
// UTC. The script rewrites both in the agent's local time.
type stamp struct {
	ISO string // RFC 3339, for <time datetime>
	Abs string // "Mon 23 Nov 2026 09:00 UTC"
	Rel string // "2h ago", "in 3d"
	Day string // "23 Nov 2026"
}

func newStamp(t, now time.Time) stamp {
	t = t.UTC()
	return stamp{ISO: t.Format(time.RFC3339), Abs: t.Format("Mon 2 Jan 2006 15:04 UTC"), Rel: dedupe.Ago(t, now), Day: t.Format("2 Jan 2006")}
}

func stampPtr(t *time.Time, now time.Time) *stamp {
	if t == nil {
		return nil
	}
	s := newStamp(*t, now)
	return &s
}

func money(p *contact.Money) string {
	if p == nil {
		return ""
	}
	return p.String()
}

func hasCode(rs []dedupe.Reason, code string) bool {
	for _, r := range rs {
		if r.Code == code {
			return true
		}
	}
	return false
}

var channelNames = map[contact.Channel]string{
	contact.Call: "Call", contact.SMS: "SMS", contact.Email: "Email",
	contact.Mail: "Letter", contact.Visit: "Visit", contact.Chat: "Chat",
}

// channelActions complete "you may … now".
var channelActions = map[contact.Channel]string{
	contact.Call: "call", contact.SMS: "send an SMS", contact.Email: "send an email",
	contact.Mail: "send a letter", contact.Visit: "visit", contact.Chat: "start a chat",
}

// optChannelNames complete "Opted out of …".
var optChannelNames = map[contact.Channel]string{
	contact.Call: "calls", contact.SMS: "SMS", contact.Email: "email",
	contact.Mail: "letters", contact.Visit: "visits", contact.Chat: "chat",
}

// optOutNames say what an opt-out of a channel stops.
var optOutNames = map[contact.Channel]string{
	contact.Call: "No calls", contact.SMS: "No SMS", contact.Email: "No email",
	contact.Mail: "No letters", contact.Visit: "No visits", contact.Chat: "No chat",
}

var reasonLabels = map[string]string{
	dedupe.CodeOptedOut:         "Opted out",
	dedupe.CodeDoNotCall:        "Do-not-call list",
	dedupe.CodeClaimed:          "Someone is calling now",
	dedupe.CodeOpenComplaint:    "Open complaint",
	dedupe.CodeQuietHours:       "Quiet hours",
	dedupe.CodeRecentContact:    "Contacted recently",
	dedupe.CodeFrequencyCap:     "Contacted too often",
	dedupe.CodeAlreadyPurchased: "Already bought",
	dedupe.CodeBetterOffer:      "A better offer stands",
	dedupe.CodeUnavailable:      "History unavailable",
}

// Outcome tones colour the outcome pill.
var outcomeTones = map[string]string{
	"sale": "good", "connected": "info", "delivered": "info", "sent": "info", "callback_requested": "info",
	"voicemail": "muted", "no_answer": "muted", "busy": "muted",
	"refused": "bad", "bounced": "bad", "complaint": "bad",
}

// panelView is the data of the customer panel.
type panelView struct {
	CustomerID   string
	CheckURL     string // where the check form posts
	Complaints   []complaintView
	Claims       []claimView
	Suppressions []reasonView
	LiveProblem  string // claims and lists could not be read
	Products     []productView
	Offers       []offerView
	OptOuts      []optOutView
	LastContacts []lastContactView
	Decisions    []decisionView // the last checks, from the audit trail
	Timeline     timelineView
	Empty        bool // nothing on record
	// For the check form.
	Channels       []option
	Purposes       []option
	ProductChoices []string
	Currency       string
}

type option struct{ Value, Label string }

type complaintView struct {
	CaseID, Owner, Summary string
	Opened                 stamp
	Product                string
}

type claimView struct {
	Agent, Campaign string
	Until           stamp
}

type productView struct {
	Product, Price, OrderID string
	Bought                  stamp
}

type offerView struct {
	Product, Price, Channel, Campaign, Agent string
	Made, Expires                            stamp
}

type optOutView struct {
	What, Reason string
	Since        stamp
}

type lastContactView struct {
	Channel, Icon, Agent, Outcome string
	At                            stamp
}

// decisionView is a check of the audit trail: "checked 4 min ago by dialer
// for campaign autumn: blocked, recent_contact".
type decisionView struct {
	At       stamp
	Who      string // the role, or the agent
	Campaign string
	Allowed  bool
	Codes    string
}

type reasonView struct {
	Code, Label, Message, List string
	Warning                    bool
	Expires                    *stamp
}

type timelineView struct {
	CustomerID string
	Events     []eventView
	Next       string // before= of the next page, when there may be one
}

// eventView is one timeline entry, ready to render.
type eventView struct {
	ID        string
	Kind      string // contact, purchase, complaint, complaint-resolved, opt
	Icon      string // the id of its icon in the page's sprite
	Title     string
	Direction string // outbound or inbound, for contacts
	Agent     string
	Team      string
	Outcome   string
	Tone      string // the outcome's colour
	Summary   string // a complaint's summary or an opt-out's reason
	Note      string // "since resolved", for a complaint no longer open
	Facts     []fact
	At        stamp
}

type fact struct {
	Name, Value string
	Until       *stamp // an offer's expiry
}

// newEventView prepares e for the timeline; open holds the case ids of the
// complaints still open, so that an old complaint reads as such.
func newEventView(e *contact.Event, open map[string]bool, now time.Time) eventView {
	v := eventView{ID: e.ID, At: newStamp(e.At, now), Agent: e.Agent, Team: e.Team}
	add := func(name, value string) {
		if value != "" {
			v.Facts = append(v.Facts, fact{Name: name, Value: value})
		}
	}
	switch e.Type {
	case contact.TypeContact:
		v.Kind, v.Icon, v.Title = "contact", "i-"+string(e.Channel), channelNames[e.Channel]
		v.Direction = string(e.Direction)
		if v.Direction == "" {
			v.Direction = string(contact.Outbound)
		}
		v.Outcome = strings.ReplaceAll(e.Outcome, "_", " ")
		v.Tone = outcomeTones[e.Outcome]
		add("Campaign", e.Campaign)
		add("Purpose", e.Purpose)
		add("Product", e.Product)
		if o := e.Offer; o != nil {
			f := fact{Name: "Offer", Value: money(o.Price), Until: stampPtr(o.ExpiresAt, now)}
			if f.Value == "" {
				f.Value = o.ID
			}
			v.Facts = append(v.Facts, f)
		}
	case contact.TypePurchase:
		v.Kind, v.Icon, v.Title = "purchase", "i-purchase", "Bought "+e.Product
		add("Price", money(e.Price))
		add("Order", e.OrderID)
		add("Channel", channelNames[e.Channel])
	case contact.TypeComplaint:
		v.Kind, v.Icon, v.Title = "complaint", "i-complaint", "Complaint opened"
		switch {
		case e.Status == contact.ComplaintResolved:
			v.Kind, v.Icon, v.Title = "complaint-resolved", "i-resolved", "Complaint resolved"
		case !open[e.CaseID]:
			v.Kind, v.Note = "complaint-closed", "since resolved"
		}
		v.Summary = e.Summary
		add("Case", e.CaseID)
		add("Owner", e.Owner)
		add("Product", e.Product)
	case contact.TypeOptOut, contact.TypeOptIn:
		what := "all channels"
		if e.Channel != "" {
			what = optChannelNames[e.Channel]
		}
		v.Kind, v.Icon, v.Title = "opt", "i-optout", "Opted out of "+what
		if e.Type == contact.TypeOptIn {
			v.Icon, v.Title = "i-optin", "Opted in to "+what
		}
		v.Summary = e.Reason
	default:
		v.Kind, v.Icon, v.Title = "contact", "i-info", string(e.Type)
	}
	if v.Title == "" {
		v.Title = string(e.Channel)
	}
	return v
}

func newPanelView(id string, st *contact.State, p *dedupe.Policy, now time.Time) panelView {
	v := panelView{CustomerID: id, CheckURL: "/customers/" + url.PathEscape(id) + "/check"}
	for _, e := range st.OpenComplaints() {
		v.Complaints = append(v.Complaints, complaintView{CaseID: e.CaseID, Owner: e.Owner, Summary: e.Summary, Product: e.Product, Opened: newStamp(e.At, now)})
	}
	// The oldest open complaint has waited longest: it leads.
	slices.SortStableFunc(v.Complaints, func(a, b complaintView) int { return strings.Compare(a.Opened.ISO, b.Opened.ISO) })

	products := map[string]bool{}
	for product, e := range st.Purchases {
		v.Products = append(v.Products, productView{Product: product, Price: money(e.Price), OrderID: e.OrderID, Bought: newStamp(e.At, now)})
		products[product] = true
	}
	slices.SortFunc(v.Products, func(a, b productView) int {
		if c := strings.Compare(b.Bought.ISO, a.Bought.ISO); c != 0 {
			return c
		}
		return strings.Compare(a.Product, b.Product)
	})

	for _, e := range st.Offers { // newest first
		o := e.Offer
		if o == nil {
			continue
		}
		expires := e.At.Add(p.OfferWindow())
		if o.ExpiresAt != nil {
			expires = *o.ExpiresAt
		}
		if !expires.After(now) {
			continue
		}
		v.Offers = append(v.Offers, offerView{Product: e.Product, Price: money(o.Price), Channel: channelNames[e.Channel],
			Campaign: e.Campaign, Agent: e.Agent, Made: newStamp(e.At, now), Expires: newStamp(expires, now)})
		if o.Price != nil && v.Currency == "" {
			v.Currency = o.Price.Currency
		}
		if e.Product != "" {
			products[e.Product] = true
		}
	}

	// An opt-out of every channel shows on each channel: show it once.
	seen := map[string]bool{}
	for _, ch := range contact.Channels {
		e, ok := st.OptOutInForce(ch)
		if !ok {
			continue
		}
		what := optOutNames[ch]
		if e.Channel == "" {
			if seen[e.ID] {
				continue
			}
			seen[e.ID] = true
			what = "No contact on any channel"
		}
		v.OptOuts = append(v.OptOuts, optOutView{What: what, Reason: e.Reason, Since: newStamp(e.At, now)})
	}

	for _, ch := range contact.Channels {
		if e, ok := st.LastContacts[ch]; ok {
			v.LastContacts = append(v.LastContacts, lastContactView{Channel: channelNames[ch], Icon: "i-" + string(ch), Agent: e.Agent,
				Outcome: strings.ReplaceAll(e.Outcome, "_", " "), At: newStamp(e.At, now)})
		}
	}
	slices.SortStableFunc(v.LastContacts, func(a, b lastContactView) int { return strings.Compare(b.At.ISO, a.At.ISO) })

	for _, ch := range contact.Channels {
		v.Channels = append(v.Channels, option{string(ch), channelNames[ch]})
	}
	for _, p := range contact.Purposes {
		v.Purposes = append(v.Purposes, option{p, strings.ToUpper(p[:1]) + p[1:]})
	}
	for product := range products {
		v.ProductChoices = append(v.ProductChoices, product)
	}
	slices.Sort(v.ProductChoices)
	return v
}

// verdictView is the answer to "Can I call now?".
type verdictView struct {
	Allowed     bool
	Blocking    int
	Warnings    int
	Reasons     []reasonView
	Request     dedupe.Request
	ChannelName string
	Action      string // "call", "send an SMS"…
	Price       string
	Checked     stamp
}

// pageAsset is an embedded file served with a strong ETag, so that a
// browser revalidates it cheaply.
type pageAsset struct {
	name, contentType string
	body              []byte
	etag              string
}

var pageAssets = func() map[string]*pageAsset {
	m := map[string]*pageAsset{}
	for name, ct := range map[string]string{"page.css": "text/css; charset=utf-8", "page.js": "text/javascript; charset=utf-8", "insights.js": "text/javascript; charset=utf-8"} {
		body, err := fs.ReadFile(webFiles, "web/"+name)
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(body)
		m[name] = &pageAsset{name: name, contentType: ct, body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return m
}()

// assetURL names an asset with its hash, so that a new build is never
// served a stale copy.
func assetURL(name string) string {
	a := pageAssets[name]
	return "/assets/" + name + "?v=" + strings.Trim(a.etag, `"`)
}

func (a *pageAsset) serve(c echo.Context) error {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, a.contentType)
	h.Set("ETag", a.etag)
	h.Set(echo.HeaderCacheControl, "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if match := c.Request().Header.Get("If-None-Match"); match == a.etag {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, a.contentType, a.body)
}
