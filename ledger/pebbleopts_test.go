package ledger

import (
	"context"
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

func TestKeyspaceEnd(t *testing.T) {
	for _, c := range []struct{ key, end string }{
		{"", "\x00"},
		{"l", "l\x00"},
		{"lb", "lc"},
		{"lb6230151000000000012", "lc"},
		{"je\x00\x07c\x05yj\xc0\x01", "jf"},
		{"j\xff\x01", "k"},
		{"\xff\xfe", "\xff\xff"},
	} {
		if got := KeyspaceEnd([]byte(c.key)); string(got) != c.end || got == nil {
			t.Errorf("KeyspaceEnd(%q) = %q, want %q", c.key, got, c.end)
		}
	}
	if got := KeyspaceEnd([]byte("\xff\xff\x01")); got != nil {
		t.Errorf("KeyspaceEnd(ff ff 01) = %q, want nil (no end)", got)
	}
}

// TestRecommendedOptionsCutFilesAtKeyspaces: with the recommended
// options, no sstable written by a flush or a compaction holds keys of
// two keyspaces, so a file of appended keys (journal entries, postings)
// never overlaps the files of the keyspaces around it. A data directory
// written before, with files cut by size only, opens as it is, reads the
// same, and its files are cut at keyspaces once compacted.
func TestRecommendedOptionsCutFilesAtKeyspaces(t *testing.T) {
	fs := vfs.NewMem()
	spaces := []string{"je", "jo", "lb", "lp", "t/"}
	value := make([]byte, 100)
	open := func(o *pebble.Options) *pebble.DB {
		t.Helper()
		o.FS = fs
		db, err := pebble.Open("db", o)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	write := func(db *pebble.DB, from, to int) {
		t.Helper()
		b := db.NewBatch()
		for i := from; i < to; i++ {
			for _, space := range spaces {
				_ = b.Set(fmt.Appendf(nil, "%s%08d", space, i), value, nil)
			}
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// spanning counts the tables holding keys of two keyspaces.
	spanning := func(db *pebble.DB) (spanning, files int) {
		t.Helper()
		levels, err := db.SSTables()
		if err != nil {
			t.Fatal(err)
		}
		for _, tables := range levels {
			for _, f := range tables {
				files++
				if lo, hi := f.Smallest.UserKey, f.Largest.UserKey; string(lo[:2]) != string(hi[:2]) {
					spanning++
				}
			}
		}
		return spanning, files
	}
	before := RecommendedPebbleOptions()
	before.Experimental.SpanPolicyFunc = nil // files cut by size only
	db := open(before)
	write(db, 0, 1000)
	if n, _ := spanning(db); n != 1 {
		t.Fatalf("size-only options: %d tables hold two keyspaces, want the flush's one", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open(RecommendedPebbleOptions())
	defer db.Close()
	write(db, 1000, 2000)
	write(db, 2000, 3000)
	if n, files := spanning(db); n != 1 || files != 1+2*len(spaces) {
		t.Fatalf("after two flushes: %d of %d tables hold two keyspaces, want only the one written before (of %d)", n, files, 1+2*len(spaces))
	}
	if err := db.Compact(context.Background(), []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}
	if n, files := spanning(db); n != 0 || files < len(spaces) {
		t.Fatalf("after a compaction: %d of %d tables hold two keyspaces", n, files)
	}
	for _, space := range spaces {
		for _, i := range []int{0, 999, 1000, 2999} {
			v, closer, err := db.Get(fmt.Appendf(nil, "%s%08d", space, i))
			if err != nil {
				t.Fatalf("%s%08d: %v", space, i, err)
			}
			if len(v) != len(value) {
				t.Fatalf("%s%08d: %d bytes", space, i, len(v))
			}
			_ = closer.Close()
		}
	}
}
