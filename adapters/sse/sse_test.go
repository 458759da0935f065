package sse

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	stream := ": heartbeat\n\n" +
		"id: 7\nevent: change\ndata: {\"a\":1}\n\n" +
		"data: one\ndata: two\n\n" +
		"event: synced\ndata:{}\nunknown: x\n\n" +
		"id: 9\n" // an event cut off by the end of the stream is not delivered
	var got []Event
	if err := Read(strings.NewReader(stream), func(ev Event) error { got = append(got, ev); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []Event{
		{Comment: true, Data: "heartbeat"},
		{ID: "7", Name: "change", Data: `{"a":1}`},
		{Name: "message", Data: "one\ntwo"},
		{Name: "synced", Data: "{}"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	stop := errors.New("stop")
	n := 0
	if err := Read(strings.NewReader(stream), func(Event) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("handler error: Read returned %v after %d events, want it at once", err, n)
	}
}
