package recongen

import (
	"context"
	"io"
	"testing"
)

// TestBenchSmall runs the scale check's generator, export and match at a
// small scale: the planted discrepancies come out classified.
func TestBenchSmall(t *testing.T) {
	dir := t.TempDir()
	p := &Progress{W: io.Discard}
	if err := GenerateBench(context.Background(), dir, 5_000, p); err != nil {
		t.Fatal(err)
	}
	if err := GenerateBench(context.Background(), dir, 10, p); err == nil {
		t.Fatal("generated over an existing store")
	}
	res, err := RunBench(context.Background(), dir, p)
	if err != nil {
		t.Fatal(err)
	}
	r := res.Report
	if res.Rows != 5_000 || r.OursOnly.Count != 1 || r.TheirsOnly.Count != 1 || r.AmountDiffers.Count != 1 ||
		r.StatusDiffers.Count != 0 || r.Matched.Count != r.TheirRecords-2 || r.OurRows != 5_000 {
		t.Fatalf("rows %d report %+v", res.Rows, r)
	}
	// Rerun after an interruption: the same result.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := RunBench(ctx, dir, p); err == nil {
		t.Fatal("a cancelled run did not stop")
	}
	res2, err := RunBench(context.Background(), dir, p)
	if err != nil || res2.Report.Matched != r.Matched || len(res2.Report.Discrepancies) != 3 ||
		res2.Report.Discrepancies[0] != r.Discrepancies[0] {
		t.Fatalf("rerun: %+v %v", res2, err)
	}
}
