package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// tlsCA is a throwaway certificate authority for one test.
type tlsCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	dir  string
}

var tlsSerial atomic.Int64

func newTLSCA(t *testing.T) *tlsCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(tlsSerial.Add(1)),
		Subject:               pkix.Name{CommonName: "meshgate test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tlsCA{cert: cert, key: key, pool: pool, dir: t.TempDir()}
}

// issue writes a server certificate for dnsName (and its key) to files
// named after file, and returns their paths and the certificate.
func (ca *tlsCA) issue(t *testing.T, file, dnsName string) (certPath, keyPath string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(tlsSerial.Add(1)),
		Subject:      pkix.Name{CommonName: dnsName},
		DNSNames:     []string{dnsName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath = filepath.Join(ca.dir, file+".crt")
	keyPath = filepath.Join(ca.dir, file+".key")
	writeAtomic(t, certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeAtomic(t, keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	return certPath, keyPath, cert
}

func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

type tlsPair struct{ cert, key string }

func tlsEdgeConfig(httpBackend, grpcBackend string, pairs ...tlsPair) string {
	var certs strings.Builder
	for _, p := range pairs {
		fmt.Fprintf(&certs, "        - {cert_file: %q, key_file: %q}\n", p.cert, p.key)
	}
	return fmt.Sprintf(`
log: {access: "off"}
listeners:
  - name: public
    address: "127.0.0.1:0"
    protocol: https
    tls:
      certificates:
%sroutes:
  - name: grpc
    match: {path: {prefix: /grpc.testing.TestService}}
    upstream: g
  - name: web
    match: {path: {prefix: /}}
    upstream: web
upstreams:
  - {name: g, protocol: auto, endpoints: [{address: %q}]}
  - {name: web, endpoints: [{address: %q}]}
`, certs.String(), grpcBackend, httpBackend)
}

// tlsLeaf handshakes with the edge and returns the certificate it served.
// serverName "" sends no SNI; verify checks the chain against the CA.
func tlsLeaf(t *testing.T, addr string, ca *tlsCA, serverName string, verify bool) *x509.Certificate {
	t.Helper()
	cfg := &tls.Config{RootCAs: ca.pool, ServerName: serverName, InsecureSkipVerify: !verify}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS handshake with SNI %q: %v", serverName, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

func sameCert(a, b *x509.Certificate) bool { return a.SerialNumber.Cmp(b.SerialNumber) == 0 }

// tlsClient is an HTTPS client of the edge for serverName; h2 offers HTTP/2.
func tlsClient(ca *tlsCA, serverName string, h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: serverName}}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	if h2 {
		tr.Protocols.SetHTTP2(true)
	} else {
		// Offer http/1.1 in ALPN explicitly (Go sends no ALPN otherwise).
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func TestTLSListener(t *testing.T) {
	ca := newTLSCA(t)
	aCert, aKey, a := ca.issue(t, "a", "a.example.com")
	bCert, bKey, b := ca.issue(t, "b", "b.example.com")
	web := echoBackend(t, "web")
	gb := startGRPCBackend(t, "g1")
	e := startEdge(t, tlsEdgeConfig(addr(web), gb.addr, tlsPair{aCert, aKey}, tlsPair{bCert, bKey}))
	edgeAddr := e.node.Addr("public")

	t.Run("sni", func(t *testing.T) {
		if got := tlsLeaf(t, edgeAddr, ca, "a.example.com", true); !sameCert(got, a) {
			t.Errorf("SNI a.example.com got %v", got.DNSNames)
		}
		if got := tlsLeaf(t, edgeAddr, ca, "b.example.com", true); !sameCert(got, b) {
			t.Errorf("SNI b.example.com got %v", got.DNSNames)
		}
		if got := tlsLeaf(t, edgeAddr, ca, "B.Example.COM", true); !sameCert(got, b) {
			t.Errorf("SNI B.Example.COM got %v", got.DNSNames)
		}
		if got := tlsLeaf(t, edgeAddr, ca, "unknown.example.org", false); !sameCert(got, a) {
			t.Errorf("unknown SNI got %v, want the first certificate", got.DNSNames)
		}
		if got := tlsLeaf(t, edgeAddr, ca, "", false); !sameCert(got, a) {
			t.Errorf("no SNI got %v, want the first certificate", got.DNSNames)
		}
	})

	t.Run("alpn", func(t *testing.T) {
		url := "https://" + edgeAddr + "/hello"
		for _, tc := range []struct {
			h2        bool
			major     int
			negotiate string
		}{{true, 2, "h2"}, {false, 1, "http/1.1"}} {
			c := tlsClient(ca, "b.example.com", tc.h2)
			resp, err := c.Get(url)
			if err != nil {
				t.Fatalf("h2=%v: %v", tc.h2, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.ProtoMajor != tc.major || resp.TLS.NegotiatedProtocol != tc.negotiate {
				t.Errorf("h2=%v: status %d proto %s ALPN %q, want HTTP/%d and %q", tc.h2, resp.StatusCode, resp.Proto, resp.TLS.NegotiatedProtocol, tc.major, tc.negotiate)
			}
			if !sameCert(resp.TLS.PeerCertificates[0], b) {
				t.Errorf("h2=%v: served %v", tc.h2, resp.TLS.PeerCertificates[0].DNSNames)
			}
			s := decode(t, string(body))
			if s.Name != "web" || http.Header(s.Headers).Get("X-Forwarded-Proto") != "https" {
				t.Errorf("h2=%v: backend saw %+v", tc.h2, s)
			}
			c.CloseIdleConnections()
		}
	})

	t.Run("grpc", func(t *testing.T) {
		client := grpcDial(t, edgeAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.pool, ServerName: "a.example.com"})))
		grpcUnaryMetadata(t, client)
		grpcPingPong(t, client, "g1", 10)
		grpcClientStreaming(t, client)
	})

	t.Run("reload-cert", func(t *testing.T) {
		// An HTTP/2 connection opened before the reload.
		before := tlsClient(ca, "a.example.com", true)
		defer before.CloseIdleConnections()
		resp, err := before.Get("https://" + edgeAddr + "/before")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()

		// A new certificate for a.example.com in a new file.
		a2Cert, a2Key, a2 := ca.issue(t, "a2", "a.example.com")
		e.write(tlsEdgeConfig(addr(web), gb.addr, tlsPair{a2Cert, a2Key}, tlsPair{bCert, bKey}))
		if err := e.node.Reload(); err != nil {
			t.Fatalf("reload: %v", err)
		}
		if got := e.node.Addr("public"); got != edgeAddr {
			t.Fatalf("reload moved the listener from %s to %s", edgeAddr, got)
		}
		if got := tlsLeaf(t, edgeAddr, ca, "a.example.com", true); !sameCert(got, a2) {
			t.Errorf("after reload SNI a.example.com got serial %v, want the new %v (old %v)", got.SerialNumber, a2.SerialNumber, a.SerialNumber)
		}
		if got := tlsLeaf(t, edgeAddr, ca, "b.example.com", true); !sameCert(got, b) {
			t.Errorf("after reload SNI b.example.com got %v", got.DNSNames)
		}
		if got := tlsLeaf(t, edgeAddr, ca, "", false); !sameCert(got, a2) {
			t.Errorf("after reload the default certificate is %v, want the new a", got.SerialNumber)
		}
		// The connection from before keeps serving.
		resp, err = before.Get("https://" + edgeAddr + "/after")
		if err != nil {
			t.Fatalf("old connection after reload: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !sameCert(resp.TLS.PeerCertificates[0], a) {
			t.Errorf("old connection: %d, cert serial %v (want the old one, same connection)", resp.StatusCode, resp.TLS.PeerCertificates[0].SerialNumber)
		}

		// The same file rewritten in place, and a reload: read again.
		a3Cert, a3Key, a3 := ca.issue(t, "a2", "a.example.com")
		if a3Cert != a2Cert || a3Key != a2Key {
			t.Fatal("issue did not reuse the paths")
		}
		if err := e.node.Reload(); err != nil {
			t.Fatalf("reload: %v", err)
		}
		if got := tlsLeaf(t, edgeAddr, ca, "a.example.com", true); !sameCert(got, a3) {
			t.Errorf("after rewriting the file SNI a.example.com got serial %v, want %v", got.SerialNumber, a3.SerialNumber)
		}
		c := tlsClient(ca, "a.example.com", true)
		defer c.CloseIdleConnections()
		resp, err = c.Get("https://" + edgeAddr + "/new")
		if err != nil {
			t.Fatalf("new connection after reload: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			t.Errorf("new connection after reload: %d %s", resp.StatusCode, resp.Proto)
		}

		// A reload with a broken certificate is rejected; the last good
		// certificates keep serving.
		writeAtomic(t, a2Cert, []byte("not a certificate"))
		if err := e.node.Reload(); err == nil {
			t.Error("reload with a broken certificate file succeeded")
		}
		if got := tlsLeaf(t, edgeAddr, ca, "a.example.com", true); !sameCert(got, a3) {
			t.Errorf("after a rejected reload SNI a.example.com got serial %v, want %v", got.SerialNumber, a3.SerialNumber)
		}
	})
}

// TestH2CPriorKnowledgeAndTrailers: an HTTP/2 client without TLS (prior
// knowledge) reaches a protocol: http listener, and trailers set by an
// HTTP/1.1 backend (chunked, declared in Trailer or not) reach HTTP/2 and
// HTTP/1.1 clients.
func TestH2CPriorKnowledgeAndTrailers(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Checksum")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Proto-Seen", r.Proto)
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "chunk-%d;", i)
			w.(http.Flusher).Flush() // chunked, no Content-Length
		}
		fmt.Fprintf(w, "got=%s", body)
		w.Header().Set("X-Checksum", "sum-123")
		w.Header().Set(http.TrailerPrefix+"X-Undeclared", "late")
	}))
	t.Cleanup(backend.Close)
	e := startEdge(t, fmt.Sprintf(`
log: {access: "off"}
listeners: [{name: public, address: "127.0.0.1:0", protocol: http}]
routes: [{name: r, match: {path: {prefix: /}}, upstream: u}]
upstreams: [{name: u, endpoints: [{address: %q}]}]
`, addr(backend)))

	h2c := &http.Transport{}
	h2c.Protocols = new(http.Protocols)
	h2c.Protocols.SetUnencryptedHTTP2(true)
	h1 := &http.Transport{}
	t.Cleanup(h2c.CloseIdleConnections)
	t.Cleanup(h1.CloseIdleConnections)

	for _, tc := range []struct {
		name  string
		rt    http.RoundTripper
		major int
	}{{"h2c", h2c, 2}, {"http1", h1, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", e.url("public")+"/t", strings.NewReader("payload"))
			resp, err := tc.rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.ProtoMajor != tc.major || resp.StatusCode != 200 {
				t.Fatalf("status %d over %s, want HTTP/%d", resp.StatusCode, resp.Proto, tc.major)
			}
			if got := resp.Header.Get("X-Proto-Seen"); got != "HTTP/1.1" {
				t.Errorf("backend saw %q, want HTTP/1.1", got)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("body: %v", err)
			}
			if string(body) != "chunk-0;chunk-1;chunk-2;got=payload" {
				t.Errorf("body %q", body)
			}
			if got := resp.Trailer.Get("X-Checksum"); got != "sum-123" {
				t.Errorf("declared trailer X-Checksum = %q (trailers %v)", got, resp.Trailer)
			}
			if got := resp.Trailer.Get("X-Undeclared"); got != "late" {
				t.Errorf("undeclared trailer X-Undeclared = %q (trailers %v)", got, resp.Trailer)
			}
		})
	}
}
