package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/whistle-gov/whistle/cmd/whistled/whistledtest"
)

// A ticket's life through the CLI against a real whistled: the hotline
// sends it (and again: the same case), the street finds it in its inbox,
// signs for it, the lead resolves, the street verifies with a reply, and
// the hotline reads the reply; a second ticket is returned.
func TestTicketsAgainstWhistled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts whistled; run without -short")
	}
	s := whistledtest.Start(t)
	as := func(principal string, args ...string) result {
		t.Helper()
		res := runCLI(t, s.URL, map[string]string{"WHISTLE_TOKEN": s.Token(principal), "COLUMNS": "120"}, args...)
		if res.code != 0 {
			t.Fatalf("whistle %s as %s: exit %d\n%s\n%s", strings.Join(args, " "), principal, res.code, res.stdout, res.stderr)
		}
		return res
	}
	const hotline, street = "platform:hotline-12345", "street:longqiao"
	send := []string{"tickets", "send", "--external-id", "12345-0042", "--street", "longqiao", "--title", "井盖破损",
		"--channel", "phone", "--reply-by", "2099-01-09T17:30:00+08:00"}
	sent := as(hotline, send...)
	link := regexp.MustCompile(`RECEIPT\s+\d{8}-\d{4}\s+/r/\S+`).FindString(sent.stdout)
	if link == "" || !strings.Contains(sent.stdout, "received") || !strings.Contains(sent.stdout, "hotline-12345 12345-0042") {
		t.Fatalf("tickets send:\n%s", sent.stdout)
	}
	var c struct {
		CaseID  string `json:"case_id"`
		Receipt struct {
			Link string `json:"link"`
		} `json:"receipt"`
	}
	if err := json.Unmarshal([]byte(as(hotline, append(send, "-o", "json")...).stdout), &c); err != nil || c.CaseID == "" ||
		!strings.HasSuffix(link, c.Receipt.Link) {
		t.Fatalf("sent again: %v %+v, first %s", err, c, link)
	}
	if res := runCLI(t, s.URL, map[string]string{"WHISTLE_TOKEN": s.Token(hotline)}, "tickets", "send", "--external-id", "x", "--street", "longqiao",
		"--title", "t", "--reply-by", "next friday"); res.code != exitUsage || !strings.Contains(res.stderr, "--reply-by") {
		t.Fatalf("a bad --reply-by: exit %d\n%s", res.code, res.stderr)
	}

	inbox := as(street, "inbox", "longqiao")
	if !strings.Contains(inbox.stdout, c.CaseID) || !strings.Contains(inbox.stdout, "1 to sign for") {
		t.Fatalf("inbox:\n%s", inbox.stdout)
	}
	var accepted struct {
		Status      string `json:"status"`
		Assignments []struct {
			Assignee string `json:"assignee"`
		} `json:"assignments"`
	}
	if err := json.Unmarshal([]byte(as(street, "accept", c.CaseID, "--category", "broken-manhole-cover", "--community", "wanhui", "-o", "json").stdout), &accepted); err != nil ||
		accepted.Status != "routed" || len(accepted.Assignments) == 0 {
		t.Fatalf("accept: %v %+v", err, accepted)
	}
	dept := "department:" + accepted.Assignments[0].Assignee
	if res := as(street, "inbox", "longqiao"); !strings.Contains(res.stdout, "0 to sign for") {
		t.Fatalf("inbox after accept:\n%s", res.stdout)
	}
	as(dept, "report", c.CaseID)
	as(dept, "resolve", c.CaseID, "--note", "已更换井盖")
	if res := runCLI(t, s.URL, map[string]string{"WHISTLE_TOKEN": s.Token(street)}, "verify", c.CaseID, "--accepted=true"); res.code != exitError || !strings.Contains(res.stderr, "reply") {
		t.Fatalf("verify without a reply: exit %d\n%s", res.code, res.stderr)
	}
	as(street, "verify", c.CaseID, "--accepted=true", "--reply", "井盖已更换，感谢反映")

	var second struct {
		CaseID string `json:"case_id"`
	}
	_ = json.Unmarshal([]byte(as(hotline, "tickets", "send", "--external-id", "12345-0043", "--street", "longqiao", "--title", "噪音扰民", "-o", "json").stdout), &second)
	as(street, "return", second.CaseID, "--reason", "不属本街道辖区")

	var replies struct {
		Replies []struct {
			ExternalID string `json:"external_id"`
			Outcome    string `json:"outcome"`
			Reply      string `json:"reply"`
		} `json:"replies"`
	}
	for range 50 {
		replies.Replies = nil
		_ = json.Unmarshal([]byte(as(hotline, "tickets", "replies", "hotline-12345", "-o", "json").stdout), &replies)
		if len(replies.Replies) >= 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(replies.Replies) != 2 || replies.Replies[0].ExternalID != "12345-0042" || replies.Replies[0].Reply != "井盖已更换，感谢反映" ||
		replies.Replies[1].Outcome != "returned" || replies.Replies[1].Reply != "不属本街道辖区" {
		t.Fatalf("replies: %+v", replies)
	}
	table := as(hotline, "tickets", "replies", "hotline-12345")
	if !strings.Contains(table.stdout, "12345-0043") || !strings.Contains(table.stdout, "2 replies") {
		t.Fatalf("replies as a table:\n%s", table.stdout)
	}
	if res := runCLI(t, s.URL, map[string]string{"WHISTLE_TOKEN": s.Token("platform:digital-city-management")}, "tickets", "replies", "hotline-12345"); res.code != exitError {
		t.Fatalf("another platform's replies: exit %d\n%s", res.code, res.stderr)
	}
}
