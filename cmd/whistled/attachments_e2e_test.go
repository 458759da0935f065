package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"testing"

	"github.com/whistle-gov/whistle/cmd/whistled/whistledtest"
)

func testImage(t *testing.T, kind string) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for x := range 64 {
		img.Set(x, x%48, color.RGBA{R: uint8(x * 4), G: 90, B: 200, A: 255})
	}
	var buf bytes.Buffer
	var err error
	if kind == "png" {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func postFile(t *testing.T, s *whistledtest.Server, caseID, principal, contentType string, body []byte) (int, []byte) {
	req, _ := http.NewRequest("POST", s.URL+"/v1/cases/"+caseID+"/attachments?name=现场照片.jpg", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.Token(principal))
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST attachment: %v (the 413 must be read, not a reset connection)", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// TestAttachmentSurvivesSIGKILLAndIsCheckedByContent: a photo added to a
// case reads back byte-equal after whistled is killed; a PNG sent as a JPEG
// is refused; 11 MiB gets a 413 that the client reads; evidence must name
// an attachment of the case.
func TestAttachmentSurvivesSIGKILLAndIsCheckedByContent(t *testing.T) {
	s := whistledtest.Start(t)
	var c caseView
	if st := s.Do("POST", "/v1/whistles", "street:longqiao", raiseBody("longqiao", "wanhui", "river-pollution", "routine"), &c); st != 201 {
		t.Fatalf("raise: %d", st)
	}
	photo := testImage(t, "jpeg")
	st, raw := postFile(t, s, c.CaseID, "department:ecology-bureau", "image/jpeg", photo)
	var att struct {
		SHA256, Name, Type string
		Size               int
	}
	if err := json.Unmarshal(raw, &att); st != 201 || err != nil {
		t.Fatalf("add a photo: %d %s", st, raw)
	}
	sum := sha256.Sum256(photo)
	if att.SHA256 != hex.EncodeToString(sum[:]) || att.Type != "image/jpeg" || att.Size != len(photo) || att.Name != "现场照片.jpg" {
		t.Fatalf("answer %+v", att)
	}
	if st, raw := postFile(t, s, c.CaseID, "department:ecology-bureau", "image/jpeg", testImage(t, "png")); st != 415 {
		t.Errorf("a PNG sent as image/jpeg: %d %s, want 415", st, raw)
	}
	if st, raw := postFile(t, s, c.CaseID, "department:ecology-bureau", "image/jpeg", append([]byte{0xFF, 0xD8, 0xFF}, make([]byte, 100)...)); st != 415 {
		t.Errorf("JPEG magic bytes and nothing else: %d %s, want 415", st, raw)
	}
	if st, raw := postFile(t, s, c.CaseID, "department:ecology-bureau", "image/gif", photo); st != 415 {
		t.Errorf("image/gif: %d %s, want 415", st, raw)
	}
	if st, raw := postFile(t, s, c.CaseID, "department:judicial-office", "image/jpeg", photo); st != 403 {
		t.Errorf("a department not involved: %d %s, want 403", st, raw)
	}
	big := append(bytes.Clone(photo), make([]byte, 11<<20)...)
	if st, raw := postFile(t, s, c.CaseID, "department:ecology-bureau", "image/jpeg", big); st != 413 {
		t.Errorf("11 MiB: %d %s, want 413", st, raw)
	}
	if st := s.Do("POST", "/v1/cases/"+c.CaseID+"/report", "department:ecology-bureau", nil, nil); st != 200 {
		t.Fatalf("report: %d", st)
	}
	var e apiError
	if st := s.Do("POST", "/v1/cases/"+c.CaseID+"/resolve", "department:ecology-bureau",
		map[string]any{"evidence": []string{hex.EncodeToString(make([]byte, 32))}}, &e); st != 422 || e.Error.Field != "evidence[0]" {
		t.Errorf("evidence not attached: %d %+v", st, e)
	}
	if st := s.Do("POST", "/v1/cases/"+c.CaseID+"/resolve", "department:ecology-bureau", map[string]any{"evidence": []string{att.SHA256}}, nil); st != 200 {
		t.Errorf("resolve with the photo as evidence: %d", st)
	}

	s.Kill()
	s.Restart()
	for _, who := range []string{"street:longqiao", "auditor:auditor", "department:water-bureau"} {
		st, got := s.DoRaw("GET", "/v1/cases/"+c.CaseID+"/attachments/"+att.SHA256, who, nil)
		if st != 200 || !bytes.Equal(got, photo) {
			t.Errorf("%s reads the photo after SIGKILL: %d, %d bytes, equal %v", who, st, len(got), bytes.Equal(got, photo))
		}
	}
	if st, _ := s.DoRaw("GET", "/v1/cases/"+c.CaseID+"/attachments/"+att.SHA256, "department:judicial-office", nil); st != 403 {
		t.Errorf("a department not involved reads the photo: %d, want 403", st)
	}
	var h struct {
		Events []struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		} `json:"events"`
		ChainWhole bool `json:"chain_whole"`
	}
	s.Do("GET", "/v1/cases/"+c.CaseID+"/history", "auditor:auditor", nil, &h)
	found := false
	for _, ev := range h.Events {
		if ev.Type == "AttachmentAdded" && bytes.Contains(ev.Data, []byte(att.SHA256)) {
			found = true
		}
	}
	if !found || !h.ChainWhole {
		t.Errorf("history: AttachmentAdded with the sha256 %v, chain whole %v", found, h.ChainWhole)
	}
}
