package eventstore

import (
	"context"
	"errors"
	"testing"
)

// A call cut short by Close reports ErrClosed even when the client library
// saw the store's cancellation before BeginCall's AfterFunc marked ctx.
func TestCallErrorAfterCloseIsErrClosed(t *testing.T) {
	for range 1000 {
		life, kill := context.WithCancel(context.Background())
		ctx, done, err := BeginCall(context.Background(), life, false, "test", "append")
		if err != nil {
			t.Fatal(err)
		}
		kill()
		err = CallError(ctx, "test", "append", context.Canceled)
		done()
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("CallError after Close = %v; want an error matching ErrClosed", err)
		}
	}
}

// The caller's own cancellation is reported as such, not as Close.
func TestCallErrorPrefersCallersCancellation(t *testing.T) {
	life, kill := context.WithCancel(context.Background())
	defer kill()
	parent, cancel := context.WithCancel(context.Background())
	ctx, done, err := BeginCall(parent, life, false, "test", "read")
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	cancel()
	err = CallError(ctx, "test", "read", errors.New("client: stream reset"))
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrClosed) {
		t.Fatalf("CallError after the caller cancelled = %v; want context.Canceled, not ErrClosed", err)
	}
	if err := CallError(ctx, "test", "read", errors.New("x")); err.Error() != "test: read: context canceled (x)" {
		t.Fatalf("message %q", err)
	}
}

func TestBeginCallRefusesClosedStore(t *testing.T) {
	_, _, err := BeginCall(context.Background(), context.Background(), true, "test", "head")
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("BeginCall on a closed store = %v; want ErrClosed", err)
	}
}
