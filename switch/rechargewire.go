package switching

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/cardswitch/cardswitch/hsm"
	"github.com/cardswitch/cardswitch/ledger"
	"github.com/cardswitch/cardswitch/switch/gateway"
	"github.com/cardswitch/cardswitch/switch/recharge"
	"go.uber.org/zap"
)

// InstitutionConfig is one outside institution that sends money in
// (docs/recharge.md "Configuration").
type InstitutionConfig struct {
	// ID is field 32 of its messages (up to 11 digits).
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// ZAK is its zone authentication key in clear hex (32 digits): demo
	// and test configurations only. It is loaded into the HSM at start;
	// without it the key must already be there, loaded by an operator
	// (switchctl, docs/hsm.md) under zone/inst-ID/ZAK.
	ZAK string `yaml:"zak"`
	// HTTPKey is its HTTP signing key in clear hex (16 or 32 bytes), demo
	// and test only, loaded into the HSM under recharge/ID/http; without it
	// HTTP requests of the institution need that key to be loaded.
	HTTPKey string `yaml:"http_key"`
	// Allow is the allow-list of source networks ("127.0.0.0/8",
	// "10.1.2.3/32").
	Allow []string `yaml:"allow"`
	// MaxCredit and MaxDailyCredit bound one credit and a card's credits
	// from this institution in one business day (decimal yuan).
	MaxCredit      ledger.Fen `yaml:"max_credit"`
	MaxDailyCredit ledger.Fen `yaml:"max_daily_credit"`
}

// RechargeConfig is the HTTP/JSON recharge listener. It is separate from
// the admin port, which stays internal.
type RechargeConfig struct {
	// HTTPAddr is where /recharge/v1/ listens; empty means no HTTP front
	// end.
	HTTPAddr string `yaml:"http_addr"`
	// TLSCert and TLSKey make it HTTPS (PEM files); both or neither.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// MaxBody bounds a request body [8192].
	MaxBody int `yaml:"max_body"`
	// Rate and Burst are each institution's HTTP requests per second and
	// the requests it may make at once [20, 40].
	Rate  int `yaml:"rate"`
	Burst int `yaml:"burst"`
	// CreditMode is "direct" (the default: credits reach the cash purse)
	// or "pending" (sites that write money onto the card chip: credits
	// wait until the card claims them at a load terminal).
	CreditMode string `yaml:"credit_mode"`
	// PendingRefundDays is the age after which an unclaimed pending
	// credit is listed for refund [30].
	PendingRefundDays int `yaml:"pending_refund_days"`
}

// Bounds of the recharge settings.
const (
	maxInstitutions   = 1000
	maxAllowPrefixes  = 64
	maxRechargeBody   = 64 << 10
	maxRechargeRate   = 100_000
	maxInstitutionLen = 11
)

