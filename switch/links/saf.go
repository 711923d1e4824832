package links

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/moov-io/iso8583"
	"go.uber.org/zap"

	"github.com/cardswitch/cardswitch/internal/cardno"
	"github.com/cardswitch/cardswitch/journal"
	"github.com/cardswitch/cardswitch/spec"
)

// queueReversal writes into b the reversal (0420) of r for the
// store-and-forward queue and marks r as reversal-queued: one batch, so
// that no crash can keep one without the other.
func (l *Link) queueReversal(b *pebble.Batch, r *journal.LinkRequest, reason string) error {
	payload, err := l.reversalPayload(r, reason)
	if err != nil {
		return err
	}
	if _, err := l.mgr.queue.Enqueue(b, l.cfg.Name, payload); err != nil {
		return err
	}
	r.State = journal.LinkReversalQueued
	if err := l.recs.SetState(b, r); err != nil {
		return err
	}
	l.wakeSAF()
	return nil
}

// reversalPayload packs the 0420 of r (docs/gateway-links.md): the
// original's 2, 3, 4, 25, 32, 33, 37, 41, 42, 49, 100, reason in 39 and the
// original data elements in 90. Field 7, 11 and the MAC are set at each
// send.
func (l *Link) reversalPayload(r *journal.LinkRequest, reason string) ([]byte, error) {
	o := spec.OriginalData{MTI: r.MTI, STAN: r.STAN, Transmission: r.Transmission, Acquirer: r.Acquirer, Forwarding: r.Forwarding}
	f90, err := o.Format()
	if err != nil {
		return nil, err
	}
	amount, err := spec.Amount(r.Amount).N12()
	if err != nil {
		return nil, err
	}
	m := iso8583.NewMessage(spec.Gateway)
	fields := map[int]string{0: spec.GWReversalAdvice, 2: r.Card, 3: r.ProcCode, 4: amount,
		7: r.Transmission, 11: r.STAN, 25: conditionOf(r.TxType), 32: r.Acquirer, 33: r.Forwarding, 37: r.RRN, 39: reason,
		41: r.Terminal, 42: r.Merchant, 49: spec.GWCurrencyCNY, 90: f90, 100: l.cfg.InstitutionID}
	for id, v := range fields {
		if v == "" {
			continue
		}
		if err := m.Field(id, v); err != nil {
			return nil, fmt.Errorf("reversal field %d: %w", id, err)
		}
	}
	return spec.EncodeGateway(m)
}

func (l *Link) wakeSAF() {
	select {
	case l.safWake <- struct{}{}:
	default:
	}
}

// wait sleeps d, or until woken or closed; false when closed.
func (l *Link) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-l.done:
		return false
	case <-l.safWake:
	case <-t.C:
	}
	return true
}

// safPoll is how often an idle sender looks at its queue and refreshes
// its metrics.
const safPoll = time.Second

