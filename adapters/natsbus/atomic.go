package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Headers of JetStream's atomic batch publish (nats-server 2.12 and later).
const (
	HeaderBatchID     = "Nats-Batch-Id"
	HeaderBatchSeq    = "Nats-Batch-Sequence"
	HeaderBatchCommit = "Nats-Batch-Commit"
)

// MaxAtomicBatch is nats-server's default limit on the messages of one
// atomic batch.
const MaxAtomicBatch = 1000

// PublishAtomic writes msgs to stream as one atomic batch with the given
// batch id, and returns the stream sequence of the first message; the others
// follow it contiguously. The stream must allow atomic publish. Either every
// message is stored or none is: the server checks each message's
// expectations (expected last sequence, message id) before it stores any,
// and with fsync always it syncs the batch once before it acknowledges it,
// so the batch shares one fsync. A message id already stored refuses the
// whole batch (an *natsjs.APIError). On a timeout the batch may or may not
// have been stored.
//
// The messages gain the batch headers. Every message but the last is sent
// without waiting; the server answers the last, the commit.
func PublishAtomic(ctx context.Context, nc *nats.Conn, stream, id string, msgs []*nats.Msg) (uint64, error) {
	if len(msgs) == 0 || len(msgs) > MaxAtomicBatch {
		return 0, fmt.Errorf("natsbus: atomic batch %s: %d messages, want 1 to %d", id, len(msgs), MaxAtomicBatch)
	}
	for i, m := range msgs {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header.Set(HeaderBatchID, id)
		m.Header.Set(HeaderBatchSeq, strconv.Itoa(i+1))
		if i < len(msgs)-1 {
			m.Header.Del(HeaderBatchCommit)
			if err := nc.PublishMsg(m); err != nil {
				return 0, err
			}
		}
	}
	last := msgs[len(msgs)-1]
	last.Header.Set(HeaderBatchCommit, "1")
	resp, err := nc.RequestMsgWithContext(ctx, last)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return 0, natsjs.ErrNoStreamResponse
		}
		return 0, err
	}
	var ack struct {
		Error  *natsjs.APIError `json:"error"`
		Stream string           `json:"stream"`
		Seq    uint64           `json:"seq"`
		Batch  string           `json:"batch"`
		Count  int              `json:"count"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return 0, fmt.Errorf("batch %s: %w", id, natsjs.ErrInvalidJSAck)
	}
	if ack.Error != nil {
		return 0, fmt.Errorf("batch %s: %w", id, ack.Error)
	}
	if ack.Stream != stream || ack.Batch != id || ack.Count != len(msgs) || ack.Seq < uint64(len(msgs)) {
		return 0, fmt.Errorf("batch %s of %d: acknowledged as batch %q of %d at %d in %q: %w", id, len(msgs), ack.Batch, ack.Count, ack.Seq, ack.Stream, natsjs.ErrInvalidJSAck)
	}
	return ack.Seq - uint64(len(msgs)) + 1, nil
}
