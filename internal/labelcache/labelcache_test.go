package labelcache

import (
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestGetReturnsTheVectorsChild(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total"}, []string{"a", "b"})
	made := 0
	c := New(func(k [2]string) prometheus.Counter { made++; return vec.WithLabelValues(k[0], k[1]) })
	for i := 0; i < 3; i++ {
		c.Get([2]string{"in", "0200"}).Inc()
	}
	c.Get([2]string{"out", "0210"}).Inc()
	if got := counterValue(t, vec.WithLabelValues("in", "0200")); got != 3 {
		t.Errorf("in/0200 = %v, want 3", got)
	}
	if got := counterValue(t, vec.WithLabelValues("out", "0210")); got != 1 {
		t.Errorf("out/0210 = %v, want 1", got)
	}
	if made != 2 || c.Len() != 2 {
		t.Errorf("made %d children, cache holds %d; want 2 and 2", made, c.Len())
	}
}

func TestCacheIsBounded(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "y_total"}, []string{"a"})
	c := New(func(k [1]string) prometheus.Counter { return vec.WithLabelValues(k[0]) })
	for i := 0; i < MaxEntries+10; i++ {
		c.Get([1]string{fmt.Sprint(i)}).Inc()
	}
	// Past the bound the vector still counts; the cache stops growing.
	c.Get([1]string{fmt.Sprint(MaxEntries + 5)}).Inc()
	if c.Len() != MaxEntries {
		t.Errorf("cache holds %d, want %d", c.Len(), MaxEntries)
	}
	if got := counterValue(t, vec.WithLabelValues(fmt.Sprint(MaxEntries+5))); got != 2 {
		t.Errorf("uncached child = %v, want 2", got)
	}
}

func TestConcurrentGets(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "z_total"}, []string{"a"})
	c := New(func(k [1]string) prometheus.Counter { return vec.WithLabelValues(k[0]) })
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				c.Get([1]string{fmt.Sprint(i % 7)}).Inc()
			}
		}()
	}
	wg.Wait()
	total := 0.0
	for i := 0; i < 7; i++ {
		total += counterValue(t, vec.WithLabelValues(fmt.Sprint(i)))
	}
	if total != 8000 || c.Len() != 7 {
		t.Errorf("counted %v in %d children, want 8000 in 7", total, c.Len())
	}
}
