package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Link records: what the switch sent on each outbound gateway link
// (docs/gateway-links.md, "Write-ahead"). A forwarded request is written,
// synced, before it is sent; its final answer, or the reversal queued for
// it, is written in the batch that answers the terminal. Keys:
//
//	j N len link                                  STAN reservation mark
//	j L len link id(8)                            link request
//	j O len link id(8)                            open index: sent, no final answer
//	j M len term len batch len stan               local -> link request
//	j R len rrn                                   RRN -> link request
//	j F len link original(8) id(8)                a follow-up of an original
const (
	spaceLinkSTAN   = 'N'
	spaceLinkReq    = 'L'
	spaceLinkOpen   = 'O'
	spaceLinkMap    = 'M'
	spaceLinkRRN    = 'R'
	spaceLinkFollow = 'F'
)

// LinkState is where a link request stands.
type LinkState uint8

const (
	// LinkSent: journaled before sending; no final answer yet.
	LinkSent LinkState = 1
	// LinkAnswered: the link's final answer is recorded (ResponseCode).
	LinkAnswered LinkState = 2
	// LinkReversalQueued: its reversal (0420) is in the store-and-forward
	// queue (timeout, bad MAC, the terminal's reversal, a restart).
	LinkReversalQueued LinkState = 3
	// LinkReversed: the link acknowledged its reversal (00, or 25: it
	// never had the original), so it has no effect at the bank.
	LinkReversed LinkState = 4
)

func (s LinkState) String() string {
	switch s {
	case LinkSent:
		return "sent"
	case LinkAnswered:
		return "answered"
	case LinkReversalQueued:
		return "reversal_queued"
	case LinkReversed:
		return "reversed"
	}
	return fmt.Sprintf("LinkState(%d)", uint8(s))
}

// LinkRequest is one financial request sent on a link, with the mapping
// between the terminal's numbering and the link's.
type LinkRequest struct {
	Link string
	// ID is the link's sequence number of the request; STAN is its field
	// 11 on the link, derived from ID (000001..999999, wrapping).
	ID   uint64
	STAN string
	// Transmission is field 7 as sent (UTC MMDDhhmmss).
	Transmission string
	MTI          string
	ProcCode     string
	Amount       int64
	Card         string
	// Terminal, Merchant, Batch, LocalSTAN: the terminal's numbering.
	Terminal, Merchant, Batch, LocalSTAN string
	RRN                                  string
	Acquirer, Forwarding                 string
	BusinessDate                         string
	TxType                               string
	State                                LinkState
	ResponseCode                         string
	AuthCode                             string
	Created                              time.Time
}

const linkRecordVersion = 1

var linkCRC = crc32.MakeTable(crc32.Castagnoli)

func (r *LinkRequest) strings() []*string {
	return []*string{&r.STAN, &r.Transmission, &r.MTI, &r.ProcCode, &r.Card, &r.Terminal, &r.Merchant,
		&r.Batch, &r.LocalSTAN, &r.RRN, &r.Acquirer, &r.Forwarding, &r.BusinessDate, &r.TxType,
		&r.ResponseCode, &r.AuthCode}
}

func (r *LinkRequest) encode() ([]byte, error) {
	b := []byte{linkRecordVersion, byte(r.State)}
	b = binary.BigEndian.AppendUint64(b, uint64(r.Amount))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Created.UnixNano()))
	for _, s := range r.strings() {
		if len(*s) > 255 {
			return nil, fmt.Errorf("%w: link request field of %d bytes", ErrInvalidEntry, len(*s))
		}
		b = append(b, byte(len(*s)))
		b = append(b, *s...)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, linkCRC)), nil
}

