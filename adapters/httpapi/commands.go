package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/domain"
	"go.uber.org/zap"
)

// Namespaces of the ids derived from an Idempotency-Key, so that a retry maps
// to the same case and command whatever process serves it.
var (
	caseNamespace    = uuid.MustParse("4f0f4b0e-5c1e-4b4a-9d53-6e1b7a3c2d10")
	commandNamespace = uuid.MustParse("9a3c7e21-2b8d-4f65-a0c4-1d2e3f405162")
)

// RaiseRequest is the body of POST /v1/whistles.
type RaiseRequest struct {
	Street      string           `json:"street"`
	Community   string           `json:"community"`
	Category    string           `json:"category"`
	Urgency     string           `json:"urgency"`
	Title       string           `json:"title"`
	Description string           `json:"description,omitempty"`
	Location    *domain.Location `json:"location,omitempty"`
	// Requester is personal data: sealed before the command is decided,
	// never stored, logged or fingerprinted in clear.
	Requester *RequesterRequest `json:"requester,omitempty"`
}

// CaseAnswer is a command's answer: the case as the command left it, and the
// log position it wrote, which read models can be asked to reach.
type CaseAnswer struct {
	*domain.Case
	Position uint64 `json:"position,omitempty"`
	// Requester is the case's requester as the reader may see it: masked,
	// revealed, or forgotten; absent when the case has none.
	Requester *domain.RequesterView `json:"requester,omitempty"`
	// Receipt and ResidentRating: for the case's street only; the receipt's
	// link only in the answer that issued it.
	Receipt        *ReceiptView           `json:"receipt,omitempty"`
	ResidentRating *domain.ResidentRating `json:"resident_rating,omitempty"`
}

// caseAnswer is the answer of a case to the request's reader.
func (a *API) caseAnswer(r *http.Request, c *domain.Case, position uint64, requester *domain.RequesterView) CaseAnswer {
	return CaseAnswer{Case: c, Position: position, Requester: requester, Receipt: receiptView(r, c), ResidentRating: a.residentRatingView(r, c)}
}

func (a *API) raise(w http.ResponseWriter, r *http.Request) {
	actor := actorOf(r)
	var body RaiseRequest
	if !decodeBody(w, r, &body, false) {
		return
	}
	for _, req := range []struct{ field, value string }{
		{"street", body.Street}, {"community", body.Community}, {"category", body.Category},
		{"urgency", body.Urgency}, {"title", body.Title},
	} {
		if req.value == "" {
			writeError(w, http.StatusUnprocessableEntity, "invalid_value", req.field+" is required", req.field)
			return
		}
	}
	key, ok := idempotencyKey(w, r)
	if !ok {
		return
	}
	raise := domain.Raise{
		Street: body.Street, Community: body.Community, Category: body.Category, Urgency: body.Urgency,
		Title: body.Title, Description: body.Description, Location: body.Location,
	}
	req := casehandler.Request{Actor: actor}
	if key != "" {
		scope := actor.String() + "\x00raise\x00" + key
		req.CaseID = uuid.NewSHA1(caseNamespace, []byte(scope)).String()
		req.CommandID = uuid.NewSHA1(commandNamespace, []byte(scope)).String()
	} else {
		req.CaseID = mustV7()
		req.CommandID = mustV7()
		req.New = true
	}
	fingerprinted := body
	fingerprinted.Requester = nil
	canonical, _ := json.Marshal(fingerprinted) // re-encoded so that spacing does not change the fingerprint
	if body.Requester != nil {
		sealed, print, ok := a.sealRaiseRequester(w, r, req.CaseID, raise, *body.Requester)
		if !ok {
			return
		}
		raise.Requester = sealed
		canonical = append(canonical, "\x00requester "+print...)
	}
	// The receipt is left out of the fingerprint: a retry draws another
	// number (a gap), and is answered with the first case, whose link it
	// makes again when the raise is keyed.
	retried := ""
	if key != "" {
		retried = req.CommandID
	}
	token, receipt, ok := a.receiptFor(w, r, req.CaseID, raise.Street, retried, raise)
	if !ok {
		return
	}
	raise.Receipt = receipt
	r = withReceiptToken(r, token)
	sum := sha256.Sum256(canonical)
	raise.RequestSHA256 = hex.EncodeToString(sum[:])
	req.Command = raise
	a.execute(w, r, req, http.StatusCreated)
}

