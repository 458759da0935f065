package httpapi

import (
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

// ResidentView is the case as its resident follows it through the receipt:
// GET /r/{token}?format=json, and what the page shows. It holds no
// personal data, no notes and no title (the street writes those, and they
// may name people or places): the case number, status, category and
// community, and a plain timeline.
type ResidentView struct {
	CaseNo      string          `json:"case_no"`
	Status      domain.Status   `json:"status"`
	StatusText  string          `json:"status_text"`
	Category    string          `json:"category"`
	Community   string          `json:"community"`
	RaisedAt    time.Time       `json:"raised_at"`
	ClosedAt    *time.Time      `json:"closed_at"`
	SecondRound bool            `json:"second_round"`
	Timeline    []TimelineEntry `json:"timeline"`
	// CanRate: the case is closed and this round is not rated yet through
	// the link; Rating: the rating given through it this round.
	CanRate bool           `json:"can_rate"`
	Rating  *domain.Rating `json:"rating"`
	Lang    string         `json:"lang"`
}

// TimelineEntry is one step of the case in plain words; Event is its code.
type TimelineEntry struct {
	At    time.Time `json:"at"`
	Event string    `json:"event"`
	Text  string    `json:"text"`
}

// residentTexts are the words of the resident's page in one language.
type residentTexts struct {
	lang, title, caseNo, status, category, community, raised, closed, timeline, rateTitle, rateButton,
	comment, commentHint, thanks, noReceipt, secondRound, tooMany string
	statuses map[domain.Status]string
	ratings  map[domain.Rating]string
	received, signed, assigned, assisting, claimed, reported, resolved, rejected, closedEv, returned,
	residentRated, reopened, calledBack, callbackRated string
}

var residentZH = residentTexts{
	lang: "zh", title: "诉求办理进度", caseNo: "受理编号", status: "当前状态", category: "诉求类别", community: "所在社区",
	raised: "受理时间", closed: "办结时间", timeline: "办理经过", rateTitle: "请您评价办理结果", rateButton: "提交评价",
	comment: "意见（可不填）", commentHint: "请不要在这里填写姓名或电话", thanks: "感谢您的评价。",
	noReceipt: "没有找到这个回执：请核对链接。", secondRound: "您对上次办理不满意，已重新办理（第二轮）。",
	tooMany: "访问太频繁，请稍后再试。",
	statuses: map[domain.Status]string{
		domain.StatusReceived: "已受理，待街道签收", domain.StatusRouted: "已派发，待部门接单", domain.StatusInProgress: "办理中",
		domain.StatusResolved: "已办理，街道核实中", domain.StatusClosed: "已办结", domain.StatusUnassigned: "街道重新派发中",
		domain.StatusReturned: "已退回",
	},
	ratings:  map[domain.Rating]string{domain.RatingSatisfied: "满意", domain.RatingBasicallySatisfied: "基本满意", domain.RatingUnsatisfied: "不满意"},
	received: "您的诉求已受理", signed: "街道已签收", assigned: "已交由%s办理", assisting: "%s协助办理", claimed: "%s已认领",
	reported: "%s已接单", resolved: "%s已办理完毕，待街道核实", rejected: "街道核实后要求继续办理", closedEv: "已办结",
	returned: "已退回上级平台", residentRated: "您的评价：%s", reopened: "已重新办理（第二轮），%s前办结",
	calledBack: "街道已回访", callbackRated: "回访评价：%s",
}

var residentEN = residentTexts{
	lang: "en", title: "Your request", caseNo: "Case number", status: "Status", category: "Category", community: "Community",
	raised: "Received", closed: "Closed", timeline: "What happened", rateTitle: "How satisfied are you with the result?",
	rateButton: "Send", comment: "Comment (optional)", commentHint: "Please do not write your name or phone number here",
	thanks: "Thank you for your rating.", noReceipt: "No such receipt: please check the link.",
	secondRound: "You were not satisfied: the case was reopened for a second round.",
	tooMany:     "Too many requests: please try again in a moment.",
	statuses: map[domain.Status]string{
		domain.StatusReceived: "received, waiting for the street office", domain.StatusRouted: "assigned, waiting for the department",
		domain.StatusInProgress: "in progress", domain.StatusResolved: "done, being checked by the street office",
		domain.StatusClosed: "closed", domain.StatusUnassigned: "being reassigned by the street office", domain.StatusReturned: "returned",
	},
	ratings:  map[domain.Rating]string{domain.RatingSatisfied: "satisfied", domain.RatingBasicallySatisfied: "basically satisfied", domain.RatingUnsatisfied: "not satisfied"},
	received: "Your request was received", signed: "The street office took it on", assigned: "Assigned to %s",
	assisting: "%s helps", claimed: "%s took it on", reported: "%s started work", resolved: "%s finished; the street office is checking",
	rejected: "The street office asked for more work", closedEv: "Closed", returned: "Sent back to the hotline",
	residentRated: "Your rating: %s", reopened: "Reopened for a second round, due by %s", calledBack: "The street office called you back",
	callbackRated: "Rating on the call: %s",
}

// residentText picks the page's language: ?lang=, else the preferred of
// Chinese and English in Accept-Language; Chinese when nothing says.
func residentText(r *http.Request) *residentTexts {
	switch r.URL.Query().Get("lang") {
	case "en":
		return &residentEN
	case "zh":
		return &residentZH
	}
	bestEN, bestZH := -1.0, -1.0
	for i, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0 - float64(i)*1e-3 // earlier wins a tie
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f - float64(i)*1e-3
			}
		}
		tag = strings.ToLower(tag)
		switch {
		case tag == "en" || strings.HasPrefix(tag, "en-"):
			bestEN = max(bestEN, q)
		case tag == "zh" || strings.HasPrefix(tag, "zh-"):
			bestZH = max(bestZH, q)
		}
	}
	if bestEN > bestZH && bestEN > 0 {
		return &residentEN
	}
	return &residentZH
}

