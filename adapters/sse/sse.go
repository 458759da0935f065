// Package sse writes and reads a text/event-stream: the writer for the
// HTTP API's live queues and notifications, the reader for their clients
// (the CLI, the load generator and the tests).
package sse

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Event is one event of the stream, or one comment line (the server's
// heartbeat) with Comment set and its text in Data.
type Event struct {
	ID, Name, Data string
	Comment        bool
}

// MaxLine bounds one line of the stream (a queue's snapshot is one data
// line).
const MaxLine = 4 << 20

// Read calls handle for each event of r in order, an unnamed event named
// "message" and its data lines joined by "\n" as the format says, until r
// ends (nil), a read fails, or handle returns an error (returned as is).
func Read(r io.Reader, handle func(Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLine)
	var ev Event
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.Name != "" || len(data) > 0 {
				ev.Data = strings.Join(data, "\n")
				if ev.Name == "" {
					ev.Name = "message"
				}
				if err := handle(ev); err != nil {
					return err
				}
			}
			ev, data = Event{}, nil
		case strings.HasPrefix(line, ":"):
			if err := handle(Event{Comment: true, Data: strings.TrimSpace(line[1:])}); err != nil {
				return err
			}
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				ev.ID = value
			case "event":
				ev.Name = value
			case "data":
				data = append(data, value)
			}
		}
	}
	return sc.Err()
}

// Writer writes server-sent events and flushes each. Not safe for
// concurrent use.
type Writer struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// Start answers 200 with an event stream, with the server's read and write
// deadlines lifted for this long-lived response, and writes a first comment.
// It returns false when that write fails (the client has gone).
func Start(w http.ResponseWriter, log *zap.Logger) (*Writer, bool) {
	rc := http.NewResponseController(w)
	// The server's WriteTimeout (and the ReadTimeout, whose expiry cancels
	// the request's context once the body is read) would cut the stream.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		log.Warn("event stream: cannot lift the write deadline", zap.Error(err))
	}
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // ask proxies such as nginx not to buffer
	w.WriteHeader(http.StatusOK)
	s := &Writer{w: w, rc: rc}
	return s, s.Comment("whistle event stream")
}

// Event writes one event with v as JSON data; id 0 writes no id. It
// returns false when the write fails.
func (s *Writer) Event(name string, id uint64, v any) bool {
	data, err := json.Marshal(v)
	if err != nil {
		return false
	}
	return s.Raw(name, id, data)
}

// Raw writes one event whose data is one line of JSON.
func (s *Writer) Raw(name string, id uint64, data []byte) bool {
	var b strings.Builder
	if id > 0 {
		b.WriteString("id: ")
		b.WriteString(strconv.FormatUint(id, 10))
		b.WriteByte('\n')
	}
	b.WriteString("event: ")
	b.WriteString(name)
	b.WriteString("\ndata: ")
	// JSON from json.Marshal has no raw newlines; guard anyway, since a
	// newline would end the data field.
	b.WriteString(strings.ReplaceAll(string(data), "\n", ""))
	b.WriteString("\n\n")
	return s.flush(b.String())
}

// Comment writes a comment line (": text"), which clients ignore: a
// heartbeat.
func (s *Writer) Comment(text string) bool { return s.flush(": " + text + "\n\n") }

func (s *Writer) flush(chunk string) bool {
	if _, err := io.WriteString(s.w, chunk); err != nil {
		return false
	}
	return s.rc.Flush() == nil
}