func decodeLinkRequest(v []byte, r *LinkRequest) error {
	if len(v) < 2+16+4 {
		return fmt.Errorf("%w: link request of %d bytes", ErrCorrupt, len(v))
	}
	body := v[:len(v)-4]
	if crc32.Checksum(body, linkCRC) != binary.BigEndian.Uint32(v[len(body):]) {
		return fmt.Errorf("%w: link request checksum", ErrCorrupt)
	}
	if body[0] != linkRecordVersion {
		return fmt.Errorf("%w: link request version %d", ErrCorrupt, body[0])
	}
	r.State = LinkState(body[1])
	r.Amount = int64(binary.BigEndian.Uint64(body[2:]))
	r.Created = time.Unix(0, int64(binary.BigEndian.Uint64(body[10:]))).UTC()
	off := 18
	for _, s := range r.strings() {
		if off >= len(body) || off+1+int(body[off]) > len(body) {
			return fmt.Errorf("%w: link request strings", ErrCorrupt)
		}
		n := int(body[off])
		*s = string(body[off+1 : off+1+n])
		off += 1 + n
	}
	if off != len(body) {
		return fmt.Errorf("%w: link request has %d trailing bytes", ErrCorrupt, len(body)-off)
	}
	return nil
}

func linkKey(space byte, link string, id uint64) []byte {
	k := appendStr([]byte{prefixJournal, space}, link)
	if space == spaceLinkSTAN {
		return k
	}
	return appendSeq(k, id)
}

func linkRRNKey(rrn string) []byte {
	return appendStr([]byte{prefixJournal, spaceLinkRRN}, rrn)
}

func linkMapKey(terminal, batch, stan string) []byte {
	k := appendStr([]byte{prefixJournal, spaceLinkMap}, terminal)
	k = appendStr(k, batch)
	return appendStr(k, stan)
}

func linkFollowKey(link string, original, id uint64) []byte {
	return appendSeq(linkKey(spaceLinkFollow, link, original), id)
}

// LinkSTANBlock is how many link sequence numbers one synced reservation
// covers: after a crash numbering resumes above the reservation, so no
// STAN is handed out twice within a wrap.
const LinkSTANBlock = 1000

// MaxLinkSTAN is the largest link STAN; numbering wraps to 000001.
const MaxLinkSTAN = 999999

// Links holds the link records of every link. It is safe for concurrent
// use.
type Links struct {
	db *pebble.DB
	// terminals are those with local mappings (linkterminals.go).
	terminals *linkTerminals
	mu        sync.Mutex
	// next and reserved per link: the last id handed out and the last id
	// covered by a durable reservation.
	next, reserved map[string]uint64
}

// OpenLinks returns the link records kept in db.
func OpenLinks(db *pebble.DB) (*Links, error) {
	if db == nil {
		return nil, errors.New("journal: open links: nil db")
	}
	return &Links{db: db, terminals: linkTerminalsOf(db), next: map[string]uint64{}, reserved: map[string]uint64{}}, nil
}

func validLink(link string) error {
	if link == "" || len(link) > maxDestLen {
		return fmt.Errorf("%w: link name %q: want 1..%d bytes", ErrInvalidEntry, link, maxDestLen)
	}
	return nil
}

// STANOf is the field 11 value of link sequence id.
func STANOf(id uint64) string {
	v := (id-1)%MaxLinkSTAN + 1
	return fmt.Sprintf("%06d", v)
}

