package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// The reads below talk to the JetStream API directly rather than through
// natsjs.Stream, for two things that API does not offer: batched direct gets
// (many messages per round trip, which keeps ReadStream on the command path
// and ReadAll on replay cheap) and a get that is always answered by the
// stream leader (natsjs picks a direct get whenever the stream allows it).

// getRequest is JetStream's JSApiMsgGetRequest, the fields we use.
type getRequest struct {
	Seq      uint64 `json:"seq,omitempty"`
	LastFor  string `json:"last_by_subj,omitempty"`
	NextFor  string `json:"next_by_subj,omitempty"`
	Batch    int    `json:"batch,omitempty"`
	MaxBytes int    `json:"max_bytes,omitempty"`
}

// Header names and status codes of direct get replies.
const (
	hdrStatus      = "Status"
	hdrDescription = "Description"
	hdrNumPending  = "Nats-Num-Pending"
	hdrLastSeq     = "Nats-Last-Sequence"
	statusEOB      = "204"
	statusNotFound = "404"
	statusNoResp   = "503"
)

// batchMaxBytes bounds one direct get reply. Large enough that a replay page
// is one round trip, small enough not to trip the client's slow-consumer
// limits.
const batchMaxBytes = 4 << 20

// maxBatch bounds the messages asked for in one direct get.
const maxBatch = 4096

// directRange reads messages in sequence order with batched direct gets:
// those on subject filter ("" for every subject) from sequence start on, at
// most limit of them, calling fn with each. It stops early when fn returns
// an error, and returns that error.
//
// A direct get may be answered by any replica of the stream, which may lag
// the leader by a few milliseconds; callers that must see their own writes
// check what they got (see ReadStream).
func (s *Store) directRange(ctx context.Context, filter string, start uint64, limit int, fn func(rawMsg) error) error {
	return s.directRangeOn(ctx, s.cfg.StreamName, filter, start, limit, fn)
}

// directRangeOn is directRange on the JetStream stream named stream.
func (s *Store) directRangeOn(ctx context.Context, stream, filter string, start uint64, limit int, fn func(rawMsg) error) error {
	subj := s.apiPrefix + "DIRECT.GET." + stream
	for read := 0; read < limit; {
		req := getRequest{Seq: start, NextFor: filter, Batch: min(limit-read, maxBatch), MaxBytes: batchMaxBytes}
		n, last, pending, err := s.directBatch(ctx, subj, req, fn)
		if err != nil {
			return err
		}
		read += n
		if n == 0 || pending == 0 {
			return nil
		}
		start = last + 1
	}
	return nil
}

