package config

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/whistle-gov/whistle/domain"
)

// TokenPrefix starts every token GeneratePrincipals issues, so that a token
// is recognisable in a shell history or a secret scanner.
const TokenPrefix = "wst_"

// tokenBytes is the randomness in a token: 256 bits.
const tokenBytes = 32

// Principals are the callers the API knows, by the SHA-256 of their token.
// It is safe for concurrent use once loaded.
type Principals struct {
	byHash map[[sha256.Size]byte]principal
	actors []domain.Actor // in file order
}

type principal struct {
	sum   [sha256.Size]byte
	actor domain.Actor
}

// IssuedToken is a token that GeneratePrincipals created. Only its hash is
// stored: print Token once to whoever acts as Actor, and do not log it.
type IssuedToken struct {
	Actor domain.Actor
	Token string
}

// principalsFile is the file's shape:
// {"principals": [{"role": "street", "id": "longqiao", "token_sha256": "..."}]}.
type principalsFile struct {
	Principals []principalEntry `json:"principals"`
}

type principalEntry struct {
	Role        string `json:"role"`
	ID          string `json:"id"`
	TokenSHA256 string `json:"token_sha256"`
}

// Authenticate returns the actor whose token this is. The token is hashed with
// SHA-256 and looked up; the stored hash is not a secret, so a map look-up is
// safe, and the final comparison is in constant time all the same.
func (p *Principals) Authenticate(token string) (domain.Actor, bool) {
	if p == nil || token == "" {
		return domain.Actor{}, false
	}
	sum := sha256.Sum256([]byte(token))
	e, found := p.byHash[sum]
	if subtle.ConstantTimeCompare(sum[:], e.sum[:]) != 1 || !found {
		return domain.Actor{}, false
	}
	return e.actor, true
}

// Actors lists the principals in file order.
func (p *Principals) Actors() []domain.Actor {
	if p == nil {
		return nil
	}
	return append([]domain.Actor(nil), p.actors...)
}

// LoadPrincipals reads, strictly decodes and validates a principals file
// against a directory that has been validated (LoadDirectory and
// SampleDirectory return such). Every error is a *FileError naming the file
// and the JSON path; a missing file matches fs.ErrNotExist.
func LoadPrincipals(path string, dir *domain.Directory) (*Principals, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fileIOError("principals", path, "cannot read", err)
	}
	return parsePrincipals(path, data, dir)
}

func parsePrincipals(file string, data []byte, dir *domain.Directory) (*Principals, error) {
	if dir == nil {
		return nil, &FileError{Kind: "principals", File: file, Problem: "no directory to check the principals against"}
	}
	var f principalsFile
	doc, err := decodeStrict("principals", file, data, &f)
	if err != nil {
		return nil, err
	}
	if _, ok := doc.offsets["$.principals"]; !ok {
		return nil, doc.errorf("$.principals", nil, "is required")
	}
	if len(f.Principals) == 0 {
		return nil, doc.errorf("$.principals", nil, "needs at least one principal, or nobody can call the API")
	}
	p := &Principals{byHash: map[[sha256.Size]byte]principal{}}
	seenActor := map[domain.Actor]string{}
	seenHash := map[[sha256.Size]byte]string{}
	for i, e := range f.Principals {
		at := fmt.Sprintf("$.principals[%d]", i)
		role, err := domain.ParsePrincipalRole(e.Role)
		if err != nil {
			return nil, doc.errorf(at+".role", err, "%v", err)
		}
		if err := checkPrincipalID(role, e.ID, dir); err != nil {
			return nil, doc.errorf(at+".id", nil, "%v", err)
		}
		actor := domain.Actor{Role: role, ID: e.ID}
		if prev, dup := seenActor[actor]; dup {
			return nil, doc.errorf(at, nil, "principal %s is already at %s", actor, prev)
		}
		seenActor[actor] = at
		sum, err := parseSHA256(e.TokenSHA256)
		if err != nil {
			return nil, doc.errorf(at+".token_sha256", nil, "%v", err)
		}
		if prev, dup := seenHash[sum]; dup {
			return nil, doc.errorf(at+".token_sha256", nil,
				"%s has the same token as %s (%s); every principal needs its own", actor, prev, p.byHash[sum].actor)
		}
		seenHash[sum] = at
		p.byHash[sum] = principal{sum: sum, actor: actor}
		p.actors = append(p.actors, actor)
	}
	return p, nil
}

// checkPrincipalID checks that a principal's id exists in the directory under
// its role. Auditors are not in the directory; their id need only be printable
// without spaces, since it appears in event envelopes and logs.
func checkPrincipalID(role domain.ActorRole, id string, dir *domain.Directory) error {
	if id == "" {
		return errors.New("an id is required")
	}
	switch role {
	case domain.ActorStreet:
		if _, ok := dir.Street(id); !ok {
			return fmt.Errorf("unknown street %q (not in the directory's streets)", id)
		}
	case domain.ActorDepartment:
		if !dir.IsDepartment(id) {
			return fmt.Errorf("unknown department %q (not in the directory's departments)", id)
		}
	case domain.ActorUnit:
		if !dir.IsUnit(id) {
			return fmt.Errorf("unknown unit %q (not in the directory's units)", id)
		}
	case domain.ActorDistrict:
		if _, ok := dir.District(id); !ok {
			return fmt.Errorf("unknown district %q (not in the directory's districts)", id)
		}
	case domain.ActorPlatform:
		if !dir.IsPlatform(id) {
			return fmt.Errorf("unknown platform %q (not in the directory's platforms)", id)
		}
	default:
		if len(id) > 64 {
			return fmt.Errorf("id %q is longer than 64 bytes", id)
		}
		if strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
			return fmt.Errorf("id %q may not hold spaces or control characters", id)
		}
	}
	return nil
}

