package posim

import (
	"context"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/ledger"
	switching "github.com/cardswitch/cardswitch/switch"
	"github.com/cardswitch/cardswitch/switch/terminals"
)

// BenchmarkSwitchClosedLoop runs posim closed-loop against an in-process
// switch (20 seeded terminals, a rich staff card each) for 3 s and reports
// tps and latency quantiles. It exists to profile the switch and the
// terminal side together:
//
//	go test -run '^$' -bench SwitchClosedLoop -benchtime 1x -cpuprofile cpu.out ./internal/posim/
//	go tool pprof -top cpu.out
func BenchmarkSwitchClosedLoop(b *testing.B) {
	const n = 20
	tmk, _ := hex.DecodeString(DemoTMK)
	var terms []TerminalSpec
	_, pos, _ := startSwitchWith(b, func(cfg *switching.Config) {
		cfg.Seed.Terminals = append([]terminals.Spec(nil), cfg.Seed.Terminals...)
		cfg.Seed.Cards = append([]switching.SeedCard(nil), cfg.Seed.Cards...)
		for i := 0; i < n; i++ {
			id, pan := fmt.Sprintf("7700%04d", i), CardPAN("623015", 990000, i)
			cfg.Seed.Terminals = append(cfg.Seed.Terminals, terminals.Spec{ID: id, Merchant: "898310000000001", TMK: DemoTMK})
			cfg.Seed.Cards = append(cfg.Seed.Cards, switching.SeedCard{
				CardSpec: ledger.CardSpec{PAN: pan, Holder: "bench", HolderType: ledger.Staff, Cash: 1_000_000_000}, PIN: "654321"})
			terms = append(terms, TerminalSpec{ID: id, Merchant: "898310000000001", TMK: tmk, Cards: []Card{{PAN: pan, PIN: "654321"}}})
		}
	})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := Run(context.Background(), Options{Addr: pos, Terminals: terms, Duration: 3 * time.Second, Seed: uint64(i)})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.TPS(), "tps")
		b.ReportMetric(res.Latency.Quantile(0.5), "p50_ms")
		b.ReportMetric(res.Latency.Quantile(0.99), "p99_ms")
	}
}