// directBatch sends one batched direct get and hands each message of the
// reply to fn. It returns how many messages came, the last one's sequence and
// how many more the stream said were pending after them.
func (s *Store) directBatch(ctx context.Context, subj string, req getRequest, fn func(rawMsg) error) (n int, last, pending uint64, err error) {
	name := strings.TrimPrefix(subj, s.apiPrefix+"DIRECT.GET.")
	body, err := json.Marshal(req)
	if err != nil {
		return 0, 0, 0, err
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	w, inbox := s.replies.wait()
	defer s.replies.release(inbox, w)
	if err := s.nc.PublishRequest(subj, inbox, body); err != nil {
		return 0, 0, 0, err
	}
	for {
		var m *nats.Msg
		select {
		case m = <-w.ch:
		case <-rctx.Done():
			return n, last, 0, s.timeout(ctx, rctx.Err())
		}
		if status := m.Header.Get(hdrStatus); status != "" && len(m.Data) == 0 {
			switch status {
			case statusEOB:
				pending, err := strconv.ParseUint(m.Header.Get(hdrNumPending), 10, 64)
				if err != nil {
					return n, last, 0, fmt.Errorf("bad %s %q in end of batch", hdrNumPending, m.Header.Get(hdrNumPending))
				}
				return n, last, pending, nil
			case statusNotFound:
				// Nothing at or after req.Seq: the reply is this alone.
				return n, last, 0, nil
			case statusNoResp:
				return n, last, 0, fmt.Errorf("no responders for direct get on stream %s: %w", name, natsjs.ErrNoStreamResponse)
			default:
				return n, last, 0, fmt.Errorf("direct get on stream %s: status %s %s", name, status, m.Header.Get(hdrDescription))
			}
		}
		r, err := directMsg(m)
		if err != nil {
			return n, last, 0, err
		}
		// Each reply names the sequence of the one before it in the batch; a
		// gap means the client dropped a message (a slow consumer), and a
		// read that skipped a commit must not pass for a whole one.
		if prev := m.Header.Get(hdrLastSeq); prev != strconv.FormatUint(last, 10) {
			return n, last, 0, fmt.Errorf("direct get on stream %s: message %d follows %s, expected %d: a reply was lost", name, r.seq, prev, last)
		}
		if err := fn(r); err != nil {
			return n, last, 0, err
		}
		n++
		last = r.seq
	}
}

// timeout turns the expiry of a request's own deadline (Config.RequestTimeout)
// into nats.ErrTimeout, so that it is not mistaken for the deadline of the
// caller's context, parent.
func (s *Store) timeout(parent context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
		return fmt.Errorf("no reply within %s: %w", s.cfg.RequestTimeout, nats.ErrTimeout)
	}
	return err
}

// directMsg reads the stream's own headers of a direct get reply.
func directMsg(m *nats.Msg) (rawMsg, error) {
	seq, err := strconv.ParseUint(m.Header.Get(natsjs.SequenceHeader), 10, 64)
	if err != nil {
		return rawMsg{}, fmt.Errorf("direct get reply without a sequence (%s %q)", natsjs.SequenceHeader, m.Header.Get(natsjs.SequenceHeader))
	}
	subj := m.Header.Get(natsjs.SubjectHeader)
	if subj == "" {
		return rawMsg{}, fmt.Errorf("direct get reply for sequence %d without a subject", seq)
	}
	return rawMsg{subject: subj, seq: seq, header: m.Header, data: m.Data}, nil
}

// directLast returns the last message on subject, from any replica; ok is
// false when there is none.
func (s *Store) directLast(ctx context.Context, subject string) (r rawMsg, ok bool, err error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	m, err := s.nc.RequestWithContext(rctx, s.apiPrefix+"DIRECT.GET."+s.cfg.StreamName+"."+subject, nil)
	if err != nil {
		err = s.timeout(ctx, err)
		if errors.Is(err, nats.ErrNoResponders) {
			return rawMsg{}, false, fmt.Errorf("no responders for direct get on stream %s: %w", s.cfg.StreamName, natsjs.ErrNoStreamResponse)
		}
		return rawMsg{}, false, err
	}
	if status := m.Header.Get(hdrStatus); status != "" && len(m.Data) == 0 {
		if status == statusNotFound {
			return rawMsg{}, false, nil
		}
		return rawMsg{}, false, fmt.Errorf("direct get on stream %s: status %s %s", s.cfg.StreamName, status, m.Header.Get(hdrDescription))
	}
	r, err = directMsg(m)
	return r, err == nil, err
}

// leaderGet asks the stream leader for one message; ok is false when there
// is none. It is the authority on what the stream holds now, for decisions
// (a conflict, a retried append) that a lagging replica must not make.
func (s *Store) leaderGet(ctx context.Context, req getRequest) (r rawMsg, ok bool, err error) {
	return s.leaderGetOn(ctx, s.cfg.StreamName, req)
}

