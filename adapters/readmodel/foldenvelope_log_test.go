package readmodel_test

import (
	"reflect"
	"testing"

	"github.com/whistle-gov/whistle/adapters/readmodel"
)

// TestDecodeStoredFastEqualsEncodingJSON decodes every commit of a log the
// command handler wrote both ways: the scanners FoldLog runs give the same
// envelopes and the same events as encoding/json.
func TestDecodeStoredFastEqualsEncodingJSON(t *testing.T) {
	_, log := pipelineLog(t)
	events := 0
	for _, raw := range log {
		want, err := readmodel.DecodeStoredForFold(raw)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readmodel.DecodeStoredFast(raw)
		if err != nil {
			t.Fatalf("commit at %d: %v", raw.Position, err)
		}
		if !reflect.DeepEqual(got.Events, want.Events) || got.Position != want.Position || got.Stream != want.Stream {
			t.Fatalf("commit at %d:\n got %+v\nwant %+v", raw.Position, got, want)
		}
		dg, dw := readmodel.DecodedEvents(got), readmodel.DecodedEvents(want)
		if dg == nil || !reflect.DeepEqual(dg, dw) {
			t.Fatalf("commit at %d: events\n got %#v\nwant %#v", raw.Position, dg, dw)
		}
		events += len(raw.Events)
	}
	if events < 50 {
		t.Fatalf("only %d events compared", events)
	}
}
