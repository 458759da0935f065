package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/whistle-gov/whistle/domain"
)

func sampleDir(t *testing.T) *domain.Directory {
	t.Helper()
	dir, err := SampleDirectory()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// seeded is a deterministic random source, so that a failure repeats.
func seeded(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

func TestGeneratePrincipals(t *testing.T) {
	dir := sampleDir(t)
	path := filepath.Join(t.TempDir(), "data", "secrets", "principals.json")
	issued, err := GeneratePrincipals(path, dir, seeded(1))
	if err != nil {
		t.Fatalf("GeneratePrincipals: %v", err)
	}

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode %v, want 0600", perm)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only the principals file (no temporary left)", len(entries))
	}

	want := len(dir.Streets) + len(dir.Departments) + len(dir.Units) + len(dir.Districts) + len(dir.Platforms) + 1
	if len(issued) != want {
		t.Fatalf("%d tokens issued, want %d", len(issued), want)
	}
	seen := map[domain.Actor]bool{}
	for _, it := range issued {
		seen[it.Actor] = true
		if !strings.HasPrefix(it.Token, TokenPrefix) || len(it.Token) < len(TokenPrefix)+43 {
			t.Errorf("token of %s has the wrong form: %d characters", it.Actor, len(it.Token))
		}
	}
	for _, a := range []domain.Actor{
		{Role: domain.ActorStreet, ID: "longqiao"}, {Role: domain.ActorStreet, ID: "zhaozhen"},
		{Role: domain.ActorDepartment, ID: "water-bureau"}, {Role: domain.ActorUnit, ID: "jinggui-company"},
		{Role: domain.ActorAuditor, ID: "auditor"},
		{Role: domain.ActorDistrict, ID: "chengxiang"}, {Role: domain.ActorPlatform, ID: "hotline-12345"},
	} {
		if !seen[a] {
			t.Errorf("no token issued to %s", a)
		}
	}
	if len(seen) != want {
		t.Errorf("%d distinct actors, want %d", len(seen), want)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(TokenPrefix)) {
		t.Error("the file holds something that looks like a token")
	}
	for _, it := range issued {
		if bytes.Contains(data, []byte(it.Token)) || bytes.Contains(data, []byte(it.Token[len(TokenPrefix):])) {
			t.Fatalf("the file holds the token of %s in plain text", it.Actor)
		}
		sum := sha256.Sum256([]byte(it.Token))
		if !bytes.Contains(data, []byte(hex.EncodeToString(sum[:]))) {
			t.Errorf("the file lacks the hash of %s's token", it.Actor)
		}
	}

	p, err := LoadPrincipals(path, dir)
	if err != nil {
		t.Fatalf("LoadPrincipals(generated): %v", err)
	}
	if n := len(p.Actors()); n != want {
		t.Errorf("loaded %d principals, want %d", n, want)
	}
	for _, it := range issued {
		got, ok := p.Authenticate(it.Token)
		if !ok || got != it.Actor {
			t.Errorf("Authenticate(token of %s) = %v, %v", it.Actor, got, ok)
		}
	}
	first := issued[0].Token
	sum := sha256.Sum256([]byte(first))
	for _, bad := range []string{
		"",
		TokenPrefix,
		first[:len(first)-1],
		first + "x",
		first[:len(first)-1] + string(first[len(first)-1]^1),
		strings.ToUpper(first),
		" " + first,
		hex.EncodeToString(sum[:]), // the hash is not the token
		first[len(TokenPrefix):],
	} {
		if a, ok := p.Authenticate(bad); ok {
			t.Errorf("Authenticate(%q) = %v, want refused", bad, a)
		}
	}
	var nilP *Principals
	if _, ok := nilP.Authenticate(first); ok {
		t.Error("a nil *Principals authenticated a token")
	}

	// A second generation must neither replace the file nor issue tokens.
	again, err := GeneratePrincipals(path, dir, seeded(2))
	if !errors.Is(err, fs.ErrExist) || again != nil {
		t.Fatalf("second GeneratePrincipals = %d tokens, %v; want none and fs.ErrExist", len(again), err)
	}
	var fe *FileError
	if !errors.As(err, &fe) || fe.File != path {
		t.Errorf("error %v is not a *FileError naming %s", err, path)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, data) {
		t.Error("the second GeneratePrincipals changed the file")
	}
}

