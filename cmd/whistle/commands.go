package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/whistle-gov/whistle/domain"
)

type client struct {
	base  string
	token string
	http  *http.Client
}

func newClient(getenv func(string) string) *client {
	base := getenv("WHISTLE_URL")
	if base == "" {
		base = "http://127.0.0.1:8080"
	}
	return &client{base: strings.TrimRight(base, "/"), token: getenv("WHISTLE_TOKEN"), http: &http.Client{Timeout: 30 * time.Second}}
}

// call sends a request and decodes a 2xx JSON answer into out; any other
// status becomes an error carrying the server's message and field.
func (c *client) call(ctx context.Context, method, path string, body any, out any, headers ...string) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if c.token == "" {
		return errors.New("set WHISTLE_TOKEN to your bearer token")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Code, Message, Field string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			if e.Error.Field != "" {
				return fmt.Errorf("%d %s: %s (field %s)", resp.StatusCode, e.Error.Code, e.Error.Message, e.Error.Field)
			}
			return fmt.Errorf("%d %s: %s", resp.StatusCode, e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

type commandFunc func(ctx context.Context, c *client, args []string, out io.Writer) error

var commands = map[string]commandFunc{
	"raise":     raise,
	"route":     caseAction("route"),
	"verify":    caseAction("verify"),
	"rate":      caseAction("rate"),
	"report":    caseAction("report"),
	"progress":  caseAction("progress"),
	"claim":     caseAction("claim"),
	"resolve":   caseAction("resolve"),
	"decline":   caseAction("decline"),
	"case":      showCase,
	"history":   showHistory,
	"directory": showDirectory,
}

func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func raise(ctx context.Context, c *client, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("raise", flag.ContinueOnError)
	street := fs.String("street", "", "your street id")
	community := fs.String("community", "", "community id")
	category := fs.String("category", "", "category id (see: whistle directory)")
	urgency := fs.String("urgency", "routine", "routine, urgent or emergency")
	title := fs.String("title", "", "a short title")
	description := fs.String("description", "", "what is wrong")
	address := fs.String("address", "", "where")
	key := fs.String("key", "", "Idempotency-Key: the same key raises the case once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	body := map[string]any{"street": *street, "community": *community, "category": *category,
		"urgency": *urgency, "title": *title}
	if *description != "" {
		body["description"] = *description
	}
	if *address != "" {
		body["location"] = map[string]any{"address": *address}
	}
	var headers []string
	if *key != "" {
		headers = []string{"Idempotency-Key", *key}
	}
	var answer map[string]any
	if err := c.call(ctx, "POST", "/v1/whistles", body, &answer, headers...); err != nil {
		return err
	}
	return printJSON(out, answer)
}

// caseAction builds the command that posts to /v1/cases/CASE/<action>; its
// flags become the body's fields.
func caseAction(action string) commandFunc {
	return func(ctx context.Context, c *client, args []string, out io.Writer) error {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return fmt.Errorf("%s: give the case id first", action)
		}
		caseID, args := args[0], args[1:]
		fs := flag.NewFlagSet(action, flag.ContinueOnError)
		note := fs.String("note", "", "a note")
		mediation := fs.String("mediation", "", "dispute outcome: success or failure")
		reason := fs.String("reason", "", "why you decline")
		suggest := fs.String("suggest", "", "who should take it instead")
		lead := fs.String("lead", "", "lead department or unit")
		assist := fs.String("assist", "", "assisting departments or units, comma-separated")
		accepted := fs.Bool("accepted", false, "accept (true) or reject (false) the resolution")
		rating := fs.String("rating", "", "satisfied, basically_satisfied or unsatisfied")
		key := fs.String("key", "", "Idempotency-Key")
		if err := fs.Parse(args); err != nil {
			return err
		}
		body := map[string]any{}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		switch action {
		case "report", "progress", "claim":
			if set["note"] {
				body["note"] = *note
			}
		case "resolve":
			if set["note"] {
				body["note"] = *note
			}
			if set["mediation"] {
				body["mediation"] = *mediation
			}
		case "decline":
			body["reason"], body["suggest"] = *reason, *suggest
		case "route":
			body["lead"] = *lead
			if *assist != "" {
				body["assist"] = strings.Split(*assist, ",")
			}
		case "verify":
			if !set["accepted"] {
				return errors.New("verify: say --accepted=true or --accepted=false")
			}
			body["accepted"], body["note"] = *accepted, *note
		case "rate":
			body["rating"] = *rating
		}
		var headers []string
		if *key != "" {
			headers = []string{"Idempotency-Key", *key}
		}
		var answer map[string]any
		if err := c.call(ctx, "POST", "/v1/cases/"+url.PathEscape(caseID)+"/"+action, body, &answer, headers...); err != nil {
			return err
		}
		return printJSON(out, answer)
	}
}

func showCase(ctx context.Context, c *client, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("case: give the case id")
	}
	fs := flag.NewFlagSet("case", flag.ContinueOnError)
	asOf := fs.String("as-of", "", "the state at this RFC 3339 time")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	path := "/v1/cases/" + url.PathEscape(args[0])
	if *asOf != "" {
		path += "?as_of=" + url.QueryEscape(*asOf)
	}
	var answer map[string]any
	if err := c.call(ctx, "GET", path, nil, &answer); err != nil {
		return err
	}
	return printJSON(out, answer)
}

// showHistory prints a case's events and checks the hash chain here, so an
// auditor need not trust the server's own verdict.
func showHistory(ctx context.Context, c *client, args []string, out io.Writer) error {
	if len(args) != 1 {
		return errors.New("history: give the case id")
	}
	var answer struct {
		Events []domain.Envelope `json:"events"`
	}
	if err := c.call(ctx, "GET", "/v1/cases/"+url.PathEscape(args[0])+"/history", nil, &answer); err != nil {
		return err
	}
	for _, e := range answer.Events {
		fmt.Fprintf(out, "%3d  %s  %-20s %-26s %s  %s…\n", e.Version, e.OccurredAt.Format(time.RFC3339),
			e.Type, e.Actor.String(), compact(e.Data), e.Hash[:12])
	}
	if err := domain.VerifyChain(answer.Events); err != nil {
		return fmt.Errorf("the history is NOT whole: %w", err)
	}
	fmt.Fprintf(out, "hash chain whole: %d events\n", len(answer.Events))
	return nil
}

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

func showDirectory(ctx context.Context, c *client, args []string, out io.Writer) error {
	var answer map[string]any
	if err := c.call(ctx, "GET", "/v1/directory", nil, &answer); err != nil {
		return err
	}
	return printJSON(out, answer)
}
