// Package sse reads a text/event-stream, for the clients of whistle's live
// queues and notifications: the CLI, the load generator and the tests.
package sse

import (
	"bufio"
	"io"
	"strings"
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