func TestGeneratePrincipalsTokensDiffer(t *testing.T) {
	dir := sampleDir(t)
	a, err := GeneratePrincipals(filepath.Join(t.TempDir(), "a.json"), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := GeneratePrincipals(filepath.Join(t.TempDir(), "b.json"), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, it := range append(a, b...) {
		if seen[it.Token] {
			t.Fatalf("token of %s issued twice", it.Actor)
		}
		seen[it.Token] = true
	}
}

// zeros is a broken random source.
type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("entropy pool on fire") }

func TestGeneratePrincipalsBadRandom(t *testing.T) {
	dir := sampleDir(t)
	for name, r := range map[string]interface{ Read([]byte) (int, error) }{
		"repeats": zeros{}, "fails": failing{},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "principals.json")
			issued, err := GeneratePrincipals(path, dir, r)
			if err == nil || issued != nil {
				t.Fatalf("GeneratePrincipals = %d tokens, %v; want an error", len(issued), err)
			}
			if _, serr := os.Stat(path); !errors.Is(serr, fs.ErrNotExist) {
				t.Errorf("a file was left behind: %v", serr)
			}
			if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 0 {
				t.Errorf("%d entries left in the folder", len(entries))
			}
		})
	}
}

func TestEnsurePrincipals(t *testing.T) {
	dir := sampleDir(t)
	path := filepath.Join(t.TempDir(), "principals.json")
	p1, issued, err := EnsurePrincipals(path, dir, seeded(3))
	if err != nil || len(issued) == 0 {
		t.Fatalf("first EnsurePrincipals: %d issued, %v", len(issued), err)
	}
	p2, again, err := EnsurePrincipals(path, dir, seeded(4))
	if err != nil || again != nil {
		t.Fatalf("second EnsurePrincipals: %d issued, %v; want it to load", len(again), err)
	}
	for _, it := range issued {
		for _, p := range []*Principals{p1, p2} {
			if a, ok := p.Authenticate(it.Token); !ok || a != it.Actor {
				t.Errorf("Authenticate(token of %s) = %v, %v", it.Actor, a, ok)
			}
		}
	}

	// A bad file is reported, not replaced.
	bad := filepath.Join(t.TempDir(), "principals.json")
	if err := os.WriteFile(bad, []byte(`{"principals": [}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, issued, err := EnsurePrincipals(bad, dir, nil); err == nil || issued != nil {
		t.Fatalf("EnsurePrincipals(bad file) = %d issued, %v; want the syntax error", len(issued), err)
	}
}

// Of processes starting together on an empty data folder, exactly one issues
// tokens; all of them end up with the same principals.
func TestEnsurePrincipalsRace(t *testing.T) {
	dir := sampleDir(t)
	path := filepath.Join(t.TempDir(), "data", "principals.json")
	const n = 20
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners [][]IssuedToken
		loaded  []*Principals
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			p, issued, err := EnsurePrincipals(path, dir, seeded(byte(10+i)))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("EnsurePrincipals: %v", err)
				return
			}
			if issued != nil {
				winners = append(winners, issued)
			}
			loaded = append(loaded, p)
		})
	}
	close(start)
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d callers issued tokens, want exactly 1", len(winners))
	}
	for _, p := range loaded {
		for _, it := range winners[0] {
			if a, ok := p.Authenticate(it.Token); !ok || a != it.Actor {
				t.Fatalf("a caller's principals refuse the winner's token of %s", it.Actor)
			}
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("folder holds %d entries, want 1", len(entries))
	}
}

func hashOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func TestLoadPrincipals(t *testing.T) {
	dir := sampleDir(t)
	good := `{"principals": [
  {"role": "street", "id": "longqiao", "token_sha256": "` + hashOf("street-token") + `"},
  {"role": "department", "id": "water-bureau", "token_sha256": "` + hashOf("water-token") + `"},
  {"role": "unit", "id": "putian-university", "token_sha256": "` + hashOf("unit-token") + `"},
  {"role": "auditor", "id": "audit.office-2", "token_sha256": "` + hashOf("auditor-token") + `"}
]}`
	path := filepath.Join(t.TempDir(), "principals.json")
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPrincipals(path, dir)
	if err != nil {
		t.Fatalf("LoadPrincipals: %v", err)
	}
	for token, want := range map[string]domain.Actor{
		"street-token":  {Role: domain.ActorStreet, ID: "longqiao"},
		"water-token":   {Role: domain.ActorDepartment, ID: "water-bureau"},
		"unit-token":    {Role: domain.ActorUnit, ID: "putian-university"},
		"auditor-token": {Role: domain.ActorAuditor, ID: "audit.office-2"},
	} {
		if got, ok := p.Authenticate(token); !ok || got != want {
			t.Errorf("Authenticate(%q) = %v, %v; want %v", token, got, ok, want)
		}
	}
	if _, ok := p.Authenticate("other-token"); ok {
		t.Error("an unknown token was accepted")
	}

	cases := []struct {
		name, old, new string
		raw            string
		path           string
		line           int
		problem        string
		secret         string // must not appear in the message
	}{
		{name: "unknown street", old: `"id": "longqiao"`, new: `"id": "longqaio"`,
			path: "$.principals[0].id", line: 2, problem: `unknown street "longqaio"`},
		{name: "department named as a unit", old: `"role": "unit", "id": "putian-university"`, new: `"role": "unit", "id": "water-bureau"`,
			path: "$.principals[2].id", line: 4, problem: `unknown unit "water-bureau"`},
		{name: "unit named as a department", old: `"role": "department", "id": "water-bureau"`, new: `"role": "department", "id": "putian-university"`,
			path: "$.principals[1].id", line: 3, problem: `unknown department "putian-university"`},
		{name: "unknown role", old: `"role": "auditor"`, new: `"role": "admin"`,
			path: "$.principals[3].role", line: 5, problem: `unknown role "admin"`},
		{name: "unknown district", old: `"role": "street", "id": "longqiao"`, new: `"role": "district", "id": "longqiao"`,
			path: "$.principals[0].id", line: 2, problem: `unknown district "longqiao"`},
		{name: "unknown platform", old: `"role": "department", "id": "water-bureau"`, new: `"role": "platform", "id": "water-bureau"`,
			path: "$.principals[1].id", line: 3, problem: `unknown platform "water-bureau"`},
		{name: "system is not a principal", old: `"role": "auditor"`, new: `"role": "system"`,
			path: "$.principals[3].role", line: 5, problem: `unknown role "system"`},
		{name: "empty id", old: `"id": "audit.office-2"`, new: `"id": ""`,
			path: "$.principals[3].id", line: 5, problem: "an id is required"},
		{name: "auditor id with a space", old: `"id": "audit.office-2"`, new: `"id": "audit office"`,
			path: "$.principals[3].id", line: 5, problem: `id "audit office" may not hold spaces`},
		{name: "uppercase hash", old: hashOf("water-token"), new: strings.ToUpper(hashOf("water-token")),
			path: "$.principals[1].token_sha256", line: 3, problem: "want 64 lowercase hex digits"},
		{name: "short hash", old: hashOf("water-token"), new: hashOf("water-token")[:40],
			path: "$.principals[1].token_sha256", line: 3, problem: "got 40 characters"},
		{name: "a token where its hash belongs", old: hashOf("water-token"), new: "wst_s3cr3t-s3cr3t-s3cr3t",
			path: "$.principals[1].token_sha256", line: 3, problem: "holds a token, not its hash", secret: "s3cr3t"},
		{name: "duplicate principal", old: `"role": "unit", "id": "putian-university"`, new: `"role": "street", "id": "longqiao"`,
			path: "$.principals[2]", line: 4, problem: "principal street:longqiao is already at $.principals[0]"},
		{name: "duplicate hash", old: hashOf("unit-token"), new: hashOf("water-token"),
			path: "$.principals[2].token_sha256", line: 4, problem: "unit:putian-university has the same token as $.principals[1] (department:water-bureau)"},
		{name: "unknown field", old: `"role": "street",`, new: `"role": "street", "token": "x",`,
			path: "$.principals[0].token", line: 2, problem: `unknown field "token" (known: role, id, token_sha256)`},
		{name: "wrong type", old: `"id": "longqiao"`, new: `"id": ["longqiao"]`,
			path: "$.principals[0].id", line: 2, problem: "want a string, got an array"},
		{name: "syntax error", old: `"role": "street",`, new: `"role": "street"`,
			line: 2, problem: "invalid JSON"},
		{name: "no principals key", raw: `{}`, path: "$.principals", problem: "is required"},
		{name: "empty list", raw: `{"principals": []}`, path: "$.principals", line: 1, problem: "needs at least one principal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.raw
			if data == "" {
				data = edit(t, good, tc.old, tc.new)
			}
			path := filepath.Join(t.TempDir(), "principals.json")
			if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadPrincipals(path, dir)
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FileError", err)
			}
			if fe.Kind != "principals" || fe.File != path || fe.Path != tc.path || fe.Line != tc.line {
				t.Errorf("got %s %s %q line %d, want principals %s %q line %d (error: %v)",
					fe.Kind, fe.File, fe.Path, fe.Line, path, tc.path, tc.line, err)
			}
			if !strings.Contains(fe.Problem, tc.problem) {
				t.Errorf("problem %q, want it to hold %q", fe.Problem, tc.problem)
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
				t.Errorf("the message repeats the secret: %v", err)
			}
		})
	}
}

func TestLoadPrincipalsMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "principals.json")
	_, err := LoadPrincipals(path, sampleDir(t))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error %v does not match fs.ErrNotExist", err)
	}
}
