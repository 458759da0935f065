package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image/jpeg"
	"image/png"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/whistle-gov/whistle/adapters/attachments"
	"github.com/whistle-gov/whistle/adapters/casehandler"
	"github.com/whistle-gov/whistle/domain"
	"go.uber.org/zap"
)

// AttachmentAnswer is the body of a 201 to POST /v1/cases/{id}/attachments.
type AttachmentAnswer struct {
	SHA256 string `json:"sha256"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	Size   int64  `json:"size"`
}

// errNoAttachments: the service runs without an attachment store.
var errNoAttachments = errors.New("httpapi: no attachment store")

// sniffMedia tells what a file is by its content: the magic bytes, then a
// decode of the header (a JPEG's or PNG's dimensions; a PDF's version line
// and its end-of-file marker), so a file that only starts like one is
// refused too. "" when it is none of the types an attachment may have.
func sniffMedia(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xD8, 0xFF}):
		if cfg, err := jpeg.DecodeConfig(bytes.NewReader(data)); err == nil && cfg.Width > 0 && cfg.Height > 0 {
			return domain.MediaJPEG
		}
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		if cfg, err := png.DecodeConfig(bytes.NewReader(data)); err == nil && cfg.Width > 0 && cfg.Height > 0 {
			return domain.MediaPNG
		}
	case len(data) >= 8 && bytes.HasPrefix(data, []byte("%PDF-")) && data[5] >= '1' && data[5] <= '2' && data[6] == '.':
		tail := data[max(0, len(data)-1024):]
		if bytes.Contains(tail, []byte("%%EOF")) {
			return domain.MediaPDF
		}
	}
	return ""
}

// addAttachment answers POST /v1/cases/{id}/attachments: the file is the
// body, checked by content against its Content-Type, stored in the bucket
// before AttachmentAdded is appended (BeforeAppend), so the log never names
// a file that is not kept and nothing is stored for a refused command.
func (a *API) addAttachment(w http.ResponseWriter, r *http.Request) {
	actor := actorOf(r)
	caseID, ok := caseIDFrom(w, r)
	if !ok {
		return
	}
	q, ok := query(w, r, "name")
	if !ok {
		return
	}
	declared, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if _, bad := domain.ParseMediaType(declared); err != nil || bad != nil {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_type",
			fmt.Sprintf("an attachment is image/jpeg, image/png or application/pdf, not %q", r.Header.Get("Content-Type")), "Content-Type")
		return
	}
	raw := r.Body
	data, err := io.ReadAll(http.MaxBytesReader(w, raw, domain.MaxAttachmentSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("an attachment is at most %d bytes (10 MiB)", domain.MaxAttachmentSize), "")
			_ = http.NewResponseController(w).Flush()
			_, _ = io.CopyN(io.Discard, raw, lingerLimit)
			return
		}
		writeError(w, http.StatusBadRequest, "malformed", "could not read the body: "+err.Error(), "")
		return
	}
	if len(data) == 0 {
		invalid(w, "body", "the body is the file, and it is empty")
		return
	}
	if got := sniffMedia(data); got != declared {
		what := "none of image/jpeg, image/png, application/pdf"
		if got != "" {
			what = got
		}
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_type",
			fmt.Sprintf("the body is not what Content-Type says: %s was sent, the content is %s", declared, what), "Content-Type")
		return
	}
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	name := q.Get("name")
	if name == "" {
		if _, params, err := mime.ParseMediaType(r.Header.Get("Content-Disposition")); err == nil {
			name = params["filename"]
		}
	}
	if name == "" {
		name = sha[:12] + map[string]string{domain.MediaJPEG: ".jpg", domain.MediaPNG: ".png", domain.MediaPDF: ".pdf"}[declared]
	}
	if a.cfg.Attachments == nil {
		a.writeFailure(w, errNoAttachments)
		return
	}
	cmd := domain.AddAttachment{SHA256: sha, Name: name, Type: declared, Size: int64(len(data)), By: actor}
	req := casehandler.Request{CaseID: caseID, Actor: actor, Command: cmd, CommandID: mustV7(),
		BeforeAppend: func(ctx context.Context, _ *domain.Case, _ []domain.Event) error {
			_, err := a.cfg.Attachments.Put(ctx, caseID, declared, data)
			return err
		}}
	start := time.Now()
	log := a.cfg.Log.With(zap.String("case_id", caseID), zap.String("command_id", req.CommandID),
		zap.String("command", cmd.CommandName()), zap.String("actor", actor.String()))
	res, err := a.cfg.Handler.Execute(r.Context(), req)
	if err != nil {
		log.Info("command refused", refusalFields(err, zap.Duration("duration", time.Since(start)))...)
		a.writeFailure(w, err)
		return
	}
	log.Info("command done", zap.Int("events", len(res.Events)), zap.String("sha256", sha), zap.Int("size", len(data)),
		zap.Uint64("position", uint64(res.Position)), zap.Duration("duration", time.Since(start)))
	att := res.Case.Attachment(sha)
	if att == nil { // cannot happen: the command was accepted
		a.writeFailure(w, fmt.Errorf("attachment %s not on case %s after its command", sha, caseID))
		return
	}
	writeJSON(w, http.StatusCreated, AttachmentAnswer{SHA256: att.SHA256, Name: att.Name, Type: att.Type, Size: att.Size})
}

// getAttachment answers GET /v1/cases/{id}/attachments/{sha256}: the bytes,
// for whoever may read the case (domain.AuthorizeCaseRead).
func (a *API) getAttachment(w http.ResponseWriter, r *http.Request) {
	if _, ok := query(w, r); !ok {
		return
	}
	_, c, ok := a.readHistory(w, r)
	if !ok {
		return
	}
	sha := r.PathValue("sha256")
	att := c.Attachment(sha)
	if att == nil {
		writeError(w, http.StatusNotFound, "not_found", "case "+c.ID+" has no attachment "+sha, "")
		return
	}
	if a.cfg.Attachments == nil {
		a.writeFailure(w, errNoAttachments)
		return
	}
	data, err := a.cfg.Attachments.Get(r.Context(), c.ID, sha)
	if err != nil {
		a.cfg.Log.Error("read an attachment", zap.String("case_id", c.ID), zap.String("sha256", sha), zap.Error(err))
		if errors.Is(err, attachments.ErrNotFound) || errors.Is(err, attachments.ErrCorrupt) {
			writeError(w, http.StatusInternalServerError, "internal", "the file of attachment "+sha+" is missing or damaged in the store", "")
			return
		}
		a.writeFailure(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", att.Type)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("Content-Disposition", "inline; filename*=UTF-8''"+url.PathEscape(att.Name))
	h.Set("X-Content-Type-Options", "nosniff")
	// A PDF opened from here runs no script with the API's origin.
	h.Set("Content-Security-Policy", "sandbox")
	h.Set("ETag", `"`+sha+`"`)
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}