// safLoop is the link's store-and-forward sender: FIFO, one message in
// flight, first send after saf.initial_delay, repeats (0421) every
// saf.interval doubling to saf.max_interval, at most saf.max_attempts;
// done on 00 or 25, retried on no answer, 91, 96 or disconnect, anything
// else dead-lettered.
func (l *Link) safLoop() {
	defer l.wg.Done()
	q, name, saf := l.mgr.queue, l.cfg.Name, l.mgr.saf
	for {
		select {
		case <-l.done:
			// Closing: the reversal in flight has been answered (or
			// timed out) and recorded; the rest wait on disk.
			return
		default:
		}
		l.safMetrics()
		head, err := q.Peek(name, 1)
		if err != nil {
			l.log.Error("store-and-forward queue read", zap.Error(err))
			if !l.wait(safPoll) {
				return
			}
			continue
		}
		if len(head) == 0 {
			if !l.wait(safPoll) {
				return
			}
			continue
		}
		msg := head[0]
		due := msg.Enqueued.Add(saf.InitialDelay)
		if msg.Attempts > 0 {
			due = msg.LastAttempt.Add(saf.backoff(msg.Attempts))
		}
		if d := due.Sub(l.now()); d > 0 {
			if !l.wait(min(d, safPoll)) {
				return
			}
			continue
		}
		c, err := l.pool.Get()
		if err != nil {
			// Down: not an attempt; try again when it may be up.
			if !l.wait(safPoll) {
				return
			}
			continue
		}
		msg, err = q.Attempt(name, msg.ID)
		if errors.Is(err, journal.ErrAttemptsExhausted) {
			l.m.SAFSends.WithLabelValues(name, "dead").Inc()
			l.log.Error("reversal dead-lettered: attempts exhausted; an operator must retry or drop it (switchctl saf)",
				zap.Uint64("id", msg.ID), zap.Int("attempts", msg.Attempts))
			continue
		}
		if err != nil {
			l.log.Error("store-and-forward attempt", zap.Error(err))
			if !l.wait(safPoll) {
				return
			}
			continue
		}
		req, err := spec.DecodeGateway(msg.Payload)
		if err == nil {
			err = l.prepareRepeat(req, msg.Attempts)
		}
		if err != nil {
			l.killSAF(msg.ID, fmt.Sprintf("stored reversal does not decode: %v", err))
			continue
		}
		resp, err := l.sendOn(c, req, l.cfg.SendTimeout)
		if err != nil {
			l.m.SAFSends.WithLabelValues(name, "retry").Inc()
			continue
		}
		rc, _ := resp.GetString(39)
		pan, _ := req.GetString(2)
		switch rc {
		case spec.RCApproved, spec.RCOriginalNotFound:
			// The reversed request is marked first: a crash before the
			// ack sends the reversal again, which the bank answers the
			// same way.
			if err := l.markReversed(req); err != nil {
				l.log.Error("reversal delivered; its request not marked reversed (it stays standing)",
					zap.Uint64("id", msg.ID), zap.Error(err))
			}
			if err := q.Ack(name, msg.ID); err != nil && !errors.Is(err, journal.ErrNotFound) {
				l.log.Error("store-and-forward ack", zap.Error(err))
			}
			l.m.SAFSends.WithLabelValues(name, "done").Inc()
			l.log.Info("reversal delivered", zap.Uint64("id", msg.ID), zap.String("rc", rc), zap.Int("attempts", msg.Attempts),
				zap.String("pan", cardno.Mask(pan)))
		case "91", spec.RCSystemMalfunction:
			l.m.SAFSends.WithLabelValues(name, "retry").Inc()
		default:
			l.killSAF(msg.ID, "gateway answered "+strconv.Quote(rc))
		}
	}
}

