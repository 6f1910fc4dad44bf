package check

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

// FollowUpIndex reads the index of open complaints that no one has followed
// up; contact/redis.Store is one.
type FollowUpIndex interface {
	FollowUpTeams(ctx context.Context) ([]string, error)
	IndexedFollowUps(ctx context.Context, ranges []contact.FollowUpRange) ([][]contact.FollowUp, error)
	OwnerFollowUps(ctx context.Context, owner string) ([]contact.FollowUp, error)
	CountFollowUps(ctx context.Context, ranges []contact.FollowUpRange) ([]int64, error)
	FollowUps(ctx context.Context, customerID string) ([]contact.FollowUp, error)
}

// FollowUpQuery selects follow-ups: those due, or those upcoming, of one
// team or all, of one owner or all, a page at a time.
type FollowUpQuery struct {
	State  string  // dedupe.FollowUpDue or dedupe.FollowUpUpcoming
	Team   *string // nil: every team
	Owner  string  // "": every owner
	Cursor string  // the Next of the previous page
	Limit  int
}

// MaxFollowUpPage is the largest page of follow-ups.
const MaxFollowUpPage = 500

// FollowUpItem is a follow-up with when it falls due.
type FollowUpItem struct {
	contact.FollowUp
	DueAt time.Time `json:"due_at,omitzero"` // zero when it never falls due
	State string    `json:"state"`
}

// FollowUpPage is a page of follow-ups, the soonest due first (for due
// ones: the longest overdue). Next, when set, asks for the next page.
type FollowUpPage struct {
	FollowUps []FollowUpItem `json:"followups"`
	Next      string         `json:"next,omitempty"`
}

// followUpCursor is where a page ended: its last item's (due, customer, case).
type followUpCursor struct {
	Due      int64  `json:"d"`
	Customer string `json:"c"`
	Case     string `json:"k"`
}

func (c followUpCursor) String() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func parseFollowUpCursor(s string) (*followUpCursor, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	var c followUpCursor
	if err != nil || json.Unmarshal(b, &c) != nil || c.Customer == "" {
		return nil, contact.Invalid("cursor", "is not a cursor from this API; use the next value of the previous page")
	}
	return &c, nil
}

func (c *followUpCursor) before(it *FollowUpItem) bool {
	return cmp.Or(cmp.Compare(c.Due, it.DueAt.UnixMilli()), strings.Compare(c.Customer, it.CustomerID), strings.Compare(c.Case, it.CaseID)) < 0
}

// FollowUps answers q under the policy in force. EInvalid for a bad query;
// EUnavailable when the index cannot be read.
func (s *Service) FollowUps(ctx context.Context, q FollowUpQuery) (FollowUpPage, error) {
	if s.cfg.FollowUps == nil {
		return FollowUpPage{}, contact.Errorf(contact.ENotFound, "this server keeps no follow-ups")
	}
	if q.Limit < 1 || q.Limit > MaxFollowUpPage {
		return FollowUpPage{}, contact.Invalid("limit", "must be a whole number from 1 to %d", MaxFollowUpPage)
	}
	if q.State != dedupe.FollowUpDue && q.State != dedupe.FollowUpUpcoming {
		return FollowUpPage{}, contact.Invalid("state", "must be due or upcoming; got %q", contact.Clip(q.State))
	}
	after, err := parseFollowUpCursor(q.Cursor)
	if err != nil {
		return FollowUpPage{}, err
	}
	p, now := s.cfg.Policy(), s.now()
	var found []contact.FollowUp
	if q.Owner != "" {
		found, err = s.cfg.FollowUps.OwnerFollowUps(ctx, q.Owner)
	} else {
		found, err = s.teamFollowUps(ctx, q, p, now, after)
	}
	if err != nil {
		return FollowUpPage{}, err
	}
	items := make([]FollowUpItem, 0, len(found))
	for _, f := range found {
		due, _ := p.FollowUpDue(&f)
		it := FollowUpItem{FollowUp: f, DueAt: due, State: p.FollowUpState(&f, now)}
		if it.State == q.State && (q.Team == nil || f.Team == *q.Team) && (after == nil || after.before(&it)) {
			items = append(items, it)
		}
	}
	slices.SortFunc(items, func(a, b FollowUpItem) int {
		return cmp.Or(a.DueAt.Compare(b.DueAt), strings.Compare(a.CustomerID, b.CustomerID), strings.Compare(a.CaseID, b.CaseID))
	})
	page := FollowUpPage{FollowUps: items[:min(len(items), q.Limit)]}
	if len(items) > q.Limit {
		last := page.FollowUps[q.Limit-1]
		page.Next = followUpCursor{last.DueAt.UnixMilli(), last.CustomerID, last.CaseID}.String()
	}
	return page, nil
}