// residentView builds what the resident sees of c from its history.
func (a *API) residentView(r *http.Request, history []domain.Envelope, c *domain.Case) ResidentView {
	tx := residentText(r)
	loc := a.cfg.Directory.WorkCalendar().Location()
	v := ResidentView{CaseNo: c.Receipt.CaseNo, Status: c.Status, StatusText: tx.statuses[c.Status], Category: c.Category,
		Community: c.Community, ClosedAt: c.ClosedAt, SecondRound: c.SecondRound, Timeline: []TimelineEntry{}, Lang: tx.lang}
	if c.RaisedAt != nil {
		v.RaisedAt = *c.RaisedAt
	}
	if cat, ok := a.cfg.Directory.Category(c.Category); ok {
		v.Category = cat.Name
	}
	if com, ok := a.cfg.Directory.Community(c.Street, c.Community); ok {
		v.Community = com.Name
	}
	if rr := c.ResidentRating; rr != nil && rr.Round == c.Round() {
		rating := rr.Rating
		v.Rating = &rating
	}
	v.CanRate = c.Status == domain.StatusClosed && v.Rating == nil && c.ClosedAt != nil &&
		!time.Now().After(c.ClosedAt.Add(domain.ResidentRatingWithin))
	name := a.orgName
	add := func(env domain.Envelope, text string) {
		v.Timeline = append(v.Timeline, TimelineEntry{At: env.OccurredAt, Event: env.Type, Text: text})
	}
	for _, env := range history {
		e, err := domain.DecodeEvent(env.Type, env.Data)
		if err != nil {
			continue
		}
		// Notes, declines, deadlines missed and escalations are the
		// offices' own business; reveals and forgetting concern the
		// requester's data, not the case.
		switch e := e.(type) {
		case domain.WhistleRaised, domain.TicketReceived:
			add(env, tx.received)
		case domain.TicketAccepted:
			add(env, tx.signed)
		case domain.AssignmentMade:
			switch e.Role {
			case domain.RoleLead:
				add(env, fmtText(tx.assigned, name(e.Assignee)))
			case domain.RoleAssist:
				add(env, fmtText(tx.assisting, name(e.Assignee)))
			}
		case domain.NeedClaimed:
			add(env, fmtText(tx.claimed, name(e.Assignee)))
		case domain.AssignmentReported:
			if e.Role == domain.RoleLead {
				add(env, fmtText(tx.reported, name(e.Assignee)))
			}
		case domain.AssignmentResolved:
			if e.Role == domain.RoleLead {
				add(env, fmtText(tx.resolved, name(e.Assignee)))
			}
		case domain.ResolutionRejected:
			add(env, tx.rejected)
		case domain.CaseClosed:
			add(env, tx.closedEv)
		case domain.TicketReturned:
			add(env, tx.returned)
		case domain.ResidentRated:
			add(env, fmtText(tx.residentRated, tx.ratings[e.Rating]))
		case domain.SecondRoundOpened:
			add(env, fmtText(tx.reopened, e.ResolveBy.In(loc).Format("2006-01-02 15:04")))
		case domain.CallbackMade:
			if e.Reached {
				add(env, tx.calledBack)
			}
			if e.Rating != "" {
				add(env, fmtText(tx.callbackRated, tx.ratings[e.Rating]))
			}
		case domain.SatisfactionRated:
			add(env, fmtText(tx.callbackRated, tx.ratings[e.Rating]))
		}
	}
	return v
}

func fmtText(format, arg string) string { return strings.Replace(format, "%s", arg, 1) }

// orgName is a department's or unit's name in the directory, else its id.
func (a *API) orgName(id string) string {
	for _, o := range a.cfg.Directory.Departments {
		if o.ID == id {
			return o.Name
		}
	}
	for _, o := range a.cfg.Directory.Units {
		if o.ID == id {
			return o.Name
		}
	}
	return id
}