// markReversed records that the bank acknowledged reversal m: the link
// request it names (field 37, the switch's RRN of it, and field 90, its
// STAN and transmission time) is LinkReversed, no longer standing
// (preauth.go). A request not found, or not reversal-queued, is left as
// it is.
func (l *Link) markReversed(m *iso8583.Message) error {
	rrn, _ := m.GetString(37)
	f90, _ := m.GetString(90)
	if rrn == "" {
		return nil
	}
	r, err := l.recs.ByRRN(rrn)
	if errors.Is(err, journal.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	o := spec.OriginalData{MTI: r.MTI, STAN: r.STAN, Transmission: r.Transmission, Acquirer: r.Acquirer, Forwarding: r.Forwarding}
	want, err := o.Format()
	if err != nil || want != f90 || r.Link != l.cfg.Name || r.State != journal.LinkReversalQueued {
		return err
	}
	r.State = journal.LinkReversed
	b := l.mgr.db.NewBatch()
	defer b.Close()
	if err := l.recs.SetState(b, r); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

// prepareRepeat gives a stored reversal its send-time fields: 0420 for
// the first attempt, 0421 after; a new STAN; the transmission time.
func (l *Link) prepareRepeat(m *iso8583.Message, attempt int) error {
	mti := spec.GWReversalAdvice
	if attempt > 1 {
		mti = spec.GWReversalAdviceRepeat
	}
	_, stan, err := l.recs.NextID(l.cfg.Name)
	if err != nil {
		return err
	}
	m.MTI(mti)
	if err := m.Field(11, stan); err != nil {
		return err
	}
	return m.Field(7, spec.FormatTransmissionTime(l.now()))
}

func (l *Link) killSAF(id uint64, why string) {
	if err := l.mgr.queue.Kill(l.cfg.Name, id); err != nil {
		l.log.Error("store-and-forward dead-letter", zap.Uint64("id", id), zap.Error(err))
		return
	}
	l.m.SAFSends.WithLabelValues(l.cfg.Name, "dead").Inc()
	l.log.Error("reversal dead-lettered; an operator must retry or drop it (switchctl saf)", zap.Uint64("id", id), zap.String("reason", why))
}

func (l *Link) safMetrics() {
	q, d, oldest, err := l.mgr.queue.Stats(l.cfg.Name, statsLimit)
	if err != nil {
		return
	}
	l.m.SAFDepth.WithLabelValues(l.cfg.Name).Set(float64(q))
	l.m.SAFDead.WithLabelValues(l.cfg.Name).Set(float64(d))
	age := 0.0
	if !oldest.IsZero() {
		age = l.now().Sub(oldest).Seconds()
	}
	l.m.SAFOldest.WithLabelValues(l.cfg.Name).Set(age)
	l.setStateMetric()
}

// SAFEntry is one queued or dead-lettered reversal as operators see it.
type SAFEntry struct {
	ID          uint64    `json:"id"`
	Link        string    `json:"link"`
	Dead        bool      `json:"dead"`
	Attempts    int       `json:"attempts"`
	Enqueued    time.Time `json:"enqueued"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	Card        string    `json:"card"` // masked
	Amount      string    `json:"amount"`
	RRN         string    `json:"rrn"`
	Terminal    string    `json:"terminal"`
	Original    string    `json:"original"` // field 90
	Reason      string    `json:"reason"`   // field 39 of the reversal
}

// SAFList lists up to limit entries of a link's queue, or of its dead
// letters, oldest first.
func (m *Manager) SAFList(link string, dead bool, limit int) ([]SAFEntry, error) {
	if _, ok := m.Link(link); !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownLink, link)
	}
	var msgs []journal.Message
	var err error
	if dead {
		msgs, err = m.queue.Dead(link, limit)
	} else {
		msgs, err = m.queue.Peek(link, limit)
	}
	if err != nil {
		return nil, err
	}
	out := make([]SAFEntry, 0, len(msgs))
	for _, msg := range msgs {
		e := SAFEntry{ID: msg.ID, Link: link, Dead: dead, Attempts: msg.Attempts, Enqueued: msg.Enqueued, LastAttempt: msg.LastAttempt}
		if r, err := spec.DecodeGateway(msg.Payload); err == nil {
			pan, _ := r.GetString(2)
			e.Card = cardno.Mask(pan)
			if a, _ := r.GetString(4); a != "" {
				if v, err := spec.ParseAmount(a); err == nil {
					e.Amount = v.String()
				}
			}
			e.RRN, _ = r.GetString(37)
			e.Terminal, _ = r.GetString(41)
			e.Original, _ = r.GetString(90)
			e.Reason, _ = r.GetString(39)
		}
		out = append(out, e)
	}
	return out, nil
}

// ErrUnknownLink names a link that is not configured.
var ErrUnknownLink = errors.New("no such gateway link")

// SAFRetry puts a dead letter back at the end of its link's queue with its
// attempts reset; it returns the new id.
func (m *Manager) SAFRetry(link string, id uint64) (uint64, error) {
	l, ok := m.Link(link)
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrUnknownLink, link)
	}
	n, err := m.queue.Requeue(link, id)
	if err == nil {
		m.log.Warn("dead-lettered reversal requeued by an operator", zap.String("link", link), zap.Uint64("id", id), zap.Uint64("new_id", n))
		l.wakeSAF()
	}
	return n, err
}

// SAFDrop deletes a dead letter for good.
func (m *Manager) SAFDrop(link string, id uint64) error {
	l, ok := m.Link(link)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownLink, link)
	}
	err := m.queue.Drop(link, id)
	if err == nil {
		m.log.Warn("dead-lettered reversal dropped by an operator", zap.String("link", link), zap.Uint64("id", id))
		l.wakeSAF()
	}
	return err
}
