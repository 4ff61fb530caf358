package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/converge-sync/converge"
	"github.com/converge-sync/converge/causal"
	"github.com/converge-sync/converge/syncproto"
	"github.com/converge-sync/converge/transport"
	"github.com/converge-sync/converge/transport/ws"
)

// A client that subscribes and then never reads cannot make the server
// hold without bound what it would send it: past MaxQueue the connection
// is dropped (at once, not after the write timeout), and the writer goes
// on being served.
func TestSlowClientDropped(t *testing.T) {
	ts := startT(t, t.TempDir(), Config{MaxQueue: 50})
	writer := openT(t)
	setT(t, docT(t, writer, "big"), "/n", 0)
	sw := syncT(t, writer, ts)
	waitSynced(t, sw)

	slow, err := ws.Dial(context.Background(), ts.syncURL(), ws.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close(transport.CloseNormal, "")
	for _, m := range []syncproto.Message{
		&syncproto.Hello{Version: syncproto.Version, Peer: causal.NewActorID(), Role: syncproto.RoleReplica},
		&syncproto.Subscribe{Doc: "big"},
	} {
		if err := slow.Write(context.Background(), syncproto.Encode(m)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the slow client connected", func() bool { return ts.connCount() == 2 })

	// 300 changes of 32 KiB, random so that no encoding compresses them:
	// far more than the socket buffers hold, so the server's writes to the
	// slow client block and its queue grows.
	start := time.Now()
	d := docT(t, writer, "big")
	noise := make([]byte, 24<<10)
	for i := range 300 {
		rand.Read(noise)
		v := fmt.Sprintf("%d %s", i, base64.StdEncoding.EncodeToString(noise))
		if err := d.Change(context.Background(), func(tx *converge.Txn) error { return tx.Set("/v", v) }); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the slow client dropped", func() bool { return ts.connCount() == 1 })
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("dropping the slow client took %v: the write timeout, not the queue bound, ended it", took)
	}
	waitSynced(t, sw)
	if got := ts.Replica().Store(); got == nil {
		t.Fatal("no store")
	}
	v, err := ts.Replica().Store().Version(context.Background(), "big")
	if err != nil || v.Get(writer.Actor()) != 301 {
		t.Fatalf("the server holds %v of the writer's 301 changes (%v)", v, err)
	}
}

// selfSigned writes a certificate and key for 127.0.0.1 and returns their
// paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (cert, key string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "converge test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	pool = x509.NewCertPool()
	c, _ := x509.ParseCertificate(der)
	pool.AddCert(c)
	return cert, key, pool
}

func TestTLS(t *testing.T) {
	cert, key, pool := selfSigned(t)
	ts := startT(t, t.TempDir(), Config{Auth: verifierT(t), TLSCertFile: cert, TLSKeyFile: key})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	tok := tokenT(t, testSecret, "ann", time.Hour, "notes/*:rw")

	r := openT(t)
	setT(t, docT(t, r, "notes/a"), "/v", "over TLS")
	url := "wss://" + ts.addr + SyncPath
	s, err := r.Sync(context.Background(), url, converge.SyncDialer(func(ctx context.Context) (transport.Conn, error) {
		return ws.Dial(ctx, url, ws.DialOptions{HTTPClient: client, Header: http.Header{"Authorization": {"Bearer " + tok}}})
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	waitSynced(t, s)

	req, _ := http.NewRequest("GET", "https://"+ts.addr+DocsPath+"notes%2Fa", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET over TLS: %d", resp.StatusCode)
	}
	// Plain HTTP is not served.
	if resp, err := http.Get("http://" + ts.addr + HealthPath); err == nil && resp.StatusCode == 200 {
		t.Fatal("plain HTTP served on the TLS port")
	}
}

func TestTLSConfigErrors(t *testing.T) {
	cert, _, _ := selfSigned(t)
	if _, err := New(Config{DataDir: t.TempDir(), Logger: quiet, TLSCertFile: cert}); err == nil {
		t.Error("a certificate without a key was accepted")
	}
	if _, err := New(Config{DataDir: t.TempDir(), Logger: quiet, TLSCertFile: cert, TLSKeyFile: cert}); err == nil {
		t.Error("a certificate as its own key was accepted")
	}
}
