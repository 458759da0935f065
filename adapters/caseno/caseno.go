// Package caseno hands out the short case numbers of receipts, which people
// read aloud: one sequence per street and day, "20261202-0007", kept in the
// JetStream key-value bucket WHISTLE_CASENO beside the log. A number is
// taken with a compare-and-set, so two whistled sharing the bus never hand
// out the same one; it then goes into the raise's event, so the log, a
// replay and every read see the same number. A raise that is refused or
// retried after taking one leaves a gap, never a duplicate.
package caseno

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the key-value bucket of the sequences.
const Bucket = "WHISTLE_CASENO"

// Config shapes Numbers.
type Config struct {
	// Replicas of the bucket on a cluster, like whistle's other streams;
	// default 1.
	Replicas int
}

// Numbers hands out case numbers. It is safe for concurrent use.
type Numbers struct {
	kv  jetstream.KeyValue
	loc *time.Location

	// The raises of one street take their numbers one at a time here, from
	// the last revision this process wrote: one write per number and no
	// read, where concurrent raises would otherwise read, collide and
	// retry. Another whistled's write only makes the next update fail and
	// read again.
	mu   sync.Mutex
	keys map[string]*sequence

	// tokenSecret is the deployment's secret for receipt tokens derived
	// from a command (TokenSecret).
	tokenSecret []byte
}

// tokenSecretKey holds TokenSecret in the bucket; the sequences' keys are
// "<street>.<day>", so a key without a dot is never one of them.
const tokenSecretKey = "receipt-token-secret"

type sequence struct {
	mu       sync.Mutex
	seq, rev uint64 // as last written or read; rev 0: not known
}

func (n *Numbers) sequenceOf(key string) *sequence {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, ok := n.keys[key]
	if !ok {
		if len(n.keys) > 4096 {
			clear(n.keys) // yesterday's keys; a forgotten one is read again
		}
		s = &sequence{}
		n.keys[key] = s
	}
	return s
}

// Open creates or updates the bucket. Days are those of loc (the
// calendar's time zone).
func Open(ctx context.Context, js jetstream.JetStream, loc *time.Location, cfg Config) (*Numbers, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "whistle: the last case number of each street and day",
		History: 1, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("caseno: bucket %s (replicas %d): %w", Bucket, cfg.Replicas, err)
	}
	secret, err := loadTokenSecret(ctx, kv)
	if err != nil {
		return nil, err
	}
	return &Numbers{kv: kv, loc: loc, keys: map[string]*sequence{}, tokenSecret: secret}, nil
}

// TokenSecret is a random 32-byte secret, made by the first whistled to
// open the bucket and shared by every whistled on the bus: a receipt token
// derived from it and a command's id is the same on every instance, so a
// retried raise or ticket (answered with the case its first try made) is
// answered with the link that case holds.
func (n *Numbers) TokenSecret() []byte { return n.tokenSecret }

func loadTokenSecret(ctx context.Context, kv jetstream.KeyValue) ([]byte, error) {
	made := make([]byte, 32)
	if _, err := rand.Read(made); err != nil {
		return nil, err
	}
	_, err := kv.Create(ctx, tokenSecretKey, made)
	if err == nil {
		return made, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("caseno: make the receipt token secret: %w", err)
	}
	// Another whistled made it first: everyone uses that one.
	entry, err := kv.Get(ctx, tokenSecretKey)
	if err != nil {
		return nil, fmt.Errorf("caseno: read the receipt token secret: %w", err)
	}
	if len(entry.Value()) != 32 {
		return nil, fmt.Errorf("caseno: the receipt token secret in %s holds %d bytes, not 32", Bucket, len(entry.Value()))
	}
	return entry.Value(), nil
}

// Next takes the next number of street on the day of now: the day and a
// sequence from 1, at least four digits ("20261202-0007"). street must be a
// valid key (a directory id is). When it returns an error, no number was
// taken, or one was and is lost (a gap).
func (n *Numbers) Next(ctx context.Context, street string, now time.Time) (string, error) {
	day := now.In(n.loc).Format("20060102")
	key := street + "." + day
	sq := n.sequenceOf(key)
	sq.mu.Lock()
	defer sq.mu.Unlock()
	for range 32 {
		if sq.rev == 0 {
			entry, err := n.kv.Get(ctx, key)
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound):
				sq.seq = 0
			case err != nil:
				return "", fmt.Errorf("caseno: read %s: %w", key, err)
			default:
				if sq.seq, err = strconv.ParseUint(string(entry.Value()), 10, 64); err != nil {
					return "", fmt.Errorf("caseno: %s holds %q", key, entry.Value())
				}
				sq.rev = entry.Revision()
			}
		}
		next := []byte(strconv.FormatUint(sq.seq+1, 10))
		var rev uint64
		var err error
		if sq.rev == 0 {
			rev, err = n.kv.Create(ctx, key, next)
		} else {
			rev, err = n.kv.Update(ctx, key, next, sq.rev)
		}
		if err == nil {
			sq.seq, sq.rev = sq.seq+1, rev
			return fmt.Sprintf("%s-%04d", day, sq.seq), nil
		}
		sq.rev = 0 // read again before the next try
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
			return "", fmt.Errorf("caseno: take %s: %w", key, err)
		}
		// Another whistled took it meanwhile: read again.
	}
	return "", fmt.Errorf("caseno: take %s: too much contention", key)
}

func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