var residentTmpl = template.Must(template.New("r").Funcs(template.FuncMap{
	"when": func(t any, loc *time.Location) string {
		switch t := t.(type) {
		case time.Time:
			return t.In(loc).Format("2006-01-02 15:04")
		case *time.Time:
			return t.In(loc).Format("2006-01-02 15:04")
		}
		return ""
	},
}).Parse(`<!doctype html>
<html lang="{{.T.lang}}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.T.title}} {{.V.CaseNo}}</title>
<style>
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,"PingFang SC","Noto Sans CJK SC",sans-serif;color:#1b1b1b;background:#f4f5f7}
main{max-width:36rem;margin:0 auto;padding:1rem}h1{font-size:1.25rem;margin:.25rem 0 1rem}
.card{background:#fff;border-radius:.5rem;padding:1rem;margin-bottom:1rem;box-shadow:0 1px 2px #0002}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem .75rem;margin:0}dt{color:#555}dd{margin:0;overflow-wrap:anywhere}
.status{font-weight:700;color:#0b5cad}ol{list-style:none;margin:0;padding:0}
li{padding:.5rem 0 .5rem 1rem;border-left:3px solid #0b5cad;margin-left:.25rem}li time{display:block;color:#666;font-size:.875rem}
fieldset{border:0;padding:0;margin:0 0 .75rem}label{display:block;padding:.5rem 0;font-size:1.0625rem}
input[type=radio]{width:1.25rem;height:1.25rem;vertical-align:middle;margin-right:.5rem}
textarea{width:100%;min-height:5rem;font:inherit;padding:.5rem}small{color:#666}
button{width:100%;margin-top:.75rem;padding:.75rem;font:inherit;font-size:1.0625rem;color:#fff;background:#0b5cad;border:0;border-radius:.375rem}
.note{color:#8a4b00}
</style></head><body><main>
<h1>{{.T.title}}</h1>
<section class="card"><dl>
<dt>{{.T.caseNo}}</dt><dd id="case-no">{{.V.CaseNo}}</dd>
<dt>{{.T.status}}</dt><dd class="status" id="status">{{.V.StatusText}}</dd>
<dt>{{.T.category}}</dt><dd>{{.V.Category}}</dd>
<dt>{{.T.community}}</dt><dd>{{.V.Community}}</dd>
<dt>{{.T.raised}}</dt><dd>{{when .V.RaisedAt .Loc}}</dd>
{{if .V.ClosedAt}}<dt>{{.T.closed}}</dt><dd>{{when .V.ClosedAt .Loc}}</dd>{{end}}
</dl>{{if .V.SecondRound}}<p class="note">{{.T.secondRound}}</p>{{end}}</section>
<section class="card"><h2 style="font-size:1.0625rem;margin:0 0 .5rem">{{.T.timeline}}</h2><ol id="timeline">
{{range .V.Timeline}}<li><time>{{when .At $.Loc}}</time>{{.Text}}</li>{{end}}
</ol></section>
{{if .V.CanRate}}<section class="card"><form id="rate"><h2 style="font-size:1.0625rem;margin:0 0 .5rem">{{.T.rateTitle}}</h2>
<fieldset>{{range .Ratings}}<label><input type="radio" name="rating" value="{{.Value}}" required>{{.Text}}</label>{{end}}</fieldset>
<label for="comment">{{.T.comment}}</label><textarea id="comment" name="comment" maxlength="500"></textarea><small>{{.T.commentHint}}</small>
<button type="submit">{{.T.rateButton}}</button><p id="rate-error" class="note" role="alert"></p></form></section>
<script>
document.getElementById("rate").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target), body = {rating: f.get("rating")};
  if (f.get("comment")) body.comment = f.get("comment");
  const res = await fetch(location.pathname + "/rating", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  if (res.ok) { location.reload(); return; }
  const e = await res.json().catch(() => ({}));
  document.getElementById("rate-error").textContent = (e.error && e.error.message) || res.status;
});
</script>{{else if .V.Rating}}<p class="card">{{.T.thanks}}</p>{{end}}
</main></body></html>
`))

func writeResidentPage(w http.ResponseWriter, v ResidentView, loc *time.Location) {
	tx := &residentZH
	if v.Lang == "en" {
		tx = &residentEN
	}
	type choice struct{ Value, Text string }
	var ratings []choice
	for _, rt := range domain.Ratings() {
		ratings = append(ratings, choice{string(rt), tx.ratings[rt]})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", tx.lang)
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'")
	w.WriteHeader(http.StatusOK)
	_ = residentTmpl.Execute(w, map[string]any{"T": tx.page(), "V": v, "Loc": loc, "Ratings": ratings})
}

// page is the words the page's template shows.
func (t *residentTexts) page() map[string]string {
	return map[string]string{
		"lang": t.lang, "title": t.title, "caseNo": t.caseNo, "status": t.status, "category": t.category,
		"community": t.community, "raised": t.raised, "closed": t.closed, "timeline": t.timeline,
		"rateTitle": t.rateTitle, "rateButton": t.rateButton, "comment": t.comment, "commentHint": t.commentHint,
		"thanks": t.thanks, "secondRound": t.secondRound,
	}
}
