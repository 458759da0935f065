package pii_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/whistle-gov/whistle/adapters/natsbus"
	"github.com/whistle-gov/whistle/adapters/pii"
	"github.com/whistle-gov/whistle/domain"
)

const (
	name  = "张三丰"
	phone = "13812341234"
)

// env is a real embedded nats-server in its own folder, restartable.
type env struct {
	t     testing.TB
	dir   string
	ns    *server.Server
	js    jetstream.JetStream
	vault *pii.Vault
}

func start(t testing.TB, syncAlways bool) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	e.restart(syncAlways)
	t.Cleanup(e.stop)
	return e
}

func (e *env) restart(syncAlways bool) {
	e.t.Helper()
	e.stop()
	ns, err := natsbus.StartEmbedded(natsbus.EmbeddedOptions{StoreDir: e.dir, SyncAlways: syncAlways})
	if err != nil {
		e.t.Fatal(err)
	}
	nc, err := natsbus.Connect(context.Background(), natsbus.ConnectConfig{Server: ns})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	if e.js, err = jetstream.New(nc); err != nil {
		e.t.Fatal(err)
	}
	if e.vault, err = pii.Open(context.Background(), e.js, pii.Config{}); err != nil {
		e.t.Fatal(err)
	}
	e.ns = ns
}

func (e *env) stop() {
	if e.ns != nil {
		e.ns.Shutdown()
		e.ns.WaitForShutdown()
		e.ns = nil
	}
}

