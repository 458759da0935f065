// Package pii keeps requesters' personal data readable only while their
// case's key lives: each case has a random AES-256 key of its own, kept in a
// JetStream key-value bucket beside the log (never in it); the requester is
// sealed with AES-GCM under that key before the command that carries it is
// decided, and opened again for a masked or revealed answer. Destroying the
// key (Destroy) forgets the requester for good — crypto-shredding — while the
// log, its hash chain (which covers the ciphertext) and every figure stay
// whole.
//
// Nothing here logs; a requester in clear never leaves the caller's memory.
package pii

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/whistle-gov/whistle/domain"
)

// Bucket is the key-value bucket of the cases' keys.
const Bucket = "WHISTLE_KEYS"

// Sentinel errors that callers branch on.
var (
	// ErrNoKey: the key was destroyed (the requester forgotten) or never
	// stored; the requester cannot be opened, now or later.
	ErrNoKey = errors.New("pii: no key (destroyed or never stored)")
	// ErrCorrupt: the ciphertext does not open with its key: it was not
	// sealed under it, or was altered.
	ErrCorrupt = errors.New("pii: sealed requester does not open with its key")
)

// Formats, so that a later change of cipher or key size can be told apart.
const (
	keyFormat    = 1
	sealedFormat = 1
	keySize      = 32 // AES-256
)

// Config shapes a Vault.
type Config struct {
	// Replicas of the bucket on a cluster, like whistle's other streams and
	// buckets; default 1.
	Replicas int
}

// Vault stores the cases' keys and seals and opens requesters with them. It
// is safe for concurrent use.
type Vault struct {
	kv     jetstream.KeyValue
	stream jetstream.Stream
}

// Open creates or updates the bucket and returns a Vault over it.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Vault, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Replicas < 1 || cfg.Replicas > 5 {
		return nil, fmt.Errorf("pii: replicas %d: want 1 to 5", cfg.Replicas)
	}
	// The bucket's stream is made here, in the layout of a key-value bucket
	// of history 1, rather than by CreateOrUpdateKeyValue: a destroyed key
	// must be overwritten on disk, not only marked deleted, which takes a
	// secure message delete, and a bucket made the usual way denies message
	// deletes for good.
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: "KV_" + Bucket, Description: "whistle: one key per case for its requester's personal data",
		Subjects: []string{"$KV." + Bucket + ".>"}, MaxMsgsPerSubject: 1, MaxMsgs: -1, MaxBytes: -1, MaxMsgSize: -1,
		MaxConsumers: -1, Storage: jetstream.FileStorage, Replicas: cfg.Replicas, Discard: jetstream.DiscardNew,
		AllowRollup: true, AllowDirect: true, Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("pii: bucket %s (replicas %d): %w", Bucket, cfg.Replicas, err)
	}
	kv, err := js.KeyValue(ctx, Bucket)
	if err != nil {
		return nil, fmt.Errorf("pii: bucket %s: %w", Bucket, err)
	}
	return &Vault{kv: kv, stream: stream}, nil
}

// Key is one case's key, in memory. Seal and Fingerprint are pure and cheap;
// a Key is safe for concurrent use.
type Key struct {
	id   string
	aead cipher.AEAD
	mac  []byte
}

// ID is the key's id, which a SealedRequester names.
func (k *Key) ID() string { return k.id }

// Key returns the key of id, made and stored first when there is none yet:
// a command retried with the same id (an Idempotency-Key) gets the same key,
// so its fingerprint matches. When it returns, the key is stored (as durably
// as the bucket's stream stores anything), so a sealed requester appended
// after it can be opened. Ids are the callers' (a case id); they must be
// valid key-value keys.
func (v *Vault) Key(ctx context.Context, id string) (*Key, error) {
	raw := make([]byte, 1+keySize)
	raw[0] = keyFormat
	if _, err := rand.Read(raw[1:]); err != nil {
		return nil, fmt.Errorf("pii: no randomness for a key: %w", err)
	}
	_, err := v.kv.Create(ctx, id, raw)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return v.get(ctx, id)
	}
	if err != nil {
		return nil, fmt.Errorf("pii: store key %s: %w", id, err)
	}
	return newKey(id, raw)
}

func (v *Vault) get(ctx context.Context, id string) (*Key, error) {
	entry, err := v.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNoKey, id)
	}
	if err != nil {
		return nil, fmt.Errorf("pii: read key %s: %w", id, err)
	}
	return newKey(id, entry.Value())
}

