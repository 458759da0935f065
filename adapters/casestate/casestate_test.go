package casestate_test

import (
	"errors"
	"testing"

	"github.com/whistle-gov/whistle/adapters/casestate"
	"github.com/whistle-gov/whistle/adapters/coretest"
	"github.com/whistle-gov/whistle/adapters/eventcodec"
	"github.com/whistle-gov/whistle/domain"
)

// commitsOf reads the whole log and keeps the commits of one case, decoded.
func commitsOf(t *testing.T, env *coretest.Env, caseID string) []eventcodec.Commit {
	t.Helper()
	all, err := env.Store.ReadAll(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var mine []eventcodec.Commit
	for _, c := range all {
		if c.Stream != domain.Stream(caseID) {
			continue
		}
		dc, err := eventcodec.Decode(c)
		if err != nil || dc.EventsErr != nil {
			t.Fatal(err, dc.EventsErr)
		}
		mine = append(mine, dc)
	}
	return mine
}

// A follower that starts in the middle of a case's life (an empty cache)
// rebuilds it from the case's stream and ends with the same state as the
// handler; a commit handed again finds the state after it held, and is
// not applied twice.
func TestAfterFromTheMiddleAndRedelivery(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	c := env.Raise(t, "river-pollution", "routine")
	env.Do(t, c.ID, coretest.Ecology, domain.Report{Assignee: "ecology-bureau"})
	env.Do(t, c.ID, coretest.Ecology, domain.NoteProgress{Assignee: "ecology-bureau", Note: "sampling"})
	final := env.Do(t, c.ID, coretest.Ecology, domain.Resolve{Assignee: "ecology-bureau", Note: "sealed"})

	commits := commitsOf(t, env, c.ID)
	cache := casestate.New(env.Store, 0)
	var after *domain.Case
	// Start after the raise, as from a checkpoint; then the last commit again.
	for _, commit := range append(commits[1:], commits[len(commits)-1]) {
		s, err := cache.After(t.Context(), commit.Envelopes, commit.Events)
		if err != nil {
			t.Fatal(err)
		}
		after = s
	}
	if after.Version != final.Version || after.Status != final.Status || after.LastHash != final.LastHash {
		t.Fatalf("folded version %d status %s; the handler has %d %s", after.Version, after.Status, final.Version, final.Status)
	}
	if held, ok := cache.Latest(c.ID); !ok || held != after {
		t.Fatal("the state after the last commit is not the one held")
	}
	// The state before the last commit is still found, for a follower that
	// needs it (the dispatcher), without a read.
	last := commits[len(commits)-1]
	before, err := cache.Before(t.Context(), last.Envelopes)
	if err != nil || before.Version != last.Envelopes[0].Version {
		t.Fatalf("before the last commit: version %v, %v", before, err)
	}
}

// An event whose case stream does not hold it yet is ErrBehind, rather
// than a fold over a gap.
func TestBehindIsReported(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	c := env.Raise(t, "river-pollution", "routine")
	cache := casestate.New(env.Store, 0)
	ahead := domain.Envelope{CaseID: c.ID, Version: c.Version + 5, Type: domain.TypeProgressNoted}
	if _, err := cache.Before(t.Context(), []domain.Envelope{ahead}); !errors.Is(err, casestate.ErrBehind) {
		t.Fatalf("an event past the stream's end: %v, want ErrBehind", err)
	}
}

// The cache holds at most its bound, and a case it forgot is read again.
func TestBoundedAndReadAgain(t *testing.T) {
	env := coretest.Start(t, coretest.Options{})
	cache := casestate.New(env.Store, 3)
	var ids []string
	for range 10 {
		c := env.Raise(t, "river-pollution", "routine")
		ids = append(ids, c.ID)
		cache.Put(c)
		if cache.Len() > 3 {
			t.Fatalf("%d cases held, bound 3", cache.Len())
		}
	}
	for _, id := range ids {
		s, err := cache.Read(t.Context(), id)
		if err != nil || s.Version != 3 {
			t.Fatalf("case %s read again: %+v, %v", id, s, err)
		}
	}
}
