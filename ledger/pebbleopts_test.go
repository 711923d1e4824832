package ledger

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestRecommendedOptionsKeepABlockCache: Pebble charges its memtables
// against the block cache, and a memtable grows to MemTableSize after a
// few flushes. Once it has, point reads that reach an sstable must still
// find its blocks in the cache (with Pebble's default 8 MiB cache and the
// 64 MiB memtable they never did: every read went to the file).
func TestRecommendedOptionsKeepABlockCache(t *testing.T) {
	o := RecommendedPebbleOptions()
	o.FS = vfs.NewMem()
	db, err := pebble.Open("db", o)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A memtable that fills up is followed by one twice its size, up to
	// MemTableSize: about MemTableSize of writes grows it all the way.
	value := make([]byte, 512<<10) // zeros: the tables stay small
	var written int
	for db.Metrics().MemTable.Size < uint64(o.MemTableSize) {
		if written > 4*int(o.MemTableSize) {
			t.Fatalf("memtable %d bytes after %d bytes written, want it grown to %d", db.Metrics().MemTable.Size, written, o.MemTableSize)
		}
		if err := db.Set(fmt.Appendf(nil, "big%06d", written/len(value)), value, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		written += len(value)
	}
	// Small keys in a table of their own, read below.
	const keys = 12
	for i := range keys {
		if err := db.Set(fmt.Appendf(nil, "k%03d", i), []byte("value"), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		for i := range keys {
			v, closer, err := db.Get(fmt.Appendf(nil, "k%03d", i))
			if err != nil {
				t.Fatal(err)
			}
			if string(v) != "value" {
				t.Fatalf("k%03d = %q", i, v)
			}
			closer.Close()
		}
	}
	m := db.Metrics().BlockCache
	if m.Count == 0 || m.Hits == 0 {
		t.Fatalf("block cache holds %d blocks (%d bytes), %d hits, %d misses: no room beside the memtables", m.Count, m.Size, m.Hits, m.Misses)
	}
	t.Logf("block cache: %d blocks, %d bytes, %d hits, %d misses", m.Count, m.Size, m.Hits, m.Misses)
}