// CustomerFollowUps returns the follow-ups of a customer's open complaints,
// followed up or not, with their state under the policy in force.
func (s *Service) CustomerFollowUps(ctx context.Context, customerID string) ([]FollowUpItem, error) {
	if s.cfg.FollowUps == nil {
		return nil, nil
	}
	fus, err := s.cfg.FollowUps.FollowUps(ctx, customerID)
	if err != nil {
		return nil, err
	}
	p, now := s.cfg.Policy(), s.now()
	out := make([]FollowUpItem, len(fus))
	for i, f := range fus {
		due, _ := p.FollowUpDue(&f)
		out[i] = FollowUpItem{FollowUp: f, DueAt: due, State: p.FollowUpState(&f, now)}
	}
	return out, nil
}

// teamFollowUps reads, per team in q, a page and one more of q's state
// after the cursor: due ones opened up to the team's SLA ago, upcoming
// ones since.
func (s *Service) teamFollowUps(ctx context.Context, q FollowUpQuery, p *dedupe.Policy, now time.Time, after *followUpCursor) ([]contact.FollowUp, error) {
	teams := []string{}
	if q.Team != nil {
		teams = append(teams, *q.Team)
	} else {
		var err error
		if teams, err = s.cfg.FollowUps.FollowUpTeams(ctx); err != nil {
			return nil, err
		}
	}
	var ranges []contact.FollowUpRange
	for _, team := range teams {
		sla := p.FollowUpSLA(team)
		if sla <= 0 {
			continue // never due
		}
		r := contact.FollowUpRange{Team: team, Limit: q.Limit + 1}
		if q.State == dedupe.FollowUpDue {
			r.To = now.Add(-sla)
		} else {
			r.From = now.Add(-sla + time.Millisecond)
		}
		if after != nil {
			r.After = &contact.FollowUp{CustomerID: after.Customer, CaseID: after.Case, OpenedAt: time.UnixMilli(after.Due).Add(-sla)}
		}
		ranges = append(ranges, r)
	}
	if len(ranges) == 0 {
		return nil, nil
	}
	pages, err := s.cfg.FollowUps.IndexedFollowUps(ctx, ranges)
	return slices.Concat(pages...), err
}

// FollowUpsDue counts the follow-ups due now, by team, under the policy in
// force.
func (s *Service) FollowUpsDue(ctx context.Context) (map[string]int64, error) {
	if s.cfg.FollowUps == nil {
		return nil, nil
	}
	teams, err := s.cfg.FollowUps.FollowUpTeams(ctx)
	if err != nil {
		return nil, err
	}
	p, now := s.cfg.Policy(), s.now()
	out := map[string]int64{}
	var ranges []contact.FollowUpRange
	for _, team := range teams {
		if sla := p.FollowUpSLA(team); sla > 0 {
			ranges = append(ranges, contact.FollowUpRange{Team: team, To: now.Add(-sla)})
		} else {
			out[team] = 0
		}
	}
	counts, err := s.cfg.FollowUps.CountFollowUps(ctx, ranges)
	if err != nil {
		return nil, err
	}
	for i, r := range ranges {
		out[r.Team] = counts[i]
	}
	return out, nil
}
