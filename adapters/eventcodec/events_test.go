package eventcodec

import (
	"encoding/json"
	"reflect"
	"testing"
	"unsafe"

	"github.com/whistle-gov/whistle/domain"
)

// TestEventDecoderScansWhatWhistleWrites checks that the data json.Marshal
// writes for every event type is read by the scanner, not by the fallback,
// to the event DecodeEvent gives, and that repeated strings are shared.
func TestEventDecoderScansWhatWhistleWrites(t *testing.T) {
	var d eventDecoder
	for _, e := range append(everyEvent(), domain.WhistleRaised{Street: "longqiao", Title: "no location"}, domain.AssignmentMade{},
		domain.ResolutionVerified{Note: "checked", Reply: "已办结，井盖已更换"}) {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := d.scan(e.EventType(), data)
		if !ok {
			t.Fatalf("the scanner refused %s %s", e.EventType(), data)
		}
		want, err := domain.DecodeEvent(e.EventType(), data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(got, e) {
			t.Fatalf("scanned %#v, DecodeEvent %#v, marshalled %#v", got, want, e)
		}
	}
	a, _ := d.Decode(domain.TypeAssignmentReported, []byte(`{"assignee":"water-bureau","role":"assist"}`))
	b, _ := d.Decode(domain.TypeCaseEscalated, []byte(`{"assignee":"water-bureau","level":"city","deadline":"report"}`))
	if x, y := a.(domain.AssignmentReported).Assignee, b.(domain.CaseEscalated).Assignee; x != y || unsafe.StringData(x) != unsafe.StringData(y) {
		t.Fatalf("assignee %q and %q are not one string", x, y)
	}
}

// FuzzEventDecoder holds eventDecoder.Decode equal to DecodeEvent: for any
// type and data, both give the same error, or both the same event. Each
// input is decoded twice by one decoder, so that the second reads the
// strings the first interned.
func FuzzEventDecoder(f *testing.F) {
	for _, e := range everyEvent() {
		data, _ := json.Marshal(e)
		f.Add(e.EventType(), data)
	}
	f.Add(domain.TypeWhistleRaised, []byte(`{"location":{"lat":1},"location":{"address":"x"},"location":null}`))
	f.Add(domain.TypeWhistleRaised, []byte(`{"location":{"lat":1e400}}`))
	f.Add(domain.TypeWhistleRaised, []byte(`{"Street":"a","street":"b"}`))
	f.Add(domain.TypeAssignmentMade, []byte(`{"by_hand":"true","report_by":"2026-13-01T00:00:00Z"}`))
	f.Add(domain.TypeAssignmentMade, []byte(`{"assignee":7}`))
	f.Add(domain.TypeTicketReceived, []byte(`{"platform":"hotline-12345","external_id":"20261202-0001","street":"longqiao","title":"x","priority":"normal","accept_by":"2026-12-02T02:30:00Z","directory_version":"sample-1"}`))
	f.Add(domain.TypeTicketAccepted, []byte(`{"category":"parking","kind":"issue","community":"wanhui","urgency":"routine"}`))
	f.Add(domain.TypeTicketReturned, []byte(`{"reason":"不属本街道"}`))
	f.Add(domain.TypeCaseClosed, []byte(`{"extra":1}`))
	f.Add(domain.TypeCaseClosed, []byte(``))
	f.Add(domain.TypeSatisfactionRated, []byte(`{"rating":"satisfied","rating":"\u0075nsatisfied"}`))
	f.Add(domain.TypeSatisfactionRated, []byte(`{"rating":`))
	f.Add("CaseReopened", []byte(`{}`))
	f.Fuzz(func(t *testing.T, eventType string, data []byte) {
		want, wantErr := domain.DecodeEvent(eventType, data)
		var d eventDecoder
		for range 2 {
			got, err := d.Decode(eventType, data)
			if (err != nil) != (wantErr != nil) || err != nil && err.Error() != wantErr.Error() {
				t.Fatalf("Decode(%s, %q): error %v, DecodeEvent %v", eventType, data, err, wantErr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Decode(%s, %q) = %#v, DecodeEvent %#v", eventType, data, got, want)
			}
		}
	})
}

// BenchmarkDecodeEvent decodes the data of every event type, with
// DecodeEvent (encoding/json) and with an eventDecoder. Per event.
func BenchmarkDecodeEvent(b *testing.B) {
	type input struct {
		typ  string
		data []byte
	}
	var in []input
	for _, e := range everyEvent() {
		data, _ := json.Marshal(e)
		in = append(in, input{e.EventType(), data})
	}
	var d eventDecoder
	for _, bc := range []struct {
		name   string
		decode func(string, []byte) (domain.Event, error)
	}{{"encoding-json", domain.DecodeEvent}, {"decoder", d.Decode}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, x := range in {
					if _, err := bc.decode(x.typ, x.data); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(in)), "ns/event")
		})
	}
}

// The requester's events, and a raise with a sealed requester, decode
// through the codec to what they were (the scanner leaves them to
// encoding/json).
func TestRequesterEventsDecode(t *testing.T) {
	sealed := &domain.SealedRequester{KeyID: "0190c1f4-7b2a-7c3e-9d6f-2a1b3c4d5e6f", Ciphertext: []byte("\x01opaque bytes of a sealed requester")}
	for _, e := range []domain.Event{domain.RequesterRevealed{KeyID: "k"}, domain.RequesterForgotten{KeyID: "k", Reason: "asked"}, domain.WhistleRaised{Requester: sealed}} {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var fast eventDecoder
		viaFast, err := fast.Decode(e.EventType(), b)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := json.Marshal(viaFast); string(again) != string(b) {
			t.Fatalf("%s decodes fast to %s, was %s", e.EventType(), again, b)
		}
	}
}