// NextID hands out the link's next sequence number and its STAN. Every
// LinkSTANBlock numbers it writes, synced, a reservation mark; after a
// restart numbering continues above the last mark.
func (l *Links) NextID(link string) (uint64, string, error) {
	if err := validLink(link); err != nil {
		return 0, "", err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	next, ok := l.next[link]
	if !ok {
		v, closer, err := l.db.Get(linkKey(spaceLinkSTAN, link, 0))
		switch {
		case errors.Is(err, pebble.ErrNotFound):
		case err != nil:
			return 0, "", fmt.Errorf("journal: link %s STAN mark: %w", link, err)
		default:
			if len(v) != 8 {
				closer.Close()
				return 0, "", fmt.Errorf("%w: link %s STAN mark of %d bytes", ErrCorrupt, link, len(v))
			}
			next = binary.BigEndian.Uint64(v)
			closer.Close()
		}
		l.next[link], l.reserved[link] = next, next
	}
	next++
	if next > l.reserved[link] {
		res := next + LinkSTANBlock - 1
		if err := l.db.Set(linkKey(spaceLinkSTAN, link, 0), binary.BigEndian.AppendUint64(nil, res), pebble.Sync); err != nil {
			return 0, "", fmt.Errorf("journal: link %s STAN mark: %w", link, err)
		}
		l.reserved[link] = res
	}
	l.next[link] = next
	return next, STANOf(next), nil
}

// Put writes r into b: the record, its open index while it is LinkSent
// (removed otherwise), the local mapping and the RRN index. Nothing is written until the
// caller commits b.
func (l *Links) Put(b *pebble.Batch, r *LinkRequest) error {
	if len(r.Terminal) > maxTerminalLen || len(r.Batch) > maxBatchLen || len(r.LocalSTAN) > maxSTANLen || len(r.RRN) > maxRRNLen {
		return fmt.Errorf("%w: link request local numbering too long", ErrInvalidEntry)
	}
	if err := l.SetState(b, r); err != nil {
		return err
	}
	m := appendSeq(appendStr(nil, r.Link), r.ID)
	if r.RRN != "" {
		if err := b.Set(linkRRNKey(r.RRN), m, nil); err != nil {
			return err
		}
	}
	if r.Terminal != "" {
		l.terminals.add(l.db, r.Terminal)
		return b.Set(linkMapKey(r.Terminal, r.Batch, r.LocalSTAN), m, nil)
	}
	return nil
}

// SetState writes into b r's record and its open index (set while r is
// LinkSent, removed otherwise), not the local mapping and the RRN index:
// for a state change (answer, reversal queued) of a request Put already
// wrote, whose index entries name it. Two keys instead of four in the
// batch that answers the terminal.
func (l *Links) SetState(b *pebble.Batch, r *LinkRequest) error {
	if err := validLink(r.Link); err != nil {
		return err
	}
	if r.ID == 0 {
		return fmt.Errorf("%w: link request without id", ErrInvalidEntry)
	}
	v, err := r.encode()
	if err != nil {
		return err
	}
	if err := b.Set(linkKey(spaceLinkReq, r.Link, r.ID), v, nil); err != nil {
		return err
	}
	if r.State == LinkSent {
		return b.Set(linkKey(spaceLinkOpen, r.Link, r.ID), nil, nil)
	}
	return b.Delete(linkKey(spaceLinkOpen, r.Link, r.ID), nil)
}

// PutFollowUp writes into b that link request id follows up (completes,
// cancels, voids) the request original of the same link: FollowUps lists
// it. Written with the follow-up's Put, before it is sent.
func (l *Links) PutFollowUp(b *pebble.Batch, link string, original, id uint64) error {
	if err := validLink(link); err != nil {
		return err
	}
	if original == 0 || id == 0 {
		return fmt.Errorf("%w: follow-up %d of %d", ErrInvalidEntry, id, original)
	}
	return b.Set(linkFollowKey(link, original, id), nil, nil)
}

// FollowUps returns, oldest first, the requests PutFollowUp recorded as
// following up link request original, at most max of them; more reports
// that there are others. A follow-up whose record retention has deleted
// since is left out.
func (l *Links) FollowUps(link string, original uint64, max int) (out []*LinkRequest, more bool, err error) {
	if err := validLink(link); err != nil {
		return nil, false, err
	}
	if max < 1 {
		return nil, false, fmt.Errorf("%w: follow-ups %d", ErrLimit, max)
	}
	p := linkKey(spaceLinkFollow, link, original)
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, false, err
	}
	var ids []uint64
	ok := it.First()
	for ; ok && len(ids) < max; ok = it.Next() {
		if len(it.Key()) != len(p)+seqLen {
			it.Close()
			return nil, false, fmt.Errorf("%w: follow-up key %x", ErrCorrupt, it.Key())
		}
		ids = append(ids, binary.BigEndian.Uint64(it.Key()[len(p):]))
	}
	more = ok
	if err := it.Close(); err != nil {
		return nil, false, err
	}
	for _, id := range ids {
		r, err := l.Get(link, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		out = append(out, r)
	}
	return out, more, nil
}

// Get reads one link request.
func (l *Links) Get(link string, id uint64) (*LinkRequest, error) {
	if err := validLink(link); err != nil {
		return nil, err
	}
	v, closer, err := l.db.Get(linkKey(spaceLinkReq, link, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	r := &LinkRequest{Link: link, ID: id}
	if err := decodeLinkRequest(v, r); err != nil {
		return nil, fmt.Errorf("link %s request %d: %w", link, id, err)
	}
	return r, nil
}

// ByLocal finds the link request a terminal's (batch, STAN) was forwarded
// as; ErrNotFound when it was not forwarded.
func (l *Links) ByLocal(terminal, batch, stan string) (*LinkRequest, error) {
	if len(terminal) > maxTerminalLen || len(batch) > maxBatchLen || len(stan) > maxSTANLen {
		return nil, fmt.Errorf("%w: local numbering too long", ErrInvalidEntry)
	}
	if !l.terminals.mayHave(l.db, terminal) {
		return nil, ErrNotFound // the terminal never forwarded anything
	}
	return l.byIndex(linkMapKey(terminal, batch, stan))
}

// ByRRN finds the link request sent for the terminal's request that the
// switch gave this RRN; ErrNotFound when none was forwarded (or it was
// forwarded before the RRN index existed).
func (l *Links) ByRRN(rrn string) (*LinkRequest, error) {
	if rrn == "" || len(rrn) > maxRRNLen {
		return nil, fmt.Errorf("%w: RRN %q", ErrInvalidEntry, rrn)
	}
	return l.byIndex(linkRRNKey(rrn))
}

// byIndex reads the link request an index key (local mapping, RRN)
// points to.
func (l *Links) byIndex(key []byte) (*LinkRequest, error) {
	v, closer, err := l.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if len(v) < 1+8 || int(v[0])+1+8 != len(v) {
		closer.Close()
		return nil, fmt.Errorf("%w: link mapping of %d bytes", ErrCorrupt, len(v))
	}
	link := string(v[1 : 1+v[0]])
	id := binary.BigEndian.Uint64(v[1+v[0]:])
	closer.Close()
	return l.Get(link, id)
}

// Open calls fn for each of link's requests still LinkSent (journaled,
// no final answer), oldest first, until fn returns false. At start the
// switch queues a reversal for each.
func (l *Links) Open(link string, fn func(*LinkRequest) bool) (err error) {
	if err := validLink(link); err != nil {
		return err
	}
	p := appendStr([]byte{prefixJournal, spaceLinkOpen}, link)
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = cerr
		}
	}()
	var ids []uint64
	for ok := it.First(); ok; ok = it.Next() {
		if len(it.Key()) != len(p)+seqLen {
			return fmt.Errorf("%w: open link key %x", ErrCorrupt, it.Key())
		}
		ids = append(ids, binary.BigEndian.Uint64(it.Key()[len(p):]))
	}
	if err := it.Error(); err != nil {
		return err
	}
	for _, id := range ids {
		r, err := l.Get(link, id)
		if err != nil {
			return err
		}
		if !fn(r) {
			return nil
		}
	}
	return nil
}

// PruneLinkRequests deletes, in one unsynced batch of at most max, link
// requests created before cut that have a final state (answered or
// reversal queued), with their local mapping when it still points to
// them. Requests still open are kept whatever their age. more reports
// that another call may find more.
func (l *Links) PruneLinkRequests(cut time.Time, max int) (deleted int, more bool, err error) {
	if max < 1 {
		return 0, false, fmt.Errorf("%w: prune batch %d", ErrLimit, max)
	}
	p := []byte{prefixJournal, spaceLinkReq}
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return 0, false, err
	}
	fp := []byte{prefixJournal, spaceLinkFollow}
	fit, err := l.db.NewIter(&pebble.IterOptions{LowerBound: fp, UpperBound: prefixEnd(fp)})
	if err != nil {
		it.Close()
		return 0, false, err
	}
	defer fit.Close()
	b := l.db.NewBatch()
	defer b.Close()
	ok := it.First()
	for ; ok && deleted < max; ok = it.Next() {
		k := it.Key()
		if len(k) < 3 || int(k[2])+3+seqLen != len(k) {
			it.Close()
			return 0, false, fmt.Errorf("%w: link request key %x", ErrCorrupt, k)
		}
		link := string(k[3 : 3+k[2]])
		v, verr := it.ValueAndErr()
		if verr != nil {
			it.Close()
			return 0, false, verr
		}
		r := LinkRequest{Link: link, ID: binary.BigEndian.Uint64(k[len(k)-seqLen:])}
		if err := decodeLinkRequest(v, &r); err != nil {
			it.Close()
			return 0, false, fmt.Errorf("link %s request %d: %w", link, r.ID, err)
		}
		if !r.Created.Before(cut) {
			// Ids grow with time: the rest of this link is newer.
			ok = it.SeekGE(prefixEnd(appendStr([]byte{prefixJournal, spaceLinkReq}, link)))
			if !ok {
				break
			}
			it.Prev()
			continue
		}
		if r.State == LinkSent {
			continue
		}
		if err := b.Delete(k, nil); err != nil {
			it.Close()
			return 0, false, err
		}
		// The follow-ups recorded of it (PutFollowUp): few, and only of
		// the types followed up.
		if err := deleteFollowUps(b, fit, link, r.ID); err != nil {
			it.Close()
			return 0, false, err
		}
		// Its index entries, where they still point to it.
		var indexes [][]byte
		if r.Terminal != "" {
			indexes = append(indexes, linkMapKey(r.Terminal, r.Batch, r.LocalSTAN))
		}
		if r.RRN != "" {
			indexes = append(indexes, linkRRNKey(r.RRN))
		}
		for _, mk := range indexes {
			mv, closer, gerr := l.db.Get(mk)
			if gerr == nil {
				want := appendSeq(appendStr(nil, link), r.ID)
				same := string(mv) == string(want)
				closer.Close()
				if same {
					if err := b.Delete(mk, nil); err != nil {
						it.Close()
						return 0, false, err
					}
				}
			} else if !errors.Is(gerr, pebble.ErrNotFound) {
				it.Close()
				return 0, false, gerr
			}
		}
		deleted++
	}
	more = ok && deleted == max
	if err := it.Close(); err != nil {
		return 0, false, err
	}
	if deleted > 0 {
		if err := b.Commit(pebble.NoSync); err != nil {
			return 0, false, err
		}
	}
	return deleted, more, nil
}

