package projections

import (
	"errors"
	"strings"
	"testing"

	"github.com/whistle-gov/whistle/domain"
)

// decodeCommit decodes the data of a commit's events once, as the readers'
// codec (adapters/eventcodec) does for every model: nil when an event
// cannot be decoded.
func decodeCommit(events []domain.Envelope) []domain.Event {
	out := make([]domain.Event, len(events))
	for i, env := range events {
		e, err := domain.DecodeEvent(env.Type, env.Data)
		if err != nil {
			return nil
		}
		out[i] = e
	}
	return out
}

// Folding with the events' data decoded once (decodeCommit) is folding
// with ApplyCommit, for both models.
func TestApplyCommitDecodedEqualsApplyCommit(t *testing.T) {
	w := simulate(t, 7, 400)
	s, b := newStats(t), NewBoard()
	for _, c := range w.commits {
		decoded := decodeCommit(c.events)
		if len(decoded) != len(c.events) {
			t.Fatalf("commit %d: %d events decoded of %d", c.pos, len(decoded), len(c.events))
		}
		if err := errors.Join(s.ApplyCommit(c.pos, c.events, decoded), b.ApplyCommit(c.pos, c.events, decoded)); err != nil {
			t.Fatalf("apply commit %d: %v", c.pos, err)
		}
	}
	if diffs := append(Diff(statsOf(t, w), s), Diff(boardOf(t, w), b)...); len(diffs) > 0 {
		t.Fatalf("decoded once differs from ApplyCommit:\n%s", strings.Join(diffs, "\n"))
	}
}

// An event whose data does not decode is refused as by ApplyCommit.
func TestDecodeCommitLeavesUndecodableDataToTheModels(t *testing.T) {
	w := simulate(t, 3, 10)
	first := w.commits[0]
	bad := append([]domain.Envelope(nil), first.events...)
	bad[0].Data = []byte(`{"street": 1}`)
	if d := decodeCommit(bad); d != nil {
		t.Fatalf("decodeCommit of undecodable data: %v, want nil", d)
	}
	want := newStats(t).ApplyCommit(first.pos, bad, nil)
	got := newStats(t).ApplyCommit(first.pos, bad, decodeCommit(bad))
	if want == nil || got == nil || got.Error() != want.Error() {
		t.Fatalf("ApplyCommit with the data decoded: %v, without: %v", got, want)
	}
}
