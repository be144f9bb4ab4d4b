package telemetry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// testPKI is a CA with a server certificate for collector.test and a
// client certificate, as PEM files.
type testPKI struct {
	caFile, certFile, keyFile string
	server                    tls.Certificate
	pool                      *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage, dns ...string) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, DNSNames: dns}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	k := &testPKI{pool: x509.NewCertPool()}
	k.pool.AddCert(ca)
	k.caFile = write("ca.pem", "CERTIFICATE", caDER)
	clientDER, clientKey := leaf(2, x509.ExtKeyUsageClientAuth)
	k.certFile = write("client.pem", "CERTIFICATE", clientDER)
	keyDER, _ := x509.MarshalECPrivateKey(clientKey)
	k.keyFile = write("client-key.pem", "EC PRIVATE KEY", keyDER)
	serverDER, serverKey := leaf(3, x509.ExtKeyUsageServerAuth, "collector.test")
	k.server = tls.Certificate{Certificate: [][]byte{serverDER}, PrivateKey: serverKey}
	return k
}

// A collector that requires mTLS: the exporter verifies it against
// ca_file under server_name and presents cert_file; without the client
// certificate every export fails. Both protocols.
func TestExportOverMTLS(t *testing.T) {
	k := newTestPKI(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{k.server}, ClientCAs: k.pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	col := tracetest.StartCollector(t, grpc.Creds(credentials.NewTLS(serverTLS)))

	hln, err := tls.Listen("tcp", "127.0.0.1:0", serverTLS)
	if err != nil {
		t.Fatal(err)
	}
	var httpGot atomic.Int64
	hsrv := &http.Server{ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpGot.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
	})}
	go func() { _ = hsrv.Serve(hln) }()
	defer hsrv.Close()

	for _, tc := range []struct {
		protocol, endpoint string
		received           func() int
	}{
		{"grpc", col.Addr(), col.Count},
		{"http", hln.Addr().String(), func() int { return int(httpGot.Load()) }},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			export := func(cfg config.Tracing) (got int, failed float64) {
				cfg.Endpoint, cfg.Protocol, cfg.CAFile, cfg.ServerName = tc.endpoint, tc.protocol, k.caFile, "collector.test"
				tr, _ := newTestTracer(t, cfg, nil, nil)
				before := tc.received()
				s := tr.StartServer(http.Header{}, time.Now(), false)
				s.End(time.Now())
				_ = tr.ForceFlush(context.Background())
				return tc.received() - before, counterValue(tr.pipe.droppedFailed)
			}
			if got, failed := export(config.Tracing{CertFile: k.certFile, KeyFile: k.keyFile}); got != 1 || failed != 0 {
				t.Errorf("with the client certificate: %d exports received, %v spans failed", got, failed)
			}
			// A refused handshake is retried (gRPC calls it Unavailable)
			// until the export timeout: a short one.
			if got, failed := export(config.Tracing{ExportTimeout: config.Duration(time.Second)}); got != 0 || failed != 1 {
				t.Errorf("without a client certificate: %d exports received, %v spans failed", got, failed)
			}
		})
	}
}