func (a *API) caseCommand(w http.ResponseWriter, r *http.Request) {
	actor := actorOf(r)
	caseID, ok := caseIDFrom(w, r)
	if !ok {
		return
	}
	action := r.PathValue("action")
	var cmd domain.Command
	switch action {
	case "report", "progress", "claim":
		var body struct {
			Note string `json:"note"`
		}
		if !decodeBody(w, r, &body, true) {
			return
		}
		switch action {
		case "report":
			cmd = domain.Report{Assignee: actor.ID, Note: body.Note}
		case "progress":
			cmd = domain.NoteProgress{Assignee: actor.ID, Note: body.Note}
		default:
			cmd = domain.Claim{Assignee: actor.ID, Note: body.Note}
		}
	case "resolve":
		var body struct {
			Note      string   `json:"note"`
			Mediation string   `json:"mediation"`
			Evidence  []string `json:"evidence"`
		}
		if !decodeBody(w, r, &body, true) {
			return
		}
		cmd = domain.Resolve{Assignee: actor.ID, Note: body.Note, Mediation: body.Mediation, Evidence: body.Evidence}
	case "decline":
		var body struct {
			Reason  string `json:"reason"`
			Suggest string `json:"suggest"`
		}
		if !decodeBody(w, r, &body, false) {
			return
		}
		cmd = domain.Decline{Assignee: actor.ID, Reason: body.Reason, Suggest: body.Suggest}
	case "route":
		var body struct {
			Lead   string   `json:"lead"`
			Assist []string `json:"assist"`
		}
		if !decodeBody(w, r, &body, false) {
			return
		}
		cmd = domain.Route{Lead: body.Lead, Assist: body.Assist}
	case "verify":
		var body struct {
			Accepted *bool    `json:"accepted"`
			Note     string   `json:"note"`
			Evidence []string `json:"evidence"`
			Reply    string   `json:"reply"` // to a ticket's platform (domain.Verify)
		}
		if !decodeBody(w, r, &body, false) {
			return
		}
		if body.Accepted == nil {
			writeError(w, http.StatusUnprocessableEntity, "invalid_value", "accepted (true or false) is required", "accepted")
			return
		}
		cmd = domain.Verify{Accepted: *body.Accepted, Note: body.Note, Evidence: body.Evidence, Reply: body.Reply}
	case "accept":
		var body struct {
			Category  string `json:"category"`
			Community string `json:"community"`
			Urgency   string `json:"urgency"`
		}
		if !decodeBody(w, r, &body, true) {
			return
		}
		cmd = domain.AcceptTicket{Category: body.Category, Community: body.Community, Urgency: body.Urgency}
	case "return":
		var body struct {
			Reason string `json:"reason"`
		}
		if !decodeBody(w, r, &body, false) {
			return
		}
		cmd = domain.ReturnTicket{Reason: body.Reason}
	case "rate":
		var body struct {
			Rating string `json:"rating"`
		}
		if !decodeBody(w, r, &body, false) {
			return
		}
		cmd = domain.Rate{Rating: body.Rating}
	case "forget":
		var body struct {
			Reason string `json:"reason"`
		}
		if !decodeBody(w, r, &body, false) {
			return
		}
		cmd = domain.ForgetRequester{Reason: body.Reason}
	case "callback":
		var body struct {
			Reached *bool  `json:"reached"`
			Rating  string `json:"rating"`
			Note    string `json:"note"`
		}
		if !decodeBody(w, r, &body, false) {
			return
		}
		if body.Reached == nil {
			writeError(w, http.StatusUnprocessableEntity, "invalid_value", "reached (true or false) is required", "reached")
			return
		}
		cmd = domain.RecordCallback{Reached: *body.Reached, Rating: body.Rating, Note: body.Note}
	case "receipt":
		a.reissueReceipt(w, r, caseID)
		return
	default:
		writeError(w, http.StatusNotFound, "not_found", "no such command: "+action, "")
		return
	}
	key, ok := idempotencyKey(w, r)
	if !ok {
		return
	}
	req := casehandler.Request{CaseID: caseID, Actor: actor, Command: cmd, CommandID: mustV7()}
	if _, forget := cmd.(domain.ForgetRequester); forget {
		req.BeforeAppend = a.destroyForgottenKeys
	}
	if key != "" {
		req.CommandID = uuid.NewSHA1(commandNamespace, []byte(actor.String()+"\x00"+caseID+"\x00"+action+"\x00"+key)).String()
	}
	a.execute(w, r, req, http.StatusOK)
}

