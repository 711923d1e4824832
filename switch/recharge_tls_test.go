package switching

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/internal/rechargesim"
)

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its
// key as PEM files and returns their paths and the certificate.
func writeTestCert(t *testing.T) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "recharge test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// The recharge listener speaks HTTPS when given a certificate.
func TestRechargeHTTPS(t *testing.T) {
	certFile, keyFile, cert := writeTestCert(t)
	sw := testSwitch(t, func(c *Config) { c.Recharge.TLSCert, c.Recharge.TLSKey = certFile, keyFile })
	h, err := rechargesim.NewHTTP("https://"+sw.RechargeAddr(), demoInst, demoHTTPKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	h.Client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	a, err := h.Verify(rechargesim.Op{Card: cardZhaoMin, Name: "赵敏", Amount: -1})
	want(t, "verify over HTTPS", a, err, "00")
	// Plain HTTP to the HTTPS listener gets no answer.
	plain, _ := rechargesim.NewHTTP("http://"+sw.RechargeAddr(), demoInst, demoHTTPKey)
	if a, err := plain.Verify(rechargesim.Op{Card: cardZhaoMin, Name: "赵敏", Amount: -1}); err == nil && a.RC == "00" {
		t.Fatal("plain HTTP served on the HTTPS listener")
	}
}