func validateRecharge(insts []InstitutionConfig, rc RechargeConfig) error {
	var errs []error
	if len(insts) > maxInstitutions {
		errs = append(errs, fmt.Errorf("institutions: %d, at most %d", len(insts), maxInstitutions))
	}
	seen := map[string]bool{}
	for i, in := range insts {
		name := fmt.Sprintf("institutions[%d]", i)
		if in.ID == "" || len(in.ID) > maxInstitutionLen || !isDigitString(in.ID) {
			errs = append(errs, fmt.Errorf("%s.id %q: want 1..%d digits", name, in.ID, maxInstitutionLen))
		}
		if seen[in.ID] {
			errs = append(errs, fmt.Errorf("%s.id %s configured twice", name, in.ID))
		}
		seen[in.ID] = true
		if in.ZAK != "" {
			if k, err := decodeHexKey(in.ZAK); err != nil || len(k) != hsm.ZoneKeyLen {
				errs = append(errs, fmt.Errorf("%s.zak: want %d hex digits", name, 2*hsm.ZoneKeyLen))
			}
		}
		if in.HTTPKey != "" {
			if k, err := decodeHexKey(in.HTTPKey); err != nil || (len(k) != 16 && len(k) != 32) {
				errs = append(errs, fmt.Errorf("%s.http_key: want 32 or 64 hex digits", name))
			}
		}
		if len(in.Allow) == 0 || len(in.Allow) > maxAllowPrefixes {
			errs = append(errs, fmt.Errorf("%s.allow: want 1..%d networks", name, maxAllowPrefixes))
		}
		for _, a := range in.Allow {
			if _, err := netip.ParsePrefix(a); err != nil {
				errs = append(errs, fmt.Errorf("%s.allow %q: %w", name, a, err))
			}
		}
		if in.MaxCredit < 0 || in.MaxDailyCredit < 0 {
			errs = append(errs, fmt.Errorf("%s: limits must not be negative", name))
		}
	}
	if rc.MaxBody < 0 || rc.MaxBody > maxRechargeBody {
		errs = append(errs, fmt.Errorf("recharge.max_body %d: want 0 (default)..%d", rc.MaxBody, maxRechargeBody))
	}
	if rc.Rate < 0 || rc.Rate > maxRechargeRate || rc.Burst < 0 || rc.Burst > maxRechargeRate {
		errs = append(errs, fmt.Errorf("recharge.rate and burst: want 0 (default)..%d", maxRechargeRate))
	}
	switch rc.CreditMode {
	case "", "direct", "pending":
	default:
		errs = append(errs, fmt.Errorf("recharge.credit_mode %q: want direct or pending", rc.CreditMode))
	}
	if rc.PendingRefundDays < 0 || rc.PendingRefundDays > 3660 {
		errs = append(errs, fmt.Errorf("recharge.pending_refund_days %d: want 0 (default 30)..3660", rc.PendingRefundDays))
	}
	if (rc.TLSCert == "") != (rc.TLSKey == "") {
		errs = append(errs, errors.New("recharge: set both tls_cert and tls_key, or neither"))
	}
	return errors.Join(errs...)
}

func isDigitString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// rechargeObserver feeds the HTTP channel's answers into the switch metrics.
type rechargeObserver struct{ m *Metrics }

func (o rechargeObserver) Answered(tx, rc string, d time.Duration) {
	o.m.Transactions.WithLabelValues(tx, rc).Inc()
	o.m.Duration.WithLabelValues(tx).Observe(d.Seconds())
}

func (o rechargeObserver) Rejected(listener, reason string) {
	o.m.Rejected.WithLabelValues(listener, reason).Inc()
}

// rechargeFront is the recharge service and its HTTP channel (the gateway
// port reaches the service as a txn.Destination: gatewayProtocol).
type rechargeFront struct {
	svc     *recharge.Service
	http    *recharge.HTTP
	ln      net.Listener
	srv     *http.Server
	enabled bool // institutions are configured
}

// openRecharge loads the institutions' keys into the HSM and builds the
// recharge service (after openServices).
func (sw *Switch) openRecharge() error {
	var insts []recharge.Institution
	for _, c := range sw.cfg.Institutions {
		in := recharge.Institution{ID: c.ID, Name: c.Name, MaxCredit: c.MaxCredit, MaxDailyCredit: c.MaxDailyCredit}
		for _, a := range c.Allow {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				return fmt.Errorf("institution %s: %w", c.ID, err)
			}
			in.Allow = append(in.Allow, p.Masked())
		}
		zak := hsm.ZoneKeyLabel(recharge.KeyName(c.ID), hsm.ZAK)
		if err := sw.loadInstitutionKey(zak, hsm.TDES, c.ZAK); err != nil {
			return fmt.Errorf("institution %s ZAK: %w", c.ID, err)
		}
		if !sw.hsm.HasKey(zak) {
			return fmt.Errorf("institution %s: no ZAK in the HSM under %s (docs/recharge.md)", c.ID, zak)
		}
		alg := hsm.TDES
		if len(c.HTTPKey) == 64 {
			alg = hsm.AES
		}
		if err := sw.loadInstitutionKey(recharge.HTTPKeyLabel(c.ID), alg, c.HTTPKey); err != nil {
			return fmt.Errorf("institution %s HTTP key: %w", c.ID, err)
		}
		insts = append(insts, in)
	}
	if _, _, err := sw.hsm.EnsureKey(recharge.DataKeyLabel, hsm.TDK, hsm.AES, 32); err != nil {
		return fmt.Errorf("bank account data key: %w", err)
	}
	svc, err := recharge.New(recharge.Options{
		Sealer: sw.hsm, IsGateway: sw.isLink, HoldGateways: sw.holdLinks, Journal: sw.journal,
		DB: sw.db, Ledger: sw.ledger, Institutions: insts,
		Today: sw.clock.Today, Begin: sw.clock.Begin, End: sw.clock.End, NextRRN: sw.clock.NextRRN, Log: sw.log.Named("recharge"),
		PendingCredits: sw.cfg.Recharge.CreditMode == "pending",
	})
	if err != nil {
		return err
	}
	obs := rechargeObserver{sw.metrics}
	rc := sw.cfg.Recharge
	sw.recharge = &rechargeFront{
		svc:     svc,
		http:    recharge.NewHTTP(svc, sw.hsm, sw.journal, obs, recharge.HTTPOptions{MaxBody: rc.MaxBody, Rate: rc.Rate, Burst: rc.Burst}),
		enabled: len(insts) > 0,
	}
	return nil
}

