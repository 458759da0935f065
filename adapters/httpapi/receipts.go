package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/adapters/casestate"
	"github.com/whistle-gov/whistle/adapters/pii"
	"github.com/whistle-gov/whistle/domain"
	"github.com/whistle-gov/whistle/domain/view"
	"github.com/whistle-gov/whistle/projections"
	"go.uber.org/zap"
)

// CaseNumbers hands out receipts' case numbers (caseno.Numbers).
type CaseNumbers interface {
	Next(ctx context.Context, street string, now time.Time) (string, error)
	// TokenSecret is shared by every whistled on the bus (derivedToken).
	TokenSecret() []byte
}

// CallbackList is the streets' callback lists (projections.Board).
type CallbackList interface {
	Callbacks(street string) []projections.CallbackItem
}

// ReceiptView is a case's receipt as its street sees it. Link is in the
// answer that issued it only: the token is stored nowhere but in that
// answer (the log holds its hash).
type ReceiptView = view.ReceiptView

// A receipt's token is the case id (16 bytes) and 16 random bytes, in
// base64url: the case is found without an index, and the random part is
// what makes the link unguessable.
const tokenLen = 43

type receiptTokenKey struct{}

// newReceipt makes a token for caseID and returns it with the receipt to
// decide (its case number taken for street unless caseNo is given). The
// token's secret part is random, or, given the id of a command that may be
// retried (a keyed raise, a ticket), derived from it (derivedToken).
func (a *API) newReceipt(ctx context.Context, caseID, street, caseNo, retriedCommandID string) (string, *domain.Receipt, error) {
	id, err := uuid.Parse(caseID)
	if err != nil {
		return "", nil, err
	}
	raw := make([]byte, 32)
	copy(raw, id[:])
	if retriedCommandID != "" {
		copy(raw[16:], derivedToken(a.cfg.CaseNumbers.TokenSecret(), retriedCommandID))
	} else if _, err := rand.Read(raw[16:]); err != nil {
		return "", nil, err
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	if caseNo == "" {
		if caseNo, err = a.cfg.CaseNumbers.Next(ctx, street, time.Now()); err != nil {
			return "", nil, err
		}
	}
	return token, &domain.Receipt{CaseNo: caseNo, TokenSHA256: tokenSHA256(token)}, nil
}

// derivedToken is the secret part of the token of a command that may be
// retried: an HMAC of its id under the deployment's secret. The retry,
// answered with the case its first try made, then makes that case's token
// again and so can show the link, which is stored only hashed. It is as
// unguessable as a random one while the secret is kept.
func derivedToken(secret []byte, commandID string) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("whistle receipt token\x00" + commandID))
	return mac.Sum(nil)[:16]
}

func tokenSHA256(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

// caseOfToken reads the case id out of a token; false for anything that is
// not one.
func caseOfToken(token string) (string, bool) {
	if len(token) != tokenLen {
		return "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != 32 {
		return "", false
	}
	id, err := uuid.FromBytes(raw[:16])
	if err != nil {
		return "", false
	}
	return id.String(), true
}

// withReceiptToken carries a token drawn for a command to its answer.
func withReceiptToken(r *http.Request, token string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), receiptTokenKey{}, token))
}

// receiptView is the case's receipt for its own street and for the
// platform that sent its ticket (who tell the resident; nil for anyone
// else, and for a case without one), with the link when this request drew
// the token the case holds.
func receiptView(r *http.Request, c *domain.Case) *ReceiptView {
	actor := actorOf(r)
	if c == nil || c.Receipt == nil {
		return nil
	}
	ownStreet := actor.Role == domain.ActorStreet && actor.ID == c.Street
	sender := actor.Role == domain.ActorPlatform && c.Source != nil && actor.ID == c.Source.Platform
	if !ownStreet && !sender {
		return nil
	}
	v := &ReceiptView{CaseNo: c.Receipt.CaseNo, IssuedAt: c.Receipt.IssuedAt}
	if token, _ := r.Context().Value(receiptTokenKey{}).(string); token != "" && c.ReceiptMatches(tokenSHA256(token)) {
		v.Link = "/r/" + token
	}
	return v
}

