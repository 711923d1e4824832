package journal

import (
	"bytes"
	"runtime"
	"strings"
	"sync"
	"weak"

	"github.com/cockroachdb/pebble/v2"
)

// linkTerminals is, for one database, every terminal under which a link
// request has a local mapping ('j M', Links.Put), or is being given one:
// the terminals that forward to a gateway link. A void, reversal or
// refund at any other terminal asks ByLocal for an original that cannot
// be there (a point read that misses, two or three per such request); it
// is answered ErrNotFound without the read.
//
// It is read once from the database (one seek per terminal), then a
// terminal is added before its first mapping is written, never removed
// (a terminal whose mappings were all pruned is read for, as before). It
// is one per database, whatever the number of Links opened on it (the
// switch's gateway links and its reconciliation each open theirs), so
// that one instance's writes are seen by every other's reads.
type linkTerminals struct {
	once sync.Once
	err  error // the load failed: every terminal is read for
	mu   sync.RWMutex
	m    map[string]struct{}
}

// linkTerminalsByDB holds each open database's linkTerminals, by a weak
// pointer to the database: an entry goes when its database is collected.
var linkTerminalsByDB sync.Map // weak.Pointer[pebble.DB] → *linkTerminals

func linkTerminalsOf(db *pebble.DB) *linkTerminals {
	k := weak.Make(db)
	if v, ok := linkTerminalsByDB.Load(k); ok {
		return v.(*linkTerminals)
	}
	v, loaded := linkTerminalsByDB.LoadOrStore(k, &linkTerminals{})
	if !loaded {
		runtime.AddCleanup(db, func(k weak.Pointer[pebble.DB]) { linkTerminalsByDB.Delete(k) }, k)
	}
	return v.(*linkTerminals)
}

// load reads the terminals of the local mappings: the first key of each,
// then a seek past that terminal's keys.
func (t *linkTerminals) load(db *pebble.DB) {
	t.once.Do(func() {
		t.m = map[string]struct{}{}
		p := []byte{prefixJournal, spaceLinkMap}
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
		if err != nil {
			t.err = err
			return
		}
		for ok := it.First(); ok; {
			k := it.Key()[len(p):]
			if len(k) < 1 || len(k) < 1+int(k[0]) {
				t.err = ErrCorrupt // damage: read for every terminal
				break
			}
			term := string(k[1 : 1+int(k[0])])
			t.m[term] = struct{}{}
			ok = it.SeekGE(prefixEnd(appendStr(bytes.Clone(p), term)))
		}
		if err := it.Error(); err != nil && t.err == nil {
			t.err = err
		}
		if err := it.Close(); err != nil && t.err == nil {
			t.err = err
		}
	})
}

// mayHave reports whether terminal may have local mappings.
func (t *linkTerminals) mayHave(db *pebble.DB, terminal string) bool {
	t.load(db)
	if t.err != nil {
		return true
	}
	t.mu.RLock()
	_, ok := t.m[terminal]
	t.mu.RUnlock()
	return ok
}

// add notes that terminal is given a local mapping: called before the
// mapping is written.
func (t *linkTerminals) add(db *pebble.DB, terminal string) {
	t.load(db)
	t.mu.RLock()
	_, ok := t.m[terminal]
	t.mu.RUnlock()
	if ok {
		return
	}
	t.mu.Lock()
	t.m[strings.Clone(terminal)] = struct{}{}
	t.mu.Unlock()
}