// parseSHA256 reads 64 lowercase hex digits. A wrong value is not quoted back:
// it may be a token pasted where its hash belongs, and errors end up in logs.
func parseSHA256(s string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	if strings.HasPrefix(s, TokenPrefix) {
		return sum, fmt.Errorf("holds a token, not its hash: store the hex SHA-256 of the token, and issue a new token since this one was written down")
	}
	if len(s) != hex.EncodedLen(sha256.Size) {
		return sum, fmt.Errorf("want 64 lowercase hex digits (the SHA-256 of the token), got %d characters", len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return sum, fmt.Errorf("want 64 lowercase hex digits (the SHA-256 of the token), got %q at character %d", c, i+1)
		}
	}
	_, err := hex.Decode(sum[:], []byte(s))
	return sum, err
}

// GeneratePrincipals creates a principals file with one principal for every
// street, department, unit, district and platform of the directory and one
// auditor ("auditor"),
// each with a fresh token read from random (crypto/rand when nil). It stores
// only the tokens' hashes and returns the tokens, once.
//
// The file is created with mode 0600, along with its folder (0700) if need be.
// It appears whole or not at all, and is never replaced: if the file already
// exists, or another process creates it first, GeneratePrincipals issues
// nothing and returns a *FileError that matches fs.ErrExist.
func GeneratePrincipals(path string, dir *domain.Directory, random io.Reader) ([]IssuedToken, error) {
	fail := func(err error) ([]IssuedToken, error) {
		return nil, fileIOError("principals", path, "cannot create", err)
	}
	if dir == nil {
		return fail(errors.New("no directory to issue principals for"))
	}
	exists := func(err error) ([]IssuedToken, error) {
		return nil, &FileError{Kind: "principals", File: path,
			Problem: "already exists; remove it to issue new tokens", Err: err}
	}
	if _, err := os.Lstat(path); err == nil {
		return exists(fs.ErrExist)
	}
	if random == nil {
		random = rand.Reader
	}
	var actors []domain.Actor
	for _, s := range dir.Streets {
		actors = append(actors, domain.Actor{Role: domain.ActorStreet, ID: s.ID})
	}
	for _, o := range dir.Departments {
		actors = append(actors, domain.Actor{Role: domain.ActorDepartment, ID: o.ID})
	}
	for _, o := range dir.Units {
		actors = append(actors, domain.Actor{Role: domain.ActorUnit, ID: o.ID})
	}
	for _, d := range dir.Districts {
		actors = append(actors, domain.Actor{Role: domain.ActorDistrict, ID: d.ID})
	}
	for _, o := range dir.Platforms {
		actors = append(actors, domain.Actor{Role: domain.ActorPlatform, ID: o.ID})
	}
	actors = append(actors, domain.Actor{Role: domain.ActorAuditor, ID: "auditor"})

	issued := make([]IssuedToken, 0, len(actors))
	var buf bytes.Buffer
	buf.WriteString("{\"principals\": [\n")
	seen := map[[sha256.Size]byte]bool{}
	for i, a := range actors {
		var b [tokenBytes]byte
		if _, err := io.ReadFull(random, b[:]); err != nil {
			return fail(fmt.Errorf("reading random bytes: %w", err))
		}
		token := TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
		sum := sha256.Sum256([]byte(token))
		if seen[sum] {
			// Only a broken random source repeats 256 bits.
			return fail(errors.New("the random source repeated itself; refusing to issue equal tokens"))
		}
		seen[sum] = true
		line, err := json.Marshal(principalEntry{Role: string(a.Role), ID: a.ID, TokenSHA256: hex.EncodeToString(sum[:])})
		if err != nil {
			return fail(err)
		}
		buf.WriteString("  ")
		buf.Write(line)
		if i < len(actors)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
		issued = append(issued, IssuedToken{Actor: a, Token: token})
	}
	buf.WriteString("]}\n")
	if err := createExclusive(path, buf.Bytes(), 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return exists(err) // another process won
		}
		return fail(err)
	}
	return issued, nil
}

// createExclusive writes a new file atomically without ever replacing one: the
// data goes to a temporary file in the same folder, is synced, and is then
// hard-linked to path. Unlike a rename, the link fails with fs.ErrExist when
// path exists, so of two processes creating the file only one wins, and a
// reader sees either no file or the whole of it.
func createExclusive(path string, data []byte, perm os.FileMode) (err error) {
	folder := filepath.Dir(path)
	if err := os.MkdirAll(folder, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(folder, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if cerr := os.Remove(tmp); cerr != nil && err == nil && !errors.Is(cerr, fs.ErrNotExist) {
			err = cerr
		}
	}()
	if err := writeSync(f, data, perm); err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	return syncDir(folder)
}

func writeSync(f *os.File, data []byte, perm os.FileMode) error {
	// Chmod so that the mode is exactly perm whatever the umask.
	err := f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes the new name durable.
func syncDir(folder string) error {
	d, err := os.Open(folder)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// EnsurePrincipals loads the principals file, or, when it is missing, creates
// it with GeneratePrincipals and returns the tokens it issued as well. When
// another process creates the file at the same moment, EnsurePrincipals loads
// that one and issues nothing.
func EnsurePrincipals(path string, dir *domain.Directory, random io.Reader) (*Principals, []IssuedToken, error) {
	p, err := LoadPrincipals(path, dir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return p, nil, err
	}
	issued, err := GeneratePrincipals(path, dir, random)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, nil, err
	}
	p, err = LoadPrincipals(path, dir)
	if err != nil {
		return nil, nil, err
	}
	return p, issued, nil
}