// leaderGetOn is leaderGet on the JetStream stream named stream.
func (s *Store) leaderGetOn(ctx context.Context, stream string, req getRequest) (r rawMsg, ok bool, err error) {
	body, err := json.Marshal(req)
	if err != nil {
		return rawMsg{}, false, err
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	m, err := s.nc.RequestWithContext(rctx, s.apiPrefix+"STREAM.MSG.GET."+stream, body)
	if err != nil {
		err = s.timeout(ctx, err)
		if errors.Is(err, nats.ErrNoResponders) {
			return rawMsg{}, false, fmt.Errorf("no responders for get on stream %s: %w", stream, natsjs.ErrNoStreamResponse)
		}
		return rawMsg{}, false, err
	}
	var resp struct {
		Error   *natsjs.APIError `json:"error"`
		Message *struct {
			Subject string `json:"subject"`
			Seq     uint64 `json:"seq"`
			Hdrs    []byte `json:"hdrs"`
			Data    []byte `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return rawMsg{}, false, fmt.Errorf("get on stream %s: bad reply: %w", stream, err)
	}
	if resp.Error != nil {
		if resp.Error.ErrorCode == natsjs.JSErrCodeMessageNotFound {
			return rawMsg{}, false, nil
		}
		return rawMsg{}, false, fmt.Errorf("get on stream %s: %w", stream, resp.Error)
	}
	if resp.Message == nil {
		return rawMsg{}, false, fmt.Errorf("get on stream %s: reply without a message", stream)
	}
	var hdr nats.Header
	if len(resp.Message.Hdrs) > 0 {
		if hdr, err = nats.DecodeHeadersMsg(resp.Message.Hdrs); err != nil {
			return rawMsg{}, false, fmt.Errorf("get on stream %s: message %d: bad headers: %w", stream, resp.Message.Seq, err)
		}
	}
	return rawMsg{subject: resp.Message.Subject, seq: resp.Message.Seq, header: hdr, data: resp.Message.Data}, true, nil
}

// replyMux receives the replies of batched direct gets on one subscription
// for the whole Store (one wildcard inbox), rather than a subscription per
// read, which costs a server round of SUB/UNSUB and a large client buffer
// each time.
type replyMux struct {
	prefix string // inbox prefix, ending in "."
	sub    *nats.Subscription

	mu    sync.Mutex
	seq   uint64
	waits map[string]*waiter
}

// waiter is one read waiting for its replies.
type waiter struct {
	ch   chan *nats.Msg
	done chan struct{} // closed when the read no longer wants replies
}

func newReplyMux(nc *nats.Conn) (*replyMux, error) {
	r := &replyMux{prefix: nc.NewInbox() + ".", waits: make(map[string]*waiter)}
	sub, err := nc.Subscribe(r.prefix+"*", r.dispatch)
	if err != nil {
		return nil, err
	}
	// A batch reply may be megabytes in many messages; the client must not
	// drop any for a reader that is a little slow.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		sub.Unsubscribe()
		return nil, err
	}
	r.sub = sub
	return r, nil
}

// wait registers a read and returns its inbox.
func (r *replyMux) wait() (*waiter, string) {
	w := &waiter{ch: make(chan *nats.Msg, 64), done: make(chan struct{})}
	r.mu.Lock()
	r.seq++
	token := strconv.FormatUint(r.seq, 36)
	r.waits[token] = w
	r.mu.Unlock()
	return w, r.prefix + token
}

func (r *replyMux) release(inbox string, w *waiter) {
	r.mu.Lock()
	delete(r.waits, strings.TrimPrefix(inbox, r.prefix))
	r.mu.Unlock()
	close(w.done)
}

// dispatch hands a reply to its read, waiting while the read is behind; a
// reply for a read that gave up is dropped.
func (r *replyMux) dispatch(m *nats.Msg) {
	r.mu.Lock()
	w := r.waits[strings.TrimPrefix(m.Subject, r.prefix)]
	r.mu.Unlock()
	if w == nil {
		return
	}
	select {
	case w.ch <- m:
	case <-w.done:
	}
}

func (r *replyMux) close() {
	r.sub.Unsubscribe()
}