// newKey derives the cipher and the fingerprint key from a stored key, so
// that neither use weakens the other.
func newKey(id string, raw []byte) (*Key, error) {
	if len(raw) != 1+keySize || raw[0] != keyFormat {
		return nil, fmt.Errorf("pii: key %s: unknown format (%d bytes)", id, len(raw))
	}
	derive := func(purpose string) []byte {
		m := hmac.New(sha256.New, raw[1:])
		m.Write([]byte(purpose))
		return m.Sum(nil)
	}
	block, err := aes.NewCipher(derive("whistle requester encryption"))
	if err != nil {
		return nil, fmt.Errorf("pii: key %s: %w", id, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("pii: key %s: %w", id, err)
	}
	return &Key{id: id, aead: aead, mac: derive("whistle requester fingerprint")}, nil
}

// plain is what is sealed.
type plain struct {
	Name  string `json:"name,omitempty"`
	Phone string `json:"phone"`
}

// Seal encrypts r with a random nonce; the key id is bound in as associated
// data, so a ciphertext moved to another case does not open there.
func (k *Key) Seal(r domain.Requester) (domain.SealedRequester, error) {
	msg, err := json.Marshal(plain{Name: r.Name(), Phone: r.Phone()})
	if err != nil {
		return domain.SealedRequester{}, fmt.Errorf("pii: encode requester: %w", err)
	}
	out := make([]byte, 1+k.aead.NonceSize(), 1+k.aead.NonceSize()+len(msg)+k.aead.Overhead())
	out[0] = sealedFormat
	if _, err := rand.Read(out[1:]); err != nil {
		return domain.SealedRequester{}, fmt.Errorf("pii: no randomness for a nonce: %w", err)
	}
	out = k.aead.Seal(out, out[1:], msg, []byte(k.id))
	clear(msg)
	return domain.SealedRequester{KeyID: k.id, Ciphertext: out}, nil
}

// SealText encrypts a resident's free text under k; purpose ("comment") is
// bound in with the key id, so a text is opened only as what it was sealed
// as, never as a requester or as another field.
func (k *Key) SealText(purpose, text string) (domain.SealedText, error) {
	out := make([]byte, 1+k.aead.NonceSize(), 1+k.aead.NonceSize()+len(text)+k.aead.Overhead())
	out[0] = sealedFormat
	if _, err := rand.Read(out[1:]); err != nil {
		return domain.SealedText{}, fmt.Errorf("pii: no randomness for a nonce: %w", err)
	}
	out = k.aead.Seal(out, out[1:], []byte(text), textData(k.id, purpose))
	return domain.SealedText{KeyID: k.id, Ciphertext: out}, nil
}

// OpenText decrypts a text sealed for purpose: ErrNoKey once the key is
// destroyed, ErrCorrupt when it does not open.
func (v *Vault) OpenText(ctx context.Context, purpose string, s domain.SealedText) (string, error) {
	k, err := v.get(ctx, s.KeyID)
	if err != nil {
		return "", err
	}
	n := k.aead.NonceSize()
	if len(s.Ciphertext) < 1+n || s.Ciphertext[0] != sealedFormat {
		return "", fmt.Errorf("%w: %s", ErrCorrupt, s.KeyID)
	}
	msg, err := k.aead.Open(nil, s.Ciphertext[1:1+n], s.Ciphertext[1+n:], textData(k.id, purpose))
	if err != nil {
		return "", fmt.Errorf("%w: %s", ErrCorrupt, s.KeyID)
	}
	return string(msg), nil
}

// textData is a sealed text's associated data. A requester's is the bare
// key id; a text's always holds a NUL, which no key id (a case id) does.
func textData(id, purpose string) []byte { return []byte(id + "\x00" + purpose) }

// Fingerprint is a keyed hash of r, for telling a retried request from
// another one without a hash of the personal data itself (a phone number's
// plain SHA-256 is found by trying every number); it dies with the key.
func (k *Key) Fingerprint(r domain.Requester) string {
	m := hmac.New(sha256.New, k.mac)
	m.Write([]byte(r.Name()))
	m.Write([]byte{0})
	m.Write([]byte(r.Phone()))
	return hex.EncodeToString(m.Sum(nil))
}

// Open decrypts a sealed requester with its key: ErrNoKey once the key is
// destroyed, ErrCorrupt when the ciphertext does not open.
func (v *Vault) Open(ctx context.Context, s domain.SealedRequester) (domain.Requester, error) {
	k, err := v.get(ctx, s.KeyID)
	if err != nil {
		return domain.Requester{}, err
	}
	return k.Open(s)
}

// Open decrypts a requester sealed under k.
func (k *Key) Open(s domain.SealedRequester) (domain.Requester, error) {
	n := k.aead.NonceSize()
	if s.KeyID != k.id || len(s.Ciphertext) < 1+n || s.Ciphertext[0] != sealedFormat {
		return domain.Requester{}, fmt.Errorf("%w: %s", ErrCorrupt, s.KeyID)
	}
	msg, err := k.aead.Open(nil, s.Ciphertext[1:1+n], s.Ciphertext[1+n:], []byte(k.id))
	if err != nil {
		return domain.Requester{}, fmt.Errorf("%w: %s", ErrCorrupt, s.KeyID)
	}
	var p plain
	err = json.Unmarshal(msg, &p)
	clear(msg)
	if err != nil {
		return domain.Requester{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, s.KeyID, err)
	}
	return domain.RestoreRequester(p.Name, p.Phone), nil
}

// Destroy erases the key of id: its stored copy is overwritten, so nothing
// sealed under it opens again, after a restart or a replay either. A key
// already gone is no error: Destroy may be retried.
func (v *Vault) Destroy(ctx context.Context, id string) error {
	// A bucket of history 1 holds one revision per key; loop in case a
	// concurrent Key stored one again (then that one goes too).
	for range 3 {
		entry, err := v.kv.Get(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pii: destroy key %s: %w", id, err)
		}
		if err := v.stream.SecureDeleteMsg(ctx, entry.Revision()); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("pii: destroy key %s: %w", id, err)
		}
	}
	return fmt.Errorf("pii: destroy key %s: it keeps coming back", id)
}