// residentRatingView is the resident's own rating, for the case's street,
// its comment opened (or marked forgotten once the case's key is gone). A
// key store that does not answer leaves the comment out, logged.
func (a *API) residentRatingView(r *http.Request, c *domain.Case) *domain.ResidentRating {
	actor := actorOf(r)
	if c == nil || c.ResidentRating == nil || actor.Role != domain.ActorStreet || actor.ID != c.Street {
		return nil
	}
	rr := *c.ResidentRating
	if rr.CommentSealed == nil {
		return &rr
	}
	var err error
	if c.RequesterForgotten {
		err = pii.ErrNoKey
	} else if a.cfg.Requesters == nil {
		err = errNoVault
	} else {
		rr.Comment, err = a.cfg.Requesters.OpenText(r.Context(), commentPurpose, *rr.CommentSealed)
	}
	switch {
	case errors.Is(err, pii.ErrNoKey):
		rr.CommentForgotten = true
	case err != nil:
		a.cfg.Log.Warn("resident's comment left out of the answer", zap.String("case_id", c.ID), zap.Error(err))
	}
	return &rr
}

// commentPurpose is what a rating's comment is sealed as (pii.Key.SealText).
const commentPurpose = "comment"

// sealComment seals a resident's comment under the case's key (made now
// when the case has no requester); nil for no comment. On failure it has
// written the answer.
func (a *API) sealComment(w http.ResponseWriter, r *http.Request, caseID, comment string) (*domain.SealedText, bool) {
	if comment == "" {
		return nil, true
	}
	if a.cfg.Requesters == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "this service keeps no comments: it runs without a key store; rate without one", "comment")
		return nil, false
	}
	key, err := a.cfg.Requesters.Key(r.Context(), caseID)
	var sealed domain.SealedText
	if err == nil {
		sealed, err = key.SealText(commentPurpose, comment)
	}
	if err != nil {
		a.cfg.Log.Warn("resident's comment not sealed", zap.String("case_id", caseID), zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, "unavailable", "please try again in a moment", "")
		return nil, false
	}
	return &sealed, true
}

// receiptFor draws the receipt of a case-creating command (a raise, a
// ticket) that will be accepted (decided first, as for its requester, so
// that no number is taken for a refused one); nil without a case-number
// store. retriedCommandID: see newReceipt. On failure it has written the
// answer.
func (a *API) receiptFor(w http.ResponseWriter, r *http.Request, caseID, street, retriedCommandID string, cmd domain.Command) (string, *domain.Receipt, bool) {
	if a.cfg.CaseNumbers == nil {
		return "", nil, true
	}
	if err := domain.Authorize(nil, actorOf(r), cmd); err != nil {
		a.writeFailure(w, err)
		return "", nil, false
	}
	if _, err := domain.Decide(nil, cmd, a.cfg.Directory, time.Now()); err != nil {
		a.writeFailure(w, err)
		return "", nil, false
	}
	token, receipt, err := a.newReceipt(r.Context(), caseID, street, "", retriedCommandID)
	if err != nil {
		a.writeFailure(w, err)
		return "", nil, false
	}
	return token, receipt, true
}

// reissueReceipt answers POST /v1/cases/{id}/receipt (the case's street):
// a new link, the old one dead; the case keeps its number (one is taken
// for a case raised before receipts).
func (a *API) reissueReceipt(w http.ResponseWriter, r *http.Request, caseID string) {
	if a.cfg.CaseNumbers == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "this service issues no receipts: it runs without a case-number store", "")
		return
	}
	if !decodeBody(w, r, &struct{}{}, true) {
		return
	}
	history, err := casestate.ReadHistory(r.Context(), a.cfg.Store, caseID)
	if err != nil {
		a.writeFailure(w, err)
		return
	}
	c, err := domain.Replay(caseID, history)
	if err == nil && !c.Exists() {
		err = &domain.Refusal{Err: domain.ErrNoCase, Reason: "no case " + caseID}
	}
	if err == nil {
		// Authorized before a number is taken for it.
		err = domain.Authorize(c, actorOf(r), domain.IssueReceipt{})
	}
	if err != nil {
		a.writeFailure(w, err)
		return
	}
	caseNo := ""
	if c.Receipt != nil {
		caseNo = c.Receipt.CaseNo
	}
	token, receipt, err := a.newReceipt(r.Context(), caseID, c.Street, caseNo, "")
	if err != nil {
		a.writeFailure(w, err)
		return
	}
	req := casehandler.Request{CaseID: caseID, Actor: actorOf(r), CommandID: mustV7(),
		Command: domain.IssueReceipt{CaseNo: receipt.CaseNo, TokenSHA256: receipt.TokenSHA256}}
	a.execute(w, withReceiptToken(r, token), req, http.StatusOK)
}

