package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/adapters/pii"
	"github.com/whistle-gov/whistle/domain"
	"github.com/whistle-gov/whistle/domain/view"
	"go.uber.org/zap"
)

// RequesterRequest is the requester of a raise: the resident who asked,
// personal data.
type RequesterRequest = view.RequesterRequest

// errNoVault: the service runs without a key store, so it can neither keep
// nor show personal data.
var errNoVault = errors.New("httpapi: no key store for personal data")

// sealRequester checks a requester and seals it under the key of caseID
// (made first when there is none), for any command that takes one in: a
// raise, a ticket. It returns the sealed requester and a keyed fingerprint
// that stands for it in the request's fingerprint (a retry with the same
// case id gets the same key, so the same fingerprint). Errors are refusals
// naming requester.name or requester.phone, errNoVault, or the key store's.
// Make a key only for a command that will be accepted: decide it first.
func (a *API) sealRequester(ctx context.Context, caseID string, body RequesterRequest) (*domain.SealedRequester, string, error) {
	requester, err := domain.NewRequester(body.Name, body.Phone)
	if err != nil {
		return nil, "", err
	}
	if a.cfg.Requesters == nil {
		return nil, "", errNoVault
	}
	key, err := a.cfg.Requesters.Key(ctx, caseID)
	if err != nil {
		return nil, "", err
	}
	sealed, err := key.Seal(requester)
	if err != nil {
		return nil, "", err
	}
	return &sealed, key.Fingerprint(requester), nil
}

// sealRaiseRequester seals a raise's requester once the raise is known to
// be accepted (authorized and decided, both pure; the handler decides it
// again), so that no key is made for a refused raise. On failure it has
// written the answer.
func (a *API) sealRaiseRequester(w http.ResponseWriter, r *http.Request, caseID string, raise domain.Raise, body RequesterRequest) (*domain.SealedRequester, string, bool) {
	if _, err := domain.NewRequester(body.Name, body.Phone); err != nil {
		a.writeFailure(w, err)
		return nil, "", false
	}
	err := domain.Authorize(nil, actorOf(r), raise)
	if err == nil {
		_, err = domain.Decide(nil, raise, a.cfg.Directory, time.Now())
	}
	var sealed *domain.SealedRequester
	var print string
	if err == nil {
		sealed, print, err = a.sealRequester(r.Context(), caseID, body)
	}
	if err != nil {
		a.writeFailure(w, err)
		return nil, "", false
	}
	return sealed, print, true
}

// requesterView is the case's requester as every read shows it: masked, or
// forgotten; nil when the case has none.
func (a *API) requesterView(ctx context.Context, c *domain.Case) (*domain.RequesterView, error) {
	requester, err := a.openRequester(ctx, c)
	switch {
	case c == nil || c.Requester == nil:
		return nil, nil
	case c.RequesterForgotten, errors.Is(err, pii.ErrNoKey):
		return domain.ForgottenRequester(), nil
	case err != nil:
		return nil, err
	}
	return requester.Masked(), nil
}

// answerRequester is requesterView for a command's answer: the command is
// done, so a key store that does not answer leaves the requester out of the
// answer rather than failing it.
func (a *API) answerRequester(ctx context.Context, log *zap.Logger, c *domain.Case) *domain.RequesterView {
	view, err := a.requesterView(ctx, c)
	if err != nil {
		log.Warn("requester left out of the answer", zap.Error(err))
	}
	return view
}

// openRequester opens the case's sealed requester; pii.ErrNoKey once its key
// is destroyed (or when the case's requester is forgotten).
func (a *API) openRequester(ctx context.Context, c *domain.Case) (domain.Requester, error) {
	switch {
	case c == nil || c.Requester == nil:
		return domain.Requester{}, nil
	case c.RequesterForgotten:
		return domain.Requester{}, pii.ErrNoKey
	case a.cfg.Requesters == nil:
		return domain.Requester{}, errNoVault
	}
	return a.cfg.Requesters.Open(ctx, *c.Requester)
}

// revealRequester answers GET /v1/cases/{id}?reveal=requester for the
// case's own street: the requester whole, once RequesterRevealed is
// appended. It is opened after the reveal is authorized and decided and
// before it is appended, and shown only after: nothing is shown unrecorded,
// and nothing is recorded that could not be shown. A forgotten requester
// answers {"forgotten": true} and records nothing.
func (a *API) revealRequester(w http.ResponseWriter, r *http.Request, c *domain.Case) {
	if a.storeFull(w) { // a reveal must be recorded before it is shown
		return
	}
	start := time.Now()
	var opened domain.Requester
	req := casehandler.Request{CaseID: c.ID, CommandID: mustV7(), Actor: actorOf(r), Command: domain.RevealRequester{},
		BeforeAppend: func(ctx context.Context, c *domain.Case, _ []domain.Event) error {
			var err error
			opened, err = a.openRequester(ctx, c)
			return err
		}}
	log := a.cfg.Log.With(zap.String("case_id", req.CaseID), zap.String("command_id", req.CommandID),
		zap.String("command", req.Command.CommandName()), zap.String("actor", req.Actor.String()))
	res, err := a.cfg.Handler.Execute(r.Context(), req)
	switch {
	case errors.Is(err, domain.ErrRequesterForgotten), errors.Is(err, pii.ErrNoKey):
		log.Info("requester not revealed: forgotten", zap.Duration("duration", time.Since(start)))
		writeJSON(w, http.StatusOK, a.caseAnswer(r, c, 0, domain.ForgottenRequester()))
		return
	case err != nil:
		log.Info("command refused", zap.Error(err), zap.Duration("duration", time.Since(start)))
		a.writeFailure(w, err)
		return
	}
	log.Info("requester revealed", zap.Uint64("position", uint64(res.Position)), zap.Duration("duration", time.Since(start)))
	writeJSON(w, http.StatusOK, a.caseAnswer(r, res.Case, uint64(res.Position), opened.Revealed()))
}

// destroyForgottenKeys destroys the key of a requester being forgotten,
// before RequesterForgotten is appended: the event never claims a
// forgetting that did not happen, and a retry destroys nothing twice.
func (a *API) destroyForgottenKeys(ctx context.Context, _ *domain.Case, events []domain.Event) error {
	for _, e := range events {
		if f, ok := e.(domain.RequesterForgotten); ok {
			if a.cfg.Requesters == nil {
				return errNoVault
			}
			if err := a.cfg.Requesters.Destroy(ctx, f.KeyID); err != nil {
				return err
			}
		}
	}
	return nil
}