func (a *API) execute(w http.ResponseWriter, r *http.Request, req casehandler.Request, status int) {
	a.executeAnswer(w, r, req, status, status)
}

// executeAnswer is execute answering repeated, not status, when the command
// had already been done (a retry).
func (a *API) executeAnswer(w http.ResponseWriter, r *http.Request, req casehandler.Request, status, repeated int) {
	if a.storeFull(w) {
		return
	}
	start := time.Now()
	res, err := a.cfg.Handler.Execute(r.Context(), req)
	log := a.cfg.Log.With(zap.String("case_id", req.CaseID), zap.String("command_id", req.CommandID),
		zap.String("command", req.Command.CommandName()), zap.String("actor", req.Actor.String()))
	if err != nil {
		log.Info("command refused", refusalFields(err, zap.Duration("duration", time.Since(start)))...)
		a.writeFailure(w, err)
		return
	}
	log.Info("command done", zap.Int("events", len(res.Events)), zap.Bool("already_done", res.AlreadyDone),
		zap.Uint64("position", uint64(res.Position)), zap.Duration("duration", time.Since(start)))
	if res.AlreadyDone {
		status = repeated
	}
	writeJSON(w, status, a.caseAnswer(r, res.Case, uint64(res.Position), a.answerRequester(r.Context(), log, res.Case)))
}

// idempotencyKey reads the optional Idempotency-Key header.
func idempotencyKey(w http.ResponseWriter, r *http.Request) (string, bool) {
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 200 {
		writeError(w, http.StatusBadRequest, "malformed", "Idempotency-Key is longer than 200 characters", "Idempotency-Key")
		return "", false
	}
	for _, c := range key {
		if !unicode.IsPrint(c) {
			writeError(w, http.StatusBadRequest, "malformed", "Idempotency-Key holds a character that is not printable", "Idempotency-Key")
			return "", false
		}
	}
	return key, true
}

func caseIDFrom(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "no case "+r.PathValue("id")+": a case id is a UUID", "")
		return "", false
	}
	return id.String(), true
}

func mustV7() string {
	u, err := uuid.NewV7()
	if err != nil {
		// Only fails when the system's random source does: nothing sensible is left to do.
		panic("httpapi: no randomness for a UUIDv7: " + err.Error())
	}
	return u.String()
}

// refusalFields describe a failed command for the log: a refusal by its
// kind and field, never its reason, which quotes what the caller typed
// (a phone number in an id field is personal data).
func refusalFields(err error, more ...zap.Field) []zap.Field {
	var refusal *domain.Refusal
	if errors.As(err, &refusal) {
		kind := "refused"
		if refusal.Err != nil {
			kind = refusal.Err.Error()
		}
		return append(more, zap.String("refusal", kind), zap.String("field", refusal.Field))
	}
	return append(more, zap.Error(err))
}