// loadInstitutionKey loads a clear key from the configuration into the
// HSM as a ZAK (MAC only) under label; nothing when hexKey is empty.
func (sw *Switch) loadInstitutionKey(label string, alg hsm.Algorithm, hexKey string) error {
	if hexKey == "" {
		return nil
	}
	k, err := decodeHexKey(hexKey)
	if err != nil {
		return err
	}
	defer clearBytes(k)
	_, err = sw.hsm.LoadClearKeyAlg(label, hsm.ZAK, alg, k)
	return err
}

// startRecharge binds the recharge HTTP listener, when configured.
func (sw *Switch) startRecharge() error {
	rc := sw.cfg.Recharge
	if rc.HTTPAddr == "" || sw.recharge == nil {
		return nil
	}
	ln, err := net.Listen("tcp", rc.HTTPAddr)
	if err != nil {
		return fmt.Errorf("recharge HTTP on %s: %w", rc.HTTPAddr, err)
	}
	f := sw.recharge
	f.ln = ln
	f.srv = &http.Server{
		Handler:           f.http.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          zap.NewStdLog(sw.log.Named("recharge_http")),
	}
	served := f.http.Listener(ln)
	if rc.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(rc.TLSCert, rc.TLSKey)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("recharge HTTPS: %w", err)
		}
		served = tls.NewListener(served, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	go func() {
		if err := f.srv.Serve(served); err != nil && !errors.Is(err, http.ErrServerClosed) {
			sw.log.Error("recharge HTTP server stopped", zap.Error(err))
		}
	}()
	sw.log.Info("recharge HTTP listening", zap.String("addr", ln.Addr().String()), zap.Bool("tls", rc.TLSCert != ""))
	return nil
}

// RechargeAddr is the bound recharge HTTP address ("" when not listening).
func (sw *Switch) RechargeAddr() string {
	if sw.recharge == nil || sw.recharge.ln == nil {
		return ""
	}
	return sw.recharge.ln.Addr().String()
}

func (sw *Switch) stopRecharge(ctx context.Context) error {
	if sw.recharge == nil || sw.recharge.srv == nil {
		return nil
	}
	return sw.recharge.srv.Shutdown(ctx)
}

// gatewayProtocol is the gateway port's protocol (switch/gateway), with
// the institutions' front end when institutions are configured.
func (sw *Switch) gatewayProtocol() *gateway.Protocol {
	m := sw.metrics
	gm := gateway.Metrics{Messages: m.Messages, Rejected: m.Rejected, Transactions: m.Transactions, Duration: m.Duration}
	var inbound gateway.Inbound
	if f := sw.recharge; f != nil && f.enabled {
		inbound = gateway.NewInstitutions(gateway.InstitutionOptions{
			Institution: f.svc.Institution, Destination: f.svc, Keys: sw.hsm,
			DB: sw.db, Journal: sw.journal, Today: sw.clock.Today, Log: sw.log.Named("recharge"),
		}, gm)
	}
	return gateway.New(sw.log, gm, inbound)
}

// admitGateway says whether the gateway acceptor serves a connection from
// ip: with institutions configured, only from an address on one of their
// allow-lists.
func (sw *Switch) admitGateway(ip netip.Addr) bool {
	f := sw.recharge
	return f == nil || !f.enabled || f.svc.AllowedAnywhere(ip)
}
