package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// checkerFor builds the first target's checker exactly as the program does,
// from flags.
func checkerFor(t *testing.T, args ...string) checker {
	t.Helper()
	opts, err := parseArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	tg, errs := buildTarget(opts.targets[0])
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return tg.checker
}

func httpCheckFor(t *testing.T, args ...string) *httpCheck {
	t.Helper()
	return checkerFor(t, args...).(*httpCheck)
}

func attempt(c checker) error { return c.check(context.Background()) }

func TestParseHTTPAddress(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{"http://example.com", ""},
		{"https://example.com:8443/health?x=1", ""},
		{"http://[::1]:8080/", ""},
		{"http://u:p@host/", ""},
		{"example.com", "want an http:// or https:// URL"},
		{"ftp://example.com", "want an http:// or https:// URL"},
		{"http://", "the URL has no host"},
		{"http://:80/", "the URL has no host"},
		{"http://host:0/", "the port must be a number from 1 to 65535"},
		{"http://host:99999/", "the port must be a number from 1 to 65535"},
		{"http://host:/", "the port must be a number from 1 to 65535"},
		{"http://u:p ss@host%zz/", "not a valid URL (want http://host[:port]/path"},
		{"http://host:abc/", "not a valid URL (want http://host[:port]/path"},
		// A / in the password ends the host early (port "Hunt"), a bad %
		// is a bad escape: the message says it is the user information.
		{"http://admin:Hunt/er@22@127.0.0.1:42851/ok", "not a valid URL: the user information is not valid; percent-encode special characters in the password"},
		{"http://admin:Hunt/er@host/", "the user information is not valid"},
		{"https://admin:50%zzHunt@host/", "the user information is not valid"},
		{"http://admin:Hunt%2Fer%4022@host/", ""},
		{"http://admin:Hunt@er@host/", ""}, // the last @ ends the user information
	} {
		_, err := parseHTTPAddress(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("parseHTTPAddress(%q): %v", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseHTTPAddress(%q) = %v, want an error containing %q", tc.in, err, tc.err)
		}
		if err != nil && (strings.Contains(err.Error(), "p ss") || strings.Contains(err.Error(), "Hunt")) {
			t.Errorf("error quotes the URL: %v", err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://user:secret@host:80/p", "http://user:xxxxx@host:80/p"},
		{"https://user:s@cr:et@host", "https://user:xxxxx@host"},
		{"http://user@host/p", "http://user@host/p"},
		{"http://host/a@b:c", "http://host/a@b:c"},
		{"[::1", "[::1"},
		{"::1", "::1"},
		{"fe80::1%nonexist0", "fe80::1%nonexist0"},
		{"redis://[::1:5", "redis://[::1:5"},
		{"u::S3CRET", "u:xxxxx"},
		// A ? in a keyword/value string starts no query: & is in the password.
		{"user=? password=&S3CRET host=db", "user=? password=xxxxx host=db"},
		{"h:1,u:S3CRETzz", "h:1,u:xxxxx"},
		{"mongodb://h1:1,u:S3CRETzz/", "mongodb://h1:1,u:xxxxx"},
		{"mongodb://127.0.0.1,[::1]:27017/", "mongodb://127.0.0.1,[::1]:27017/"},
		{"mongodb://127.0.0.1,[fe80::1%eth0]:27017/", "mongodb://127.0.0.1,[fe80::1%eth0]:27017/"},
		{"postgresql:///x?host=[fe80::1%eth0]", "postgresql:///x?host=[fe80::1%eth0]"},
		{"tcp(db:3306)/app", "tcp(db:3306)/app"},
		{"postgresql://u:S3CRET/zz", "postgresql://u:xxxxx"},
		{"[u:S3CRET", "[u:xxxxx"},
		{"postgres://u:pw@db:5432", "postgres://u:xxxxx@db:5432"},
		{"http://u:p ss@host%zz/", "http://u:xxxxx@host%zz/"},
		{"localhost:5432", "localhost:5432"},
		// The password may hold / and @: the user information runs to the last @.
		{"http://user:hunter2/pw@localhost:18080/", "http://user:xxxxx@localhost:18080/"},
		{"http://user:pa/ss@host/path", "http://user:xxxxx@host/path"},
		{"http://user:pa@ss@host/path", "http://user:xxxxx@host/path"},
		{"http://user:p?w#x@host/", "http://user:xxxxx@host/"},
		// Without a scheme, as a tcp address or a DSN may be written.
		{"user:pw@host:5432", "user:xxxxx@host:5432"},
		{"user:p/w@host:5432", "user:xxxxx@host:5432"},
		{"user@host:5432", "user@host:5432"},
		// A reference is a name, not a value: shown as written.
		{"file:/run/secrets/a:b@c", "file:/run/secrets/a:b@c"},
		{"postgres://db/app?sslmode=disable&password=s3cret&user=u", "postgres://db/app?sslmode=disable&password=xxxxx&user=u"},
		{"postgresql://u:pw@db/app?password=s3cret", "postgresql://u:xxxxx@db/app?password=xxxxx"},
		{"host=db password=s3cret dbname=app", "host=db password=xxxxx dbname=app"},
		{"host=db user=app@corp password=s3cret", "host=db user=app@corp password=xxxxx"},
		// Words with an = that are not libpq's key words may be a password.
		{"= 00=000@0", "xxxxx@0"},
		{"a=b c=s3cret@tcp(db)/x", "xxxxx@tcp(db)/x"},
		// Every key naming a secret, in any case: the safe side wins over a
		// harmless key that happens to hold such a word.
		{"http://host/?old_password=keep", "http://host/?old_password=xxxxx"},
		{"postgres://app@db/x?sslpassword=s3cret", "postgres://app@db/x?sslpassword=xxxxx"},
		{"postgres://db/x?PASSWORD=s3cret&sslmode=require", "postgres://db/x?PASSWORD=xxxxx&sslmode=require"},
		{"http://host/?api_token=t1&client_secret=t2&x=1", "http://host/?api_token=xxxxx&client_secret=xxxxx&x=1"},
		{"u@tcp(db)/app?Pwd=a&passwd=b", "u@tcp(db)/app?Pwd=xxxxx&passwd=xxxxx"},
		{"mongodb://h/?tlsCertificateKeyFilePassword=k", "mongodb://h/?tlsCertificateKeyFilePassword=xxxxx"},
		{"http://host/?ssl%70assword=s3cret", "http://host/?ssl%70assword=xxxxx"},
		{"Server=db;Pwd=s3cret;Database=app", "Server=db;Pwd=xxxxx"}, // a value may hold ;
		{"http://host/?token=a@b:c", "http://host/?token=xxxxx"},
		{"http://host/?token=", "http://host/?token=xxxxx"},
		{"http://host/?user=a&mode=b", "http://host/?user=a&mode=b"},
		{"u:pw@tcp(db:3306)/app", "u:xxxxx@tcp(db:3306)/app"},
		{"u:p@ss/w:d@tcp(db:3306", "u:xxxxx@tcp(db:3306"},
		{"u@unix(/run/s.sock)/", "u@unix(/run/s.sock)/"},
		// A space where the colon was forgotten: no part is a user name.
		{"app Sekr1tK@tcp(127.0.0.1:13306)/shop?tls=x", "xxxxx@tcp(127.0.0.1:13306)/shop?tls=x"},
		{"mysql://app Sekr1tK@db/shop", "mysql://xxxxx@db/shop"},
		{"app Se:kr1tK@tcp(db)/", "xxxxx@tcp(db)/"},
		{"host=db user=app@corp password=s3 dbname=x", "host=db user=app@corp password=xxxxx dbname=x"},
		// A :// in a password starts no URL.
		{"app:pa://ss@tcp(db)/", "app:xxxxx@tcp(db)/"},
		{"file:/run/a@b//k", "file:/run/a@b//k"},
		// No @: a port that is not a number may be a password's start.
		{"postgresql://u:S3CRET", "postgresql://u:xxxxx"},
		{"http://u:S3/CRET?x#y", "http://u:xxxxx"},
		{"app:S3CRET", "app:xxxxx"},
		{"[::1]:S3CRET", "[::1]:xxxxx"},
		{"http://[::1]:8080/a:b", "http://[::1]:8080/a:b"},
		{"mongodb://h1:27017,h2:27018/?x=1", "mongodb://h1:27017,h2:27018/?x=1"},
		{"tcp(db:3306)/app", "tcp(db:3306)/app"},
		{"localhost:", "localhost:"},
		{"unix:run/app.sock", "unix:run/app.sock"},
		// Keys named in README: every one holding key, credential or
		// signature, and auth, sig, authMechanismProperties exactly.
		{"http://h/?apikey=1&api-key=2&access_key=3&auth_key=4&X-Amz-Credential=5&X-Amz-Signature=6&sig=7&auth=8&x=9",
			"http://h/?apikey=xxxxx&api-key=xxxxx&access_key=xxxxx&auth_key=xxxxx&X-Amz-Credential=xxxxx&X-Amz-Signature=xxxxx&sig=xxxxx&auth=xxxxx&x=9"},
		{"mongodb://h/?authMechanismProperties=AWS_SESSION_TOKEN:t&authSource=admin", "mongodb://h/?authMechanismProperties=xxxxx&authSource=admin"},
	} {
		if got := redactURL(tc.in); got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHTTPFreshConnectionPerAttempt(t *testing.T) {
	var conns, requests atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := httpCheckFor(t, "--http.w.address="+srv.URL)
	for range 5 {
		if err := attempt(c); err == nil || err.Error() != "status 503, want 200" {
			t.Fatalf("attempt = %v", err)
		}
	}
	if conns.Load() != 5 || requests.Load() != 5 {
		t.Errorf("%d requests over %d connections, want one connection per attempt", requests.Load(), conns.Load())
	}
}

func TestHTTPHostHeaderAndUserAgent(t *testing.T) {
	var ua atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua.Store(r.UserAgent())
		if r.Host != "api.internal" {
			w.WriteHeader(http.StatusMisdirectedRequest)
		}
	}))
	defer srv.Close()
	if err := attempt(httpCheckFor(t, "--http.w.address="+srv.URL)); err == nil || err.Error() != "status 421, want 200" {
		t.Errorf("without Host: %v", err)
	}
	if ua.Load() != "portpatrol/"+versionString() {
		t.Errorf("User-Agent = %q", ua.Load())
	}
	if err := attempt(httpCheckFor(t, "--http.w.address="+srv.URL, "--http.w.header=host=api.internal", "--http.w.header=User-Agent=probe/1")); err != nil {
		t.Errorf("with Host: %v", err)
	}
	if ua.Load() != "probe/1" {
		t.Errorf("User-Agent = %q, want the header's", ua.Load())
	}
}

func TestHTTPBodyRegex(t *testing.T) {
	var health atomic.Value
	health.Store("red")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"cluster_name":"es","status":"%s"}`, health.Load())
	}))
	defer srv.Close()
	c := httpCheckFor(t, "--http.es.address="+srv.URL, `--http.es.expected-body-regex="status":"(green|yellow)"`)
	err := attempt(c)
	if err == nil || err.Error() != `status 200, but the body does not match "status":"(green|yellow)"` {
		t.Errorf("red cluster: %v", err)
	}
	health.Store("green")
	if err := attempt(c); err != nil {
		t.Errorf("green cluster: %v", err)
	}
}

func TestHTTPRequestBody(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(r.Method + " " + string(b))
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusTemporaryRedirect) // 307 repeats method and body
		}
	}))
	defer srv.Close()
	t.Setenv("PP_TEST_QUERY", `{"query":"ping"}`)
	c := httpCheckFor(t, "--http.w.address="+srv.URL+"/old", "--http.w.method=POST", "--http.w.body=env:PP_TEST_QUERY")
	for range 2 {
		if err := attempt(c); err != nil {
			t.Fatal(err)
		}
		if got.Load() != `POST {"query":"ping"}` {
			t.Errorf("server received %q", got.Load())
		}
	}
}

func TestHTTPRedirects(t *testing.T) {
	var finalHits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/final", http.StatusFound) })
	mux.HandleFunc("/moved-broken", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/broken", http.StatusFound) })
	mux.HandleFunc("/final", func(w http.ResponseWriter, r *http.Request) { finalHits.Add(1) })
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/b", http.StatusFound) })
	mux.HandleFunc("/b", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/a", http.StatusFound) })
	mux.HandleFunc("/chain/", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscanf(r.URL.Path, "/chain/%d", &n)
		http.Redirect(w, r, fmt.Sprintf("/chain/%d", n+1), http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	if err := attempt(httpCheckFor(t, "--http.w.address="+srv.URL+"/moved", "--http.w.expected-status-codes=200,301-302")); err != nil || finalHits.Load() != 0 {
		t.Errorf("an expected redirect is the answer: err %v, followed %d times", err, finalHits.Load())
	}
	if err := attempt(httpCheckFor(t, "--http.w.address="+srv.URL+"/moved")); err != nil || finalHits.Load() != 1 {
		t.Errorf("an unexpected redirect is followed: err %v, final hit %d times", err, finalHits.Load())
	}
	if err := attempt(httpCheckFor(t, "--http.w.address="+srv.URL+"/moved-broken")); err == nil || err.Error() != "status 500, want 200" {
		t.Errorf("the final response is judged: %v", err)
	}
	start := time.Now()
	err := attempt(httpCheckFor(t, "--http.w.address="+srv.URL+"/a", "--http.w.timeout=10s"))
	if err == nil || !strings.Contains(err.Error(), "redirect loop: "+srv.URL+"/a was already requested") {
		t.Errorf("loop: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a redirect loop took %v", took)
	}
	err = attempt(httpCheckFor(t, "--http.w.address="+srv.URL+"/chain/0", "--http.w.timeout=10s"))
	if err == nil || err.Error() != "more than 10 redirects" {
		t.Errorf("endless chain: %v", err)
	}
}

// At most 10 hops are followed, as the README says and curl -L does: a chain
// of exactly 10 redirects that ends in 200 is ready, one of 11 is not.
func TestHTTPRedirectLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var left int
		fmt.Sscanf(r.URL.Path, "/hops/%d", &left)
		if left > 0 {
			http.Redirect(w, r, fmt.Sprintf("/hops/%d", left-1), http.StatusFound)
		}
	}))
	defer srv.Close()
	if err := attempt(httpCheckFor(t, "--http.w.address="+srv.URL+"/hops/10")); err != nil {
		t.Errorf("10 redirects: %v, want ready", err)
	}
	err := attempt(httpCheckFor(t, "--http.w.address="+srv.URL+"/hops/11"))
	if err == nil || err.Error() != "more than 10 redirects" {
		t.Errorf("11 redirects: %v, want more than 10 redirects", err)
	}
}

// endlessBody streams a body that never ends, starting with prefix.
func endlessBody(prefix string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, prefix)
		chunk := []byte(strings.Repeat("x", 32<<10))
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
}

func TestHTTPEndlessBody(t *testing.T) {
	srv := httptest.NewServer(endlessBody(`{"status":"green"}`))
	defer srv.Close()
	for _, args := range [][]string{
		{"--http.w.address=" + srv.URL},
		{"--http.w.address=" + srv.URL, `--http.w.expected-body-regex="status":"green"`},
	} {
		start := time.Now()
		if err := attempt(httpCheckFor(t, args...)); err != nil {
			t.Errorf("%q: %v", args, err)
		}
		t.Logf("%q: ready after %v", args, time.Since(start))
	}
	err := attempt(httpCheckFor(t, "--http.w.address="+srv.URL, "--http.w.expected-body-regex=never-there", "--http.w.timeout=10s"))
	if err == nil || !strings.Contains(err.Error(), "body does not match never-there") {
		t.Errorf("a regex that never matches must give up after 1 MiB: %v", err)
	}
}

// The whole process stays small while it reads endless bodies again and again.
func TestHTTPEndlessBodyMemory(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(endlessBody(""))
	defer srv.Close()
	o := runPortpatrol(t, nil, "--http.w.address="+srv.URL, "--http.w.expected-body-regex=never-there", "--default-interval=10ms", "--timeout=3s")
	o.mustExit(t, 1)
	t.Logf("peak RSS after 3 s of 1 MiB reads: %d KiB", o.maxRSS)
	if o.maxRSS > 64<<10 {
		t.Errorf("peak RSS %d KiB: reading endless bodies must stay bounded", o.maxRSS)
	}
}

// A server that accepts and never answers, in plain HTTP and during the TLS
// handshake: each attempt ends at its timeout.
func TestHTTPSilentServer(t *testing.T) {
	silent := silentServer(t)
	for _, scheme := range []string{"http", "https"} {
		start := time.Now()
		err := attempt(httpCheckFor(t, "--http.w.address="+scheme+"://"+silent, "--http.w.timeout=300ms"))
		took := time.Since(start)
		if err == nil || err.Error() != "no answer within 300ms" {
			t.Errorf("%s: %v", scheme, err)
		}
		if took > 3*time.Second {
			t.Errorf("%s: the attempt took %v", scheme, took)
		}
	}
}

// testPKI is a CA with a server certificate for 127.0.0.1 and localhost and
// a client certificate, written as PEM files.
type testPKI struct {
	caFile, clientCert, clientKey string
	pool                          *x509.CertPool
	server                        tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "portpatrol test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, tmpl *x509.Certificate) (certPEM, keyPEM []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, _ := x509.MarshalECPrivateKey(key)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	}
	srvCert, srvKey := issue(2, &x509.Certificate{
		Subject: pkix.Name{CommonName: "server"}, DNSNames: []string{"localhost", "api.internal"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	cliCert, cliKey := issue(3, &x509.Certificate{Subject: pkix.Name{CommonName: "client"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	p := testPKI{caFile: filepath.Join(dir, "ca.pem"), clientCert: filepath.Join(dir, "client.pem"), clientKey: filepath.Join(dir, "client-key.pem"), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	for name, data := range map[string][]byte{
		p.caFile:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		p.clientCert: cliCert, p.clientKey: cliKey,
	} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if p.server, err = tls.X509KeyPair(srvCert, srvKey); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHTTPSTrust(t *testing.T) {
	pki := newTestPKI(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the rejected handshakes are expected
	srv.StartTLS()
	defer srv.Close()

	err := attempt(httpCheckFor(t, "--http.w.address="+srv.URL))
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("untrusted CA: %v", err)
	}
	if err := attempt(httpCheckFor(t, "--http.w.address="+srv.URL, "--http.w.ca-file="+pki.caFile)); err != nil {
		t.Errorf("with ca-file: %v", err)
	}
	if err := attempt(httpCheckFor(t, "--http.w.address="+srv.URL, "--http.w.skip-tls-verify")); err != nil {
		t.Errorf("with skip-tls-verify: %v", err)
	}
	// Reaching the server by IP with a virtual host: the certificate is
	// checked against the virtual host's name.
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	if err := attempt(httpCheckFor(t, fmt.Sprintf("--http.w.address=https://127.0.0.1:%d", port), "--http.w.ca-file="+pki.caFile, "--http.w.header=Host=api.internal")); err != nil {
		t.Errorf("virtual host api.internal: %v", err)
	}
	err = attempt(httpCheckFor(t, fmt.Sprintf("--http.w.address=https://127.0.0.1:%d", port), "--http.w.ca-file="+pki.caFile, "--http.w.header=Host=other.internal"))
	if err == nil || !strings.Contains(err.Error(), "other.internal") {
		t.Errorf("virtual host the certificate does not name: %v", err)
	}
}

// A TLS reason reads once: Go nests x509's error in its own, and when the
// CA file holds a CA of the same name but another key (a CA made anew), its
// hint quotes x509 again. The attempts go through http and through the
// protocol types' exchange, which names the handshake itself.
func TestTLSReasonsReadOnce(t *testing.T) {
	pki, remade := newTestPKI(t), newTestPKI(t) // two CAs of the same name
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the rejected handshakes are expected
	srv.StartTLS()
	defer srv.Close()
	trusting := func(caFile string) *tls.Config {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		return &tls.Config{RootCAs: pool, ServerName: "localhost"}
	}
	addr := srv.Listener.Addr().String()
	shake := func(cfg *tls.Config) error {
		return exchange(context.Background(), "tcp", addr, 5*time.Second, cfg, func(net.Conn) error { return nil })
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"http, unknown CA", attempt(httpCheckFor(t, "--http.w.address="+srv.URL)),
			"tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{"http, a CA of the same name", attempt(httpCheckFor(t, "--http.w.address="+srv.URL, "--http.w.ca-file="+remade.caFile)),
			`tls: failed to verify certificate: x509: certificate signed by unknown authority (possibly because of "ECDSA verification failure" while trying to verify candidate authority certificate "portpatrol test CA")`},
		{"exchange, unknown CA", shake(&tls.Config{ServerName: "localhost"}),
			"TLS handshake: failed to verify certificate: x509: certificate signed by unknown authority"},
		{"exchange, a CA of the same name", shake(trusting(remade.caFile)),
			`TLS handshake: failed to verify certificate: x509: certificate signed by unknown authority (possibly because of "ECDSA verification failure" while trying to verify candidate authority certificate "portpatrol test CA")`},
	} {
		if tc.err == nil || tc.err.Error() != tc.want {
			t.Errorf("%s:\ngot  %v\nwant %s", tc.name, tc.err, tc.want)
		}
	}
}

// Go's transport names its own function when a server ends the connection
// with a TLS alert after the handshake, as a TLS 1.3 server does that wants
// a client certificate: the reason is the alert alone.
func TestHTTPReasonWithoutTransportInternals(t *testing.T) {
	c := httpCheckFor(t, "--http.w.address=https://127.0.0.1:1")
	alert := &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}
	err := c.describe(context.Background(), &url.Error{Op: "Get", URL: "https://127.0.0.1:1", Err: fmt.Errorf("readLoopPeekFailLocked: %w", alert)})
	if err == nil || err.Error() != "remote error: tls: certificate required" {
		t.Errorf("got %v, want remote error: tls: certificate required", err)
	}
}

func TestHTTPSMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.pool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the rejected handshakes are expected
	srv.StartTLS()
	defer srv.Close()

	if err := attempt(httpCheckFor(t, "--http.w.address="+srv.URL, "--http.w.ca-file="+pki.caFile)); err == nil {
		t.Error("no client certificate, yet ready")
	} else {
		t.Logf("without a client certificate: %v", err)
	}
	if err := attempt(httpCheckFor(t, "--http.w.address="+srv.URL, "--http.w.ca-file="+pki.caFile,
		"--http.w.cert-file="+pki.clientCert, "--http.w.key-file="+pki.clientKey)); err != nil {
		t.Errorf("with a client certificate: %v", err)
	}
}

// Header values are checked once they are resolved: surrounding white space
// (a Secret's trailing newline) is dropped, and a value HTTP cannot carry
// stops the start, naming the header but not its value.
func TestHTTPHeaderValues(t *testing.T) {
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header }))
	defer srv.Close()
	t.Setenv("PP_TOKEN", "Bearer tok\n")
	if err := attempt(httpCheckFor(t, "--http.w.address="+srv.URL, "--http.w.header=Authorization=env:PP_TOKEN")); err != nil {
		t.Fatal(err)
	}
	if h := <-got; h.Get("Authorization") != "Bearer tok" {
		t.Errorf("Authorization = %q, want the value without its newline", h.Get("Authorization"))
	}

	t.Setenv("PP_BAD", "a\r\nX-Injected: 1")
	for _, tc := range []struct{ header, want string }{
		{"X-Token=env:PP_BAD", "--http.w.header: the value of X-Token holds a control character"},
		{"X-Token=a\x00b", "--http.w.header: the value of X-Token holds a control character"},
		{"Host=env:PP_BAD", "--http.w.header: the value of Host holds a control character"},
		{"Host=bad host", "--http.w.header: the Host header is not a valid host or host:port"},
		{"Host=a/b", "--http.w.header: the Host header is not a valid host or host:port"},
	} {
		opts, err := parseArgs([]string{"--http.w.address=http://x", "--http.w.header=" + tc.header})
		if err != nil {
			t.Fatal(err)
		}
		_, errs := buildTarget(opts.targets[0])
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) {
			t.Errorf("%q: errors %v, want %q", tc.header, errs, tc.want)
		} else if strings.Contains(errs[0].Error(), "Injected") || strings.Contains(errs[0].Error(), "bad host") {
			t.Errorf("%q: the error quotes the value: %v", tc.header, errs[0])
		}
	}
}

func TestHTTPSFileErrors(t *testing.T) {
	pki := newTestPKI(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--http.w.ca-file=/nonexistent/ca.pem"}, "--http.w.ca-file: cannot read /nonexistent/ca.pem: no such file or directory"},
		{[]string{"--http.w.ca-file=" + notPEM}, "--http.w.ca-file: " + notPEM + " holds no PEM certificate"},
		{[]string{"--http.w.cert-file=" + pki.clientCert, "--http.w.key-file=/nonexistent/key.pem"}, "--http.w.key-file=/nonexistent/key.pem: no such file or directory"},
		{[]string{"--http.w.cert-file=" + pki.clientCert, "--http.w.key-file=" + pki.caFile}, "--http.w.cert-file=" + pki.clientCert},
	} {
		opts, err := parseArgs(append([]string{"--http.w.address=https://x"}, tc.args...))
		if err != nil {
			t.Fatal(err)
		}
		_, errs := buildTarget(opts.targets[0])
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) {
			t.Errorf("%q: errors %v, want %q", tc.args, errs, tc.want)
		}
	}
}

// Planted secrets must not appear in any output, at the most verbose level,
// whether attempts fail by status, redirect, connection, TLS or start-up
// error, and whether the secret was written or resolved from a reference.
func TestSecretsStaySecret(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://user:pw-SECRET-2@"+r.Host+"/loop", http.StatusFound)
	})
	mux.HandleFunc("/self-SECRET-8", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.String(), http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	pki := newTestPKI(t)
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tlsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server}}
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0)
	tlsSrv.StartTLS()
	defer tlsSrv.Close()

	urlFile := filepath.Join(t.TempDir(), "url")
	if err := os.WriteFile(urlFile, []byte("http://"+host+"/self-SECRET-8?tok=SECRET-9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"PP_HEADER=hdr-SECRET-3", "PP_URL=http://u:pw-SECRET-4@" + closedPort(t) + "/",
		"PP_TCP=resolved-SECRET-7.invalid:80"}

	o := runPortpatrol(t, env, "--log-level=debug", "--default-interval=20ms", "--timeout=1s",
		"--http.a.address=http://admin:pw-SECRET-1@"+host+"/",
		"--http.a.header=Authorization=env:PP_HEADER", "--http.a.header=X-Token=tok-SECRET-5",
		"--http.a.method=POST", "--http.a.body=body-SECRET-6",
		"--http.b.address=http://admin:pw-SECRET-1@"+host+"/loop",
		"--http.c.address=env:PP_URL",
		"--tcp.d.address=env:PP_TCP",
		"--http.e.address=file:"+urlFile,
		// The certificate does not name this virtual host, and TLS says so.
		"--http.f.address="+tlsSrv.URL, "--http.f.ca-file="+pki.caFile, "--http.f.header=Host=vhost-SECRET-10")
	o.mustExit(t, 1)
	o2 := runPortpatrol(t, env, "--log-format=json", "--http.a.address=http://admin:pw-SECRET-1@"+host+":99999/",
		"--http.b.address=http://x/", "--http.b.header=Bad Header=tok-SECRET-5", "--http.c.address=env:PP_HEADER",
		"--tcp.d.address=env:PP_HEADER")
	o2.mustExit(t, 2)
	all := o.stdout + o.stderr + o2.stdout + o2.stderr
	if strings.Contains(all, "SECRET") {
		t.Errorf("a secret leaked:\n%s", all)
	}
	for _, want := range []string{
		"admin:xxxxx@",                                  // a written address is shown, its password redacted
		"address=env:PP_URL",                            // a referenced one by its reference
		"address=file:" + urlFile,                       //
		"redirect loop: [hidden] was already requested", // reasons keep their sense without the value
		"cannot resolve [hidden]",
		"certificate is valid for",
	} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("output lacks %q:\n%s", want, o.stderr)
		}
	}
}

// A proxy that is down is named in the reason, without its credentials,
// rather than passing for the target refusing the connection.
func TestHTTPProxyDown(t *testing.T) {
	t.Parallel()
	proxy := closedPort(t)
	env := []string{"HTTP_PROXY=http://user:pw-SECRET@" + proxy, "http_proxy=http://user:pw-SECRET@" + proxy,
		"HTTPS_PROXY=" + proxy, "https_proxy=" + proxy, "NO_PROXY=", "no_proxy="}
	o := runPortpatrol(t, env, "--http.plain.address=http://backend.portpatrol.test/health",
		"--http.tls.address=https://backend.portpatrol.test/health", "--default-interval=50ms", "--timeout=500ms")
	o.mustExit(t, 1)
	want := `error="proxy http://` + proxy + `: connection refused"`
	if n := strings.Count(o.stderr, want); n < 4 { // a warning and the final report for each target
		t.Errorf("want %s for both targets:\n%s", want, o.stderr)
	}
	if strings.Contains(o.stderr, "SECRET") || strings.Contains(o.stderr, "user:") {
		t.Errorf("the proxy's credentials leaked:\n%s", o.stderr)
	}
}

// connectProxy is an HTTPS proxy: it answers CONNECT by tunnelling to addr,
// whatever host was asked for, and records each CONNECT's target and
// User-Agent; a host starting with "forbidden" gets 403.
func connectProxy(t *testing.T, addr string) (proxyURL string, seen func() []string) {
	t.Helper()
	var mu sync.Mutex
	var log []string
	proxy := tcpServer(t, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		mu.Lock()
		log = append(log, req.Method+" "+req.Host+" "+req.UserAgent())
		mu.Unlock()
		if req.Method != http.MethodConnect || strings.HasPrefix(req.Host, "forbidden") {
			io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
			return
		}
		up, err := net.Dial("tcp", addr)
		if err != nil {
			io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
			return
		}
		defer up.Close()
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		go io.Copy(up, c)
		io.Copy(c, up)
	})
	return "http://" + proxy, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(log)
	}
}

// An HTTPS target through a real CONNECT proxy: the CONNECT request carries
// portpatrol's User-Agent (or the one the target sets), not Go's.
func TestHTTPSThroughConnectProxy(t *testing.T) {
	t.Parallel()
	backend := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer backend.Close()
	_, port, _ := net.SplitHostPort(backend.Listener.Addr().String())
	proxy, seen := connectProxy(t, backend.Listener.Addr().String())
	env := []string{"HTTPS_PROXY=" + proxy, "https_proxy=" + proxy, "NO_PROXY=", "no_proxy="}

	// The name does not resolve: only the proxy can make it ready.
	target := "backend.portpatrol.test:" + port
	runPortpatrol(t, env, "--http.w.address=https://"+target+"/", "--http.w.skip-tls-verify", "--timeout=3s").mustExit(t, 0)
	runPortpatrol(t, env, "--http.w.address=https://"+target+"/", "--http.w.skip-tls-verify", "--timeout=3s",
		"--http.w.header=User-Agent=probe/1").mustExit(t, 0)
	want := []string{"CONNECT " + target + " portpatrol/dev", "CONNECT " + target + " probe/1"}
	if got := seen(); !slices.Equal(got, want) {
		t.Errorf("the proxy saw %q, want %q", got, want)
	}

	o := runPortpatrol(t, env, "--http.w.address=https://forbidden.portpatrol.test/", "--timeout=300ms")
	o.mustExit(t, 1)
	if want := `error="proxy ` + proxy + `: CONNECT answered 403 Forbidden"`; !strings.Contains(o.stderr, want) {
		t.Errorf("want %s:\n%s", want, o.stderr)
	}
}

// A secret in a query or keyword parameter (?sslpassword=, ?token=, a DSN's
// ?password=) is hidden wherever an address is shown: in every log line at
// the most verbose level, and in start-up errors.
func TestQuerySecretsStaySecret(t *testing.T) {
	t.Parallel()
	refused := closedPort(t)
	o := runPortpatrol(t, nil, "--log-level=debug", "--default-interval=50ms", "--timeout=1s",
		"--postgres.pg.address=postgres://app@"+refused+"/db?sslpassword=SECRET-1",
		"--postgres.pg2.address=postgres://app@"+refused+"/db?password=SECRET-2&sslmode=disable",
		"--mysql.my.address=mysql://app@"+refused+"/db?pwd=SECRET-3",
		"--mysql.dsn.address=app@tcp("+refused+")/db?password=SECRET-4&tls=false",
		"--mongodb.mg.address=mongodb://"+refused+"/?tlsCertificateKeyFilePassword=SECRET-5",
		"--http.web.address=http://"+refused+"/health?token=SECRET-6",
		"--amqp.mq.address=amqp://"+refused+"/?api_token=SECRET-7")
	o.mustExit(t, 1)
	bad := "127.0.0.1:99999"
	o2 := runPortpatrol(t, nil, "--log-level=debug",
		"--postgres.pg.address=postgres://app@"+bad+"/db?sslpassword=SECRET-1",
		"--mysql.my.address=mysql://app@"+bad+"/db?client_secret=SECRET-3",
		"--mysql.dsn.address=app@tcp("+bad+")/db?password=SECRET-4",
		"--mongodb.mg.address=mongodb://"+bad+"/?tlsCertificateKeyFilePassword=SECRET-5",
		"--http.web.address=http://"+bad+"/health?token=SECRET-6",
		"--amqp.mq.address=amqp://"+bad+"/?api_token=SECRET-7")
	o2.mustExit(t, 2)
	all := o.stdout + o.stderr + o2.stdout + o2.stderr
	if strings.Contains(all, "SECRET") {
		t.Errorf("a secret leaked:\n%s", all)
	}
	for _, want := range []string{"sslpassword=xxxxx", "password=xxxxx&sslmode=disable", "pwd=xxxxx", "password=xxxxx&tls=false",
		"tlsCertificateKeyFilePassword=xxxxx", "health?token=xxxxx", "api_token=xxxxx"} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("logs lack %q:\n%s", want, o.stderr)
		}
	}
	for _, want := range []string{"sslpassword=xxxxx", "client_secret=xxxxx", "password=xxxxx", "tlsCertificateKeyFilePassword=xxxxx", "token=xxxxx", "api_token=xxxxx"} {
		if !strings.Contains(o2.stderr, want) {
			t.Errorf("start-up errors lack %q:\n%s", want, o2.stderr)
		}
	}
}

// End to end, as a user met it: a password with an unencoded / or a bad %
// is named as the problem, and the password is never shown.
func TestHTTPBadUserinfoStartupError(t *testing.T) {
	t.Parallel()
	o := runPortpatrol(t, nil, "--log-level=debug",
		"--http.a.address=http://admin:Hunt/er@22@127.0.0.1:42851/ok",
		"--http.b.address=http://admin:Hunt/er@host/",
		"--http.c.address=http://admin:50%zzHunt@host/")
	o.mustExit(t, 2)
	for _, want := range []string{
		"--http.a.address=http://admin:xxxxx@127.0.0.1:42851/ok: not a valid URL: the user information is not valid; percent-encode special characters in the password (@ as %40, / as %2F",
		"--http.b.address=http://admin:xxxxx@host/: not a valid URL: the user information is not valid",
		"--http.c.address=http://admin:xxxxx@host/: not a valid URL: the user information is not valid",
	} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
		}
	}
	if strings.Contains(o.stdout+o.stderr, "Hunt") {
		t.Errorf("the password leaked:\n%s", o.stderr)
	}
}

// End to end: a boolean's value may follow as the next argument, and a
// boolean standing alone before another flag is still true.
func TestBooleanValueAsNextArgument(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the rejected handshakes are expected
	srv.StartTLS()
	defer srv.Close()
	open := tcpServer(t, func(net.Conn) {})

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--http.a.skip-tls-verify", "true"}, 0, "ready"},
		{[]string{"--http.a.skip-tls-verify", "TRUE"}, 0, "ready"},
		{[]string{"--http.a.skip-tls-verify", "false"}, 1, "certificate signed by unknown authority"},
		{[]string{"--http.a.skip-tls-verify", "--tcp.x.address=" + open}, 0, "target=x"},
	} {
		args := append([]string{"--timeout=3s", "--default-interval=50ms", "--http.a.address=" + srv.URL}, tc.args...)
		o := runPortpatrol(t, nil, args...)
		if o.code != tc.code || !strings.Contains(o.stderr, tc.want) {
			t.Errorf("%q: exit %d, want %d with %q:\n%s", tc.args, o.code, tc.code, tc.want, o.stderr)
		}
	}
}

// The user information of an http URL is sent as Authorization: Basic (Go's
// client does it for a URL with a user), also after a redirect on the same
// host, and an Authorization header given as a property wins over it.
// Neither value appears in the logs, also when attempts fail first.
func TestHTTPURLUserIsBasicAuth(t *testing.T) {
	t.Parallel()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:pw-SECRET-1"))
	var attempts atomic.Int32
	var mu sync.Mutex
	var seen []string
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		switch {
		case attempts.Add(1) == 1:
			w.WriteHeader(http.StatusServiceUnavailable) // one failed attempt is logged first
		case r.Header.Get("Authorization") != basic:
			w.WriteHeader(http.StatusUnauthorized)
		default:
			http.Redirect(w, r, "/next", http.StatusFound)
		}
	})
	mux.HandleFunc("/next", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Header.Get("Authorization") != basic {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	mux.HandleFunc("/bearer", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-SECRET-2" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	o := runPortpatrol(t, nil, "--log-level=debug", "--default-interval=50ms", "--timeout=10s",
		"--http.a.address=http://admin:pw-SECRET-1@"+host+"/",
		"--http.b.address=http://admin:pw-SECRET-1@"+host+"/bearer", "--http.b.header=Authorization=Bearer tok-SECRET-2")
	o.mustExit(t, 0)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(seen, "/ "+basic) || !slices.Contains(seen, "/next "+basic) {
		t.Errorf("requests seen %q, want / and /next with %q", seen, basic)
	}
	if !strings.Contains(o.stderr, "status 503, want 200") || !strings.Contains(o.stderr, "admin:xxxxx@") {
		t.Errorf("logs lack the failed attempt or the redacted address:\n%s", o.stderr)
	}
	encoded := strings.TrimPrefix(basic, "Basic ")
	if all := o.stdout + o.stderr; strings.Contains(all, "SECRET") || strings.Contains(all, encoded) {
		t.Errorf("a credential leaked:\n%s", all)
	}
}

// End to end with two real servers: a redirect within the first host keeps
// the headers that were set, one to another host (and port) gets none, and
// no hop gets a Referer, which would carry the URL's ?api_token=.
func TestHTTPRedirectToOtherHostDropsHeaders(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]http.Header{}
	record := func(r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen[r.URL.Path] = r.Header.Clone()
	}
	// other is another port of the same host, and sends on to another host:
	// localhost by name.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(r)
		if r.URL.Path == "/otherport" {
			_, port, _ := net.SplitHostPort(r.Host)
			http.Redirect(w, r, "http://localhost:"+port+"/landing", http.StatusFound)
		}
	}))
	defer other.Close()
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(r)
		switch r.URL.Path {
		case "/start":
			http.Redirect(w, r, "/xhost", http.StatusFound)
		case "/xhost":
			http.Redirect(w, r, other.URL+"/otherport", http.StatusFound)
		}
	}))
	defer first.Close()
	// secure sends a request on from https:// to plain http:// of the same host.
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(r)
		http.Redirect(w, r, first.URL+"/downgraded", http.StatusFound)
	}))
	defer secure.Close()

	o := runPortpatrol(t, nil, "--log-level=debug", "--timeout=10s",
		"--http.a.address="+first.URL+"/start?api_token=S3CRETzz", "--http.a.header=X-Api-Key=S3CRETzz",
		"--http.s.address="+secure.URL+"/secure", "--http.s.skip-tls-verify", "--http.s.header=X-Api-Key=S3CRETzz")
	o.mustExit(t, 0)
	mu.Lock()
	defer mu.Unlock()
	for _, tc := range []struct {
		path, key string
		want      bool
	}{
		{"/start", "X-Api-Key", true}, {"/xhost", "X-Api-Key", true}, {"/otherport", "X-Api-Key", true},
		{"/landing", "X-Api-Key", false}, {"/xhost", "Referer", false}, {"/otherport", "Referer", false},
		{"/landing", "Referer", false}, {"/landing", "User-Agent", true},
		{"/secure", "X-Api-Key", true}, {"/downgraded", "X-Api-Key", false},
	} {
		h, ok := seen[tc.path]
		if !ok {
			t.Fatalf("%s was never requested; seen %v", tc.path, seen)
		}
		if got := h.Get(tc.key) != ""; got != tc.want {
			t.Errorf("%s got %s %q, want it sent: %v", tc.path, tc.key, h.Get(tc.key), tc.want)
		}
	}
}

// An empty header value, literal or read through a reference, is a start-up
// error naming the flag and the header.
func TestHTTPEmptyHeaderValue(t *testing.T) {
	t.Parallel()
	o := runPortpatrol(t, []string{"PP_EMPTY="}, "--timeout=5s", "--http.c.address=http://127.0.0.1:1/",
		"--http.c.header=Authorization=", "--http.c.header=X-Key=env:PP_EMPTY")
	o.mustExit(t, 2)
	for _, want := range []string{
		"portpatrol: --http.c.header: the value of Authorization is empty",
		"portpatrol: --http.c.header: the value of X-Key is empty",
	} {
		if !hasLine(o, want) {
			t.Errorf("no line starting %q in\n%s", want, o.stderr)
		}
	}
}

// The URL's user and password follow a redirect to another port of the same
// host, as the header values do; Go's client alone would drop them there.
func TestHTTPURLUserFollowsRedirectToAnotherPort(t *testing.T) {
	t.Parallel()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:pw-SECRET-3"))
	got := make(chan string, 10)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
		if r.Header.Get("Authorization") != basic {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer other.Close()
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/b", http.StatusFound)
	}))
	defer first.Close()
	o := runPortpatrol(t, nil, "--timeout=5s", "--http.u.max-attempts=1",
		"--http.u.address=http://admin:pw-SECRET-3@"+strings.TrimPrefix(first.URL, "http://")+"/u")
	o.mustExit(t, 0)
	if auth := <-got; auth != basic {
		t.Errorf("the other port got Authorization %q, want %q", auth, basic)
	}
}

// A reply line Go quotes whole in its error never reaches the logs: a
// redirect's Location may be a signed URL.
func TestHTTPUnparsableReplyLinesStayHidden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ reply, reason string }{
		{"HTTP/1.1 302 Found\r\nLocation: https://bucket.test/obj%zz?X-Amz-Signature=LEAK1\r\nContent-Length: 0\r\n\r\n",
			"the server redirected to a Location that is not a valid URL"},
		{"HTTP/1.1 302 Found\r\nLocation: http://admin:LEAK2@other.test/health%\r\nContent-Length: 0\r\n\r\n",
			"the server redirected to a Location that is not a valid URL"},
		{"HTTP/1.1 200 OK\r\nX-Token: LEAK3\x01\r\nContent-Length: 0\r\n\r\n",
			"the server sent a malformed header line"},
		// An echo server (not HTTP) sends back the request line, query and all.
		{"GET /?token=LEAK4 HTTP/1.1\r\nHost: a\r\n\r\n", "the server's reply is not HTTP: its status line is malformed"},
		{"LEAK5\r\n\r\n", "the server's reply is not HTTP: its status line is malformed"},
		{"XTTP/1.1-LEAK6 200 OK\r\n\r\n", "the server's reply is not HTTP: its status line is malformed"},
	} {
		addr := tcpServer(t, func(c net.Conn) {
			readRequest(c)
			io.WriteString(c, tc.reply)
		})
		o := runPortpatrol(t, nil, "--log-level=debug", "--log-format=json", "--timeout=5s", "--http.a.max-attempts=1", "--http.a.address=http://"+addr+"/")
		o.mustExit(t, 1)
		if !strings.Contains(o.stderr, tc.reason) || strings.Contains(o.stderr, "LEAK") {
			t.Errorf("reply %q: want the reason %q and no LEAK in\n%s", tc.reply, tc.reason, o.stderr)
		}
	}
}

// The address is logged as written: a non-ASCII host and path in Unicode,
// not percent-escaped, and the password still hidden. Through a unix
// socket, so that no name is looked up.
func TestHTTPAddressLoggedAsWritten(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "none.sock")
	o := runPortpatrol(t, nil, "--http.a.address=http://user:pw-SECRET@bücher.test/päth?q=ü&token=tok-SECRET",
		"--http.a.unix-socket="+sock, "--timeout=300ms")
	o.mustExit(t, 1)
	want := `address="http://user:xxxxx@bücher.test/päth?q=ü&token=xxxxx via unix://` + sock + `"`
	if !strings.Contains(o.stderr, want) {
		t.Errorf("stderr lacks %s:\n%s", want, o.stderr)
	}
	if strings.Contains(o.stderr, "SECRET") {
		t.Errorf("a secret leaked:\n%s", o.stderr)
	}
}
