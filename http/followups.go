package http

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/check"
)

// FollowUpLister lists the follow-ups of open complaints; check.Service is
// one.
type FollowUpLister interface {
	FollowUps(ctx context.Context, q check.FollowUpQuery) (check.FollowUpPage, error)
	CustomerFollowUps(ctx context.Context, customerID string) ([]check.FollowUpItem, error)
}

// followUpsPageSize is how many follow-ups of each state the team leads'
// page shows.
const followUpsPageSize = 200

func (s *Server) registerFollowUps() {
	s.echo.GET("/v1/followups", s.followUps, s.authorize(RoleAgent))
	s.echo.GET("/followups", s.pageFollowUps)
	s.echo.GET("/followups/panel", s.pageFollowUpsPanel, s.authorize(RoleAgent))
}

// followUps answers GET /v1/followups?state=due|upcoming&team=&owner=&limit=&cursor=.
func (s *Server) followUps(c echo.Context) error {
	if s.cfg.FollowUps == nil {
		return contact.Errorf(contact.ENotFound, "this server keeps no follow-ups")
	}
	q, err := followUpQuery(c.QueryParams())
	if err != nil {
		return err
	}
	page, err := s.cfg.FollowUps.FollowUps(c.Request().Context(), q)
	if err != nil {
		return err
	}
	if page.FollowUps == nil {
		page.FollowUps = []check.FollowUpItem{}
	}
	return c.JSON(http.StatusOK, page)
}

// followUpQuery reads the query of GET /v1/followups. A team= that is
// present but empty asks for the cases of no team.
func followUpQuery(query url.Values) (check.FollowUpQuery, error) {
	q := check.FollowUpQuery{State: dedupe.FollowUpDue, Limit: 50, Owner: query.Get("owner"), Cursor: query.Get("cursor")}
	if v := query.Get("state"); v != "" {
		q.State = v
	}
	if vs, ok := query["team"]; ok {
		q.Team = &vs[0]
	}
	if v := query.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > check.MaxFollowUpPage {
			return q, contact.Invalid("limit", "must be a whole number from 1 to %d", check.MaxFollowUpPage)
		}
		q.Limit = n
	}
	for _, f := range [...]struct{ name, value string }{{"owner", q.Owner}, {"team", query.Get("team")}} {
		if err := contact.ValidText(f.name, f.value); err != nil {
			return q, err
		}
	}
	return q, nil
}

// followUpsView is the data of the team leads' page.
type followUpsView struct {
	Team, Owner             string
	Due, Upcoming           []ownerGroup
	DueCount, UpcomingCount int
	DueMore, UpcomingMore   bool // more than shown
}

// ownerGroup is the cases of one owner.
type ownerGroup struct {
	Owner string // "" for cases no one owns
	Cases []followUpView
}

type followUpView struct {
	CustomerID, CustomerURL, CaseID, Team, Summary string
	Opened, Due                                    stamp
	LastRecovery                                   *touchView
}

type touchView struct {
	Agent, Channel, Purpose string
	At                      stamp
}

// pageFollowUps serves the shell of the team leads' page; its script loads
// the panel with the filters of the URL.
func (s *Server) pageFollowUps(c echo.Context) error {
	src := url.Values{}
	for _, k := range []string{"team", "owner"} {
		if v := c.QueryParam(k); v != "" {
			src.Set(k, v)
		}
	}
	return s.renderShell(c, http.StatusOK, shellView{FollowUps: true, Team: c.QueryParam("team"), Owner: c.QueryParam("owner"),
		PanelSrc: "/followups/panel?" + src.Encode()})
}

// pageFollowUpsPanel renders the due and upcoming cases, by owner.
func (s *Server) pageFollowUpsPanel(c echo.Context) error {
	if s.cfg.FollowUps == nil {
		return s.renderPageError(c, contact.Errorf(contact.ENotFound, "this server keeps no follow-ups"))
	}
	v := followUpsView{Team: c.QueryParam("team"), Owner: c.QueryParam("owner")}
	now := s.cfg.Now()
	for _, state := range []string{dedupe.FollowUpDue, dedupe.FollowUpUpcoming} {
		query := url.Values{"state": {state}, "limit": {strconv.Itoa(followUpsPageSize)}, "owner": {v.Owner}}
		if v.Team != "" { // empty is the form's "every team"
			query.Set("team", v.Team)
		}
		q, err := followUpQuery(query)
		if err != nil {
			return s.renderPageError(c, err)
		}
		page, err := s.cfg.FollowUps.FollowUps(c.Request().Context(), q)
		if err != nil {
			return s.renderPageError(c, err)
		}
		groups := groupByOwner(page.FollowUps, now)
		if state == dedupe.FollowUpDue {
			v.Due, v.DueCount, v.DueMore = groups, len(page.FollowUps), page.Next != ""
		} else {
			v.Upcoming, v.UpcomingCount, v.UpcomingMore = groups, len(page.FollowUps), page.Next != ""
		}
	}
	return s.renderHTML(c, http.StatusOK, "followups", v)
}

// groupByOwner groups items by owner, in the order each owner first
// appears: the owner of the longest overdue case first.
func groupByOwner(items []check.FollowUpItem, now time.Time) []ownerGroup {
	var groups []ownerGroup
	at := map[string]int{}
	for _, it := range items {
		i, ok := at[it.Owner]
		if !ok {
			i = len(groups)
			at[it.Owner] = i
			groups = append(groups, ownerGroup{Owner: it.Owner})
		}
		groups[i].Cases = append(groups[i].Cases, newFollowUpView(&it, now))
	}
	return groups
}

func newFollowUpView(it *check.FollowUpItem, now time.Time) followUpView {
	v := followUpView{CustomerID: it.CustomerID, CustomerURL: "/customers/" + url.PathEscape(it.CustomerID), CaseID: it.CaseID,
		Team: it.Team, Summary: it.Summary, Opened: newStamp(it.OpenedAt, now), Due: newStamp(it.DueAt, now)}
	if t := it.LastRecovery; t != nil {
		v.LastRecovery = &touchView{Agent: t.Agent, Channel: channelNames[t.Channel], Purpose: t.Purpose, At: newStamp(t.At, now)}
	}
	return v
}