// deleteFollowUps adds to b the deletion of every follow-up recorded of
// link request original, read with fit, an iterator over the follow-up
// keyspace.
func deleteFollowUps(b *pebble.Batch, fit *pebble.Iterator, link string, original uint64) error {
	p := linkKey(spaceLinkFollow, link, original)
	for ok := fit.SeekGE(p); ok && bytes.HasPrefix(fit.Key(), p); ok = fit.Next() {
		if err := b.Delete(fit.Key(), nil); err != nil {
			return err
		}
	}
	return fit.Error()
}

// OpenLinkNames lists every link that has requests still LinkSent, each
// once, whether or not it is configured now: the switch refuses to start
// while a link it no longer knows has any (docs/gateway-links.md).
func (l *Links) OpenLinkNames() ([]string, error) {
	return names(l.db, prefixJournal, spaceLinkOpen)
}

// QueuedDestinations lists every destination with messages still queued
// for delivery (dead letters not counted), each once.
func (q *Queue) QueuedDestinations() ([]string, error) {
	return names(q.db, prefixQueue, spaceQueued)
}

// names lists the distinct names in a keyspace of keys laid out as
// prefix, space, length-prefixed name, sequence: one seek per name.
func names(db *pebble.DB, prefix, space byte) (out []string, err error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix, space}, UpperBound: []byte{prefix, space + 1}})
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = cerr
		}
	}()
	for ok := it.First(); ok; {
		k := it.Key()
		if len(k) < 3+seqLen || int(k[2]) != len(k)-3-seqLen {
			return nil, fmt.Errorf("%w: key %x", ErrCorrupt, k)
		}
		name := string(k[3 : 3+k[2]])
		out = append(out, name)
		ok = it.SeekGE(prefixEnd(appendStr([]byte{prefix, space}, name)))
	}
	return out, it.Error()
}
