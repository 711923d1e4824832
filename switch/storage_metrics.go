package switching

import (
	"math"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// storageCollector exports the health of the Pebble instance and of the
// file system under the data directory at scrape time
// (docs/operations.md "Metrics"): what the dashboard's storage panels and
// the disk alert read.
type storageCollector struct {
	db  *pebble.DB
	dir string

	diskUsage, readAmp, l0Files, l0Sublevels, debt, compacting, memtable, walSize *prometheus.Desc
	fsFree, fsSize                                                                *prometheus.Desc
	walFsync                                                                      *prometheus.Desc
}

func newStorageCollector(db *pebble.DB, dir string) *storageCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &storageCollector{
		db:          db,
		dir:         dir,
		diskUsage:   d("switch_pebble_disk_usage_bytes", "Bytes the Pebble instance occupies on disk (tables, WAL, manifests)."),
		readAmp:     d("switch_pebble_read_amplification", "Pebble read amplification: sublevels of L0 plus non-empty lower levels."),
		l0Files:     d("switch_pebble_l0_files", "Tables in Pebble's level 0; a growing count means compactions fall behind."),
		l0Sublevels: d("switch_pebble_l0_sublevels", "Sublevels of Pebble's level 0."),
		debt:        d("switch_pebble_compaction_debt_bytes", "Estimated bytes Pebble must compact to reach a stable shape."),
		compacting:  d("switch_pebble_compactions_in_progress", "Pebble compactions running now."),
		memtable:    d("switch_pebble_memtable_bytes", "Bytes allocated by Pebble's memtables."),
		walSize:     d("switch_pebble_wal_bytes", "Bytes of Pebble's live write-ahead log files."),
		fsFree:      d("switch_data_dir_free_bytes", "Bytes available to switchd on the file system holding the data directory."),
		fsSize:      d("switch_data_dir_size_bytes", "Size in bytes of the file system holding the data directory."),
		walFsync: d("switch_pebble_wal_fsync_seconds",
			"Time of each fdatasync of Pebble's write-ahead log: the disk's share of every synced commit."),
	}
}

func (c *storageCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.diskUsage, c.readAmp, c.l0Files, c.l0Sublevels,
		c.debt, c.compacting, c.memtable, c.walSize, c.fsFree, c.fsSize, c.walFsync} {
		ch <- d
	}
}

func (c *storageCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.db.Metrics()
	g := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	g(c.diskUsage, float64(m.DiskSpaceUsage()))
	g(c.readAmp, float64(m.ReadAmp()))
	g(c.l0Files, float64(m.Levels[0].TablesCount))
	g(c.l0Sublevels, float64(m.Levels[0].Sublevels))
	g(c.debt, float64(m.Compact.EstimatedDebt))
	g(c.compacting, float64(m.Compact.NumInProgress))
	g(c.memtable, float64(m.MemTable.Size))
	g(c.walSize, float64(m.WAL.Size))
	if h, ok := walFsyncHistogram(c.walFsync, m.LogWriter.FsyncLatency); ok {
		ch <- h
	}
	if free, size, ok := fsSpace(c.dir); ok {
		g(c.fsFree, float64(free))
		g(c.fsSize, float64(size))
	}
}

// walFsyncHistogram re-exports Pebble's histogram of WAL fdatasync times
// (nanoseconds, 100 buckets) in seconds on a subset of its own bucket
// bounds, so that every count is exact: 0.2, 0.5, 1, 1.5, 2, 3 ms from its
// 0.1 ms steps, then every third of its ~17 % steps from 5 ms to 10 s.
// Comparing it with switch_transaction_duration_seconds tells the disk's
// part of a slow commit from the switch's (docs/operations.md).
func walFsyncHistogram(d *prometheus.Desc, h prometheus.Histogram) (prometheus.Metric, bool) {
	if h == nil {
		return nil, false
	}
	var m dto.Metric
	if err := h.Write(&m); err != nil || m.Histogram == nil {
		return nil, false
	}
	buckets := make(map[float64]uint64, 24)
	exp := 0 // index among the bounds from 5 ms up
	for _, b := range m.Histogram.Bucket {
		tenthsMs := math.Round(b.GetUpperBound() / 1e5) // 0.1 ms units
		switch {
		case tenthsMs < 50:
			switch tenthsMs {
			case 2, 5, 10, 15, 20, 30:
				buckets[tenthsMs/1e4] = b.GetCumulativeCount()
			}
		default:
			if exp%3 == 0 {
				buckets[b.GetUpperBound()/1e9] = b.GetCumulativeCount()
			}
			exp++
		}
	}
	return prometheus.MustNewConstHistogram(d, m.Histogram.GetSampleCount(), m.Histogram.GetSampleSum()/1e9, buckets), true
}