// callbacks answers GET /v1/callbacks: the callbacks due in the caller's
// street (an auditor: every street's, or ?street=), the longest waiting
// first. The phone is revealed case by case, recorded
// (GET /v1/cases/{id}?reveal=requester).
func (a *API) callbacks(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "street")
	if !ok {
		return
	}
	street, err := domain.ScopeNotifications(actorOf(r), q.Get("street"), a.cfg.Directory)
	if err != nil {
		a.writeFailure(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"callbacks": a.cfg.Callbacks.Callbacks(street)})
}

// residentCase reads the case a receipt's token names, if the token is
// its current link; false (the answer written: 404, the same whether the
// case exists or not) otherwise.
func (a *API) residentCase(w http.ResponseWriter, r *http.Request) (string, []domain.Envelope, *domain.Case, bool) {
	token := r.PathValue("token")
	caseID, ok := caseOfToken(token)
	var history []domain.Envelope
	var c *domain.Case
	if ok {
		var err error
		if history, err = casestate.ReadHistory(r.Context(), a.cfg.Store, caseID); err != nil {
			a.cfg.Log.Warn("receipt page: case not read", zap.String("case_id", caseID), zap.Error(err))
			writeError(w, http.StatusServiceUnavailable, "unavailable", "please try again in a moment", "")
			return "", nil, nil, false
		}
		if c, err = domain.Replay(caseID, history); err != nil {
			a.writeFailure(w, err)
			return "", nil, nil, false
		}
	}
	if !ok || !c.Exists() || !c.ReceiptMatches(tokenSHA256(token)) {
		writeNoReceipt(w, r)
		return "", nil, nil, false
	}
	return token, history, c, true
}

func writeNoReceipt(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "not_found", residentText(r).noReceipt, "")
}

// residentRate answers POST /r/{token}/rating {"rating", "comment"?}.
func (a *API) residentRate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Rating  string `json:"rating"`
		Comment string `json:"comment"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	token, _, c, ok := a.residentCase(w, r)
	if !ok {
		return
	}
	resident := domain.Actor{Role: domain.ActorResident, ID: "link"}
	cmd := domain.RateByResident{TokenSHA256: tokenSHA256(token), Rating: body.Rating}
	// Decided first without the comment (pure), so that no key is made for
	// a refused rating; the handler decides it again with the comment.
	err := domain.CheckResidentComment(body.Comment)
	if err == nil {
		err = domain.Authorize(c, resident, cmd)
	}
	if err == nil {
		_, err = domain.Decide(c, cmd, a.cfg.Directory, time.Now())
	}
	if err != nil {
		a.writeFailure(w, err)
		return
	}
	sealed, ok := a.sealComment(w, r, c.ID, body.Comment)
	if !ok {
		return
	}
	cmd.Comment, cmd.SealedComment = body.Comment, sealed
	req := casehandler.Request{CaseID: c.ID, CommandID: mustV7(), Actor: resident, Command: cmd}
	res, err := a.cfg.Handler.Execute(r.Context(), req)
	log := a.cfg.Log.With(zap.String("case_id", req.CaseID), zap.String("command_id", req.CommandID), zap.String("command", req.Command.CommandName()))
	if errors.Is(err, domain.ErrNoCase) {
		log.Info("command refused", zap.String("refusal", "no receipt"))
		writeNoReceipt(w, r)
		return
	}
	if err != nil {
		log.Info("command refused", refusalFields(err)...)
		a.writeFailure(w, err)
		return
	}
	log.Info("command done", zap.Int("events", len(res.Events)), zap.Uint64("position", uint64(res.Position)))
	history, err := casestate.ReadHistory(r.Context(), a.cfg.Store, c.ID)
	if err != nil {
		a.writeFailure(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.residentView(r, history, res.Case))
}

// residentPage answers GET /r/{token}: the case as its resident follows
// it, HTML in Chinese (English by Accept-Language or ?lang=en), or JSON
// with ?format=json.
func (a *API) residentPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for name := range q {
		if name != "format" && name != "lang" {
			writeError(w, http.StatusBadRequest, "unknown_field", "unknown query parameter "+name, name)
			return
		}
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "html" {
		writeError(w, http.StatusUnprocessableEntity, "invalid_value", "format is json or html", "format")
		return
	}
	_, history, c, ok := a.residentCase(w, r)
	if !ok {
		return
	}
	v := a.residentView(r, history, c)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer") // the link is the key: never leak it in a Referer
	if format == "json" {
		writeJSON(w, http.StatusOK, v)
		return
	}
	writeResidentPage(w, v, a.cfg.Directory.WorkCalendar().Location())
}
