// Package attachments keeps the cases' files (photos, documents) in a NATS
// JetStream object store bucket: chunked, checksummed (SHA-256) and
// replicated like whistle's other buckets. An object is named by its case
// and its sha256, so a case reads only its own files, and the bytes of an
// object are the ones the sha256 in the case's hash chain names.
package attachments

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the object store bucket of the attachments.
const Bucket = "WHISTLE_ATTACHMENTS"

// ErrNotFound: no such object for that case.
var ErrNotFound = errors.New("attachments: no such file")

// ErrCorrupt: the stored bytes do not hash to the sha256 they are kept under.
var ErrCorrupt = errors.New("attachments: stored bytes do not match their sha256")

// Config shapes a Store.
type Config struct {
	// Replicas of the bucket on a cluster, like the other buckets; default 1.
	Replicas int
}

// Store keeps and reads attachments. It is safe for concurrent use.
type Store struct {
	obj jetstream.ObjectStore
}

// Open creates or updates the bucket and returns a Store over it.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Replicas < 1 || cfg.Replicas > 5 {
		return nil, fmt.Errorf("attachments: replicas %d: want 1 to 5", cfg.Replicas)
	}
	obj, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: Bucket, Description: "whistle: the cases' photos and documents, by case and sha256",
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("attachments: bucket %s (replicas %d): %w", Bucket, cfg.Replicas, err)
	}
	return &Store{obj: obj}, nil
}

// name is the object's name: its case and its sha256.
func name(caseID, sum string) string { return caseID + "/" + sum }

// Put stores data under the case and its sha256 (computed here); it returns
// once the bucket has it, so an event naming it may be appended. Putting
// the same bytes again is harmless.
func (s *Store) Put(ctx context.Context, caseID, mediaType string, data []byte) (string, error) {
	h := sha256.Sum256(data)
	sum := hex.EncodeToString(h[:])
	if info, err := s.obj.GetInfo(ctx, name(caseID, sum)); err == nil && info.Size == uint64(len(data)) && info.Digest == digest(h[:]) {
		return sum, nil
	}
	_, err := s.obj.Put(ctx, jetstream.ObjectMeta{
		Name: name(caseID, sum), Headers: map[string][]string{"Content-Type": {mediaType}},
	}, bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("attachments: put %s: %w", name(caseID, sum), err)
	}
	return sum, nil
}

// Get reads the whole file of a case by its sha256, checked against it.
func (s *Store) Get(ctx context.Context, caseID, sum string) ([]byte, error) {
	res, err := s.obj.Get(ctx, name(caseID, sum))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("attachments: get %s: %w", name(caseID, sum), err)
	}
	defer res.Close()
	// Object results verify their own digest at EOF (an error then); the
	// check below also ties the bytes to the name the hash chain holds.
	data, err := io.ReadAll(res)
	if err != nil {
		return nil, fmt.Errorf("attachments: read %s: %w", name(caseID, sum), err)
	}
	h := sha256.Sum256(data)
	if hex.EncodeToString(h[:]) != sum {
		return nil, fmt.Errorf("%w: %s", ErrCorrupt, name(caseID, sum))
	}
	return data, nil
}

// digest is the object store's form of a SHA-256.
func digest(sum []byte) string { return "SHA-256=" + base64.URLEncoding.EncodeToString(sum) }