func requester(t testing.TB) domain.Requester {
	t.Helper()
	r, err := domain.NewRequester(name, phone)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func seal(t testing.TB, v *pii.Vault, id string) (*pii.Key, domain.SealedRequester) {
	t.Helper()
	k, err := v.Key(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	s, err := k.Seal(requester(t))
	if err != nil {
		t.Fatal(err)
	}
	return k, s
}

func TestSealOpenAndTheCiphertextHidesEverything(t *testing.T) {
	ctx := context.Background()
	e := start(t, false)
	id := uuid.NewString()
	k, s := seal(t, e.vault, id)
	if s.KeyID != id || k.ID() != id {
		t.Fatalf("sealed under %q (key %q), want %q", s.KeyID, k.ID(), id)
	}
	for _, clear := range []string{name, phone, "138", "1234"} {
		if bytes.Contains(s.Ciphertext, []byte(clear)) {
			t.Fatalf("ciphertext holds %q in clear", clear)
		}
	}
	got, err := e.vault.Open(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name() != name || got.Phone() != phone {
		t.Fatalf("opened %q %q", got.Name(), got.Phone())
	}
	// A random nonce: the same requester seals to other bytes every time.
	_, again := seal(t, e.vault, id)
	if bytes.Equal(again.Ciphertext, s.Ciphertext) {
		t.Fatal("two seals of one requester are equal")
	}
	// An altered ciphertext, or one moved to another case, does not open.
	altered := domain.SealedRequester{KeyID: id, Ciphertext: bytes.Clone(s.Ciphertext)}
	altered.Ciphertext[len(altered.Ciphertext)-1] ^= 1
	other, _ := seal(t, e.vault, uuid.NewString())
	moved := domain.SealedRequester{KeyID: other.ID(), Ciphertext: s.Ciphertext}
	for what, bad := range map[string]domain.SealedRequester{"altered": altered, "moved": moved,
		"truncated": {KeyID: id, Ciphertext: s.Ciphertext[:5]}} {
		if _, err := e.vault.Open(ctx, bad); !errors.Is(err, pii.ErrCorrupt) {
			t.Errorf("%s ciphertext: %v, want ErrCorrupt", what, err)
		}
	}
	if _, err := e.vault.Open(ctx, domain.SealedRequester{KeyID: uuid.NewString(), Ciphertext: s.Ciphertext}); !errors.Is(err, pii.ErrNoKey) {
		t.Errorf("a key never stored: %v, want ErrNoKey", err)
	}
}

func TestKeyIsOnePerIDEvenWhenAskedConcurrently(t *testing.T) {
	e := start(t, false)
	id := uuid.NewString()
	r := requester(t)
	prints := make([]string, 8)
	var wg sync.WaitGroup
	for i := range prints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := e.vault.Key(context.Background(), id)
			if err != nil {
				t.Error(err)
				return
			}
			prints[i] = k.Fingerprint(r)
		}()
	}
	wg.Wait()
	for _, p := range prints[1:] {
		if p != prints[0] {
			t.Fatalf("one id gave several keys: fingerprints %v", prints)
		}
	}
	other, err := e.vault.Key(context.Background(), uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	if other.Fingerprint(r) == prints[0] {
		t.Fatal("two ids share a fingerprint")
	}
	if bytes.Contains([]byte(prints[0]), []byte(phone)) {
		t.Fatal("the fingerprint holds the phone")
	}
}

func TestDestroyErasesTheKeyForGood(t *testing.T) {
	ctx := context.Background()
	e := start(t, true)
	id := uuid.NewString()
	_, s := seal(t, e.vault, id)
	kept := uuid.NewString()
	_, sk := seal(t, e.vault, kept)
	kv, err := e.js.KeyValue(ctx, pii.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	raw := bytes.Clone(entry.Value())

	if err := e.vault.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.vault.Open(ctx, s); !errors.Is(err, pii.ErrNoKey) {
		t.Fatalf("open after destroy: %v, want ErrNoKey", err)
	}
	if err := e.vault.Destroy(ctx, id); err != nil {
		t.Fatalf("destroy twice: %v", err)
	}

	// After a restart: still gone, the other case's key still there, and
	// the destroyed key's bytes are nowhere on disk.
	e.restart(true)
	if _, err := e.vault.Open(ctx, s); !errors.Is(err, pii.ErrNoKey) {
		t.Fatalf("open after destroy and restart: %v, want ErrNoKey", err)
	}
	if _, err := e.vault.Open(ctx, sk); err != nil {
		t.Fatalf("another case's requester: %v", err)
	}
	e.stop()
	var files int
	err = filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, raw[1:]) {
			t.Errorf("%s still holds the destroyed key", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("the store folder is empty: nothing was checked")
	}
}

func TestOpenChecksReplicas(t *testing.T) {
	e := start(t, false)
	if _, err := pii.Open(context.Background(), e.js, pii.Config{Replicas: 7}); err == nil {
		t.Fatal("7 replicas accepted")
	}
}

// BenchmarkSealPerRaise is what a raise with a requester pays for its
// personal data: a new key stored in the bucket (fsynced, as whistled's
// default --fsync always does, or on the server's interval), the seal and
// the fingerprint; "seal only" leaves the store out.
func BenchmarkSealPerRaise(b *testing.B) {
	r := requester(b)
	for _, syncAlways := range []bool{true, false} {
		mode := "fsync=interval"
		if syncAlways {
			mode = "fsync=always"
		}
		b.Run("key+seal/"+mode, func(b *testing.B) {
			e := start(b, syncAlways)
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = uuid.NewString()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				k, err := e.vault.Key(context.Background(), ids[i])
				if err != nil {
					b.Fatal(err)
				}
				if _, err := k.Seal(r); err != nil {
					b.Fatal(err)
				}
				_ = k.Fingerprint(r)
			}
		})
	}
	b.Run("seal only", func(b *testing.B) {
		e := start(b, false)
		k, err := e.vault.Key(context.Background(), uuid.NewString())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := k.Seal(r); err != nil {
				b.Fatal(err)
			}
			_ = k.Fingerprint(r)
		}
	})
}

// TestSealedTextOpensOnlyAsWhatItWasSealedAs: a comment opens as a comment
// under its key, not as another purpose, not as a requester, and not once
// the key is destroyed.
func TestSealedTextOpensOnlyAsWhatItWasSealedAs(t *testing.T) {
	ctx := context.Background()
	e := start(t, false)
	id := uuid.NewString()
	k, _ := seal(t, e.vault, id)
	text := "请打电话给我 " + phone
	s, err := k.SealText("comment", text)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(s.Ciphertext, []byte(phone)) || s.KeyID != id {
		t.Fatalf("sealed %+v", s)
	}
	if got, err := e.vault.OpenText(ctx, "comment", s); err != nil || got != text {
		t.Fatalf("opened %q, %v", got, err)
	}
	if _, err := e.vault.OpenText(ctx, "note", s); !errors.Is(err, pii.ErrCorrupt) {
		t.Errorf("opened as another purpose: %v, want ErrCorrupt", err)
	}
	if _, err := e.vault.Open(ctx, domain.SealedRequester{KeyID: id, Ciphertext: s.Ciphertext}); !errors.Is(err, pii.ErrCorrupt) {
		t.Errorf("opened as a requester: %v, want ErrCorrupt", err)
	}
	if err := e.vault.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.vault.OpenText(ctx, "comment", s); !errors.Is(err, pii.ErrNoKey) {
		t.Errorf("after the key is destroyed: %v, want ErrNoKey", err)
	}
}
