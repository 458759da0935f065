package eventstore

import (
	"context"
	"errors"
	"fmt"
)

// lifeKey holds, in a call's context, the store's life that BeginCall
// watches, so that CallError sees a Close its AfterFunc has not yet passed on.
type lifeKey struct{}

// BeginCall starts one call of an adapter named store (e.g. "jetstream"): it
// refuses a closed store or a done ctx, and returns a context that is also
// cancelled, with ErrClosed as its cause, when life (the store's own
// context, cancelled by Close) ends. Call the returned CancelFunc when the
// call is over.
func BeginCall(ctx, life context.Context, closed bool, store, op string) (context.Context, context.CancelFunc, error) {
	if closed {
		return nil, nil, fmt.Errorf("%s: %s: %w", store, op, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: %s: %w", store, op, err)
	}
	cctx, cancel := context.WithCancelCause(context.WithValue(ctx, lifeKey{}, life))
	stop := context.AfterFunc(life, func() { cancel(ErrClosed) })
	return cctx, func() { stop(); cancel(nil) }, nil
}

// CallError wraps err from operation op of a call begun with BeginCall,
// preferring the reason the call ended (the caller's cancellation or
// deadline, or Close) over what the client library made of it, which often
// does not match context.Canceled or ErrClosed.
func CallError(ctx context.Context, store, op string, err error) error {
	cause := context.Cause(ctx)
	if life, ok := ctx.Value(lifeKey{}).(context.Context); ok && cause == nil && life.Err() != nil {
		// Close ended the call before BeginCall's AfterFunc, which runs in
		// its own goroutine, cancelled ctx.
		cause = ErrClosed
	}
	if cause == nil {
		return fmt.Errorf("%s: %s: %w", store, op, err)
	}
	if errors.Is(err, cause) {
		return fmt.Errorf("%s: %s: %w", store, op, err)
	}
	return fmt.Errorf("%s: %s: %w (%v)", store, op, cause, err)
}
