package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mysqlPKI is a test CA, a server certificate for 127.0.0.1 and db.test
// (not localhost, so that a name can fail to verify), and a client
// certificate, as PEM files the unprivileged server can read.
type mysqlPKI struct{ ca, cert, key, clientCert, clientKey string }

func newMySQLPKI(t *testing.T, dir string) mysqlPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "portpatrol mysql test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := mysqlPKI{ca: filepath.Join(dir, "ca.pem"), cert: filepath.Join(dir, "server.pem"), key: filepath.Join(dir, "server-key.pem"),
		clientCert: filepath.Join(dir, "client.pem"), clientKey: filepath.Join(dir, "client-key.pem")}
	write := func(name string, block *pem.Block) {
		if err := os.WriteFile(name, pem.EncodeToMemory(block), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(p.ca, &pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	for i, c := range []struct {
		cert, key string
		tmpl      *x509.Certificate
	}{
		{p.cert, p.key, &x509.Certificate{Subject: pkix.Name{CommonName: "db.test"}, DNSNames: []string{"db.test"},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}},
		{p.clientCert, p.clientKey, &x509.Certificate{Subject: pkix.Name{CommonName: "client"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}},
	} {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		c.tmpl.SerialNumber = big.NewInt(int64(i + 2))
		c.tmpl.NotBefore, c.tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		der, err := x509.CreateCertificate(rand.Reader, c.tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
		write(c.cert, &pem.Block{Type: "CERTIFICATE", Bytes: der})
		write(c.key, &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	}
	return p
}

// The app's client is the judge: each connection string is run by the
// mariadb client (its options translated from the DSN or URL) and by
// portpatrol against the same MariaDB with TLS, and the verdicts agree.
func TestMySQLTLSAgainstClient(t *testing.T) {
	client := requireProgram(t, "mariadb", "mysql")
	certs := nobodyDir(t)
	pki := newMySQLPKI(t, certs)
	db := startMariaDB(t, "", "127.0.0.1", "--ssl-ca="+pki.ca, "--ssl-cert="+pki.cert, "--ssl-key="+pki.key)
	port := strconv.Itoa(db.port)
	addr := "127.0.0.1:" + port
	passwords := map[string]string{"app": "Ap-PLANTED-1", "sslonly": "Ss-PLANTED-2", "expired": "Ex-PLANTED-3", "x509": "X5-PLANTED-4"}
	var accounts string
	for user, pw := range passwords {
		for _, host := range []string{"'%'", "localhost"} {
			accounts += "CREATE USER " + user + "@" + host + " IDENTIFIED BY '" + pw + "'; GRANT ALL ON app.* TO " + user + "@" + host + "; GRANT ALL ON gone.* TO " + user + "@" + host + "; "
		}
	}
	db.sql(t, accounts+"CREATE DATABASE app; ALTER USER sslonly@'%' REQUIRE SSL; ALTER USER sslonly@localhost REQUIRE SSL; "+
		"ALTER USER x509@'%' REQUIRE X509; ALTER USER x509@localhost REQUIRE X509; "+
		"ALTER USER expired@'%' PASSWORD EXPIRE; ALTER USER expired@localhost PASSWORD EXPIRE")
	const wrong = "Wr-PLANTED-5"
	dsn := func(user, pw, params string) string { return user + ":" + pw + "@tcp(" + addr + ")/app" + params }
	url := func(user, pw, host, params string) string {
		return "mysql://" + user + ":" + pw + "@" + host + ":" + port + "/app" + params
	}
	type row struct {
		address string
		flags   []string // portpatrol's properties besides the address
		ready   bool
		reason  string // in portpatrol's reason when not ready
	}
	rows := []row{
		{address: dsn("app", passwords["app"], ""), ready: true},
		{address: dsn("app", passwords["app"], "?tls=false"), ready: true},
		{address: dsn("app", passwords["app"], "?tls=true"), flags: []string{"ca-file=" + pki.ca}, ready: true},
		{address: dsn("app", passwords["app"], "?tls=true"), reason: "certificate signed by unknown authority"},
		{address: dsn("app", passwords["app"], "?tls=skip-verify"), ready: true},
		{address: dsn("app", passwords["app"], "?tls=preferred&parseTime=true"), ready: true},
		{address: dsn("app", passwords["app"], "?tls=1"), flags: []string{"ca-file=" + pki.ca}, ready: true},
		{address: dsn("app", passwords["app"], "?tls=0"), ready: true},
		{address: url("app", passwords["app"], "127.0.0.1", "?ssl-mode=preferred"), ready: true},
		{address: dsn("app", passwords["app"], ""), flags: []string{"ca-file=" + pki.ca}, ready: true},
		{address: url("app", passwords["app"], "127.0.0.1", ""), ready: true},
		{address: url("app", passwords["app"], "127.0.0.1", "?ssl-mode=DISABLED"), ready: true},
		{address: url("app", passwords["app"], "127.0.0.1", "?ssl-mode=required"), ready: true},
		{address: url("app", passwords["app"], "127.0.0.1", "?ssl-mode=VERIFY_IDENTITY&ssl-ca="+pki.ca), ready: true},
		{address: url("app", passwords["app"], "localhost", "?ssl-mode=VERIFY_IDENTITY&ssl-ca="+pki.ca), reason: "certificate is valid for db.test, not localhost"},
		{address: url("app", passwords["app"], "127.0.0.1", "?ssl-mode=VERIFY_IDENTITY"), reason: "certificate signed by unknown authority"},
		{address: dsn("app", wrong, ""), reason: "error 1045: Access denied for user 'app'@'localhost' (using password: YES)"},
		{address: dsn("app", wrong, "?tls=skip-verify"), reason: "error 1045: Access denied"},
		{address: dsn("sslonly", passwords["sslonly"], ""), reason: "error 1045: Access denied for user 'sslonly'@'localhost' (using password: YES), but the same login over TLS is accepted"},
		{address: dsn("sslonly", passwords["sslonly"], "?tls=skip-verify"), ready: true},
		{address: url("sslonly", passwords["sslonly"], "127.0.0.1", "?ssl-mode=DISABLED"), reason: "the server requires TLS for it"},
		{address: url("sslonly", passwords["sslonly"], "127.0.0.1", ""), ready: true},
		{address: dsn("expired", passwords["expired"], "?tls=skip-verify"), reason: "the password has expired (error 1820"},
		{address: url("expired", passwords["expired"], "127.0.0.1", ""), reason: "the password has expired"},
		{address: dsn("x509", passwords["x509"], "?tls=skip-verify"), reason: "error 1045"},
		{address: dsn("x509", passwords["x509"], "?tls=true"), flags: []string{"ca-file=" + pki.ca, "cert-file=" + pki.clientCert, "key-file=" + pki.clientKey},
			ready: true},
		{address: url("x509", passwords["x509"], "127.0.0.1", "?ssl-mode=VERIFY_IDENTITY&ssl-ca="+pki.ca+"&ssl-cert="+pki.clientCert+"&ssl-key="+pki.clientKey),
			ready: true},
	}
	// The same strings once the server requires TLS of everyone: MariaDB
	// answers the clear login with a plain 1045.
	secure := []row{
		{address: dsn("app", passwords["app"], ""), reason: "the server requires TLS for it"},
		{address: dsn("app", passwords["app"], "?tls=skip-verify"), ready: true},
		{address: url("app", passwords["app"], "127.0.0.1", ""), ready: true},
		{address: url("app", passwords["app"], "127.0.0.1", "?ssl-mode=DISABLED"), reason: "the server requires TLS for it"},
		{address: dsn("app", wrong, ""), reason: "error 1045"},
	}
	run := func(rows []row) {
		for _, r := range rows {
			clientArgs, pw := mariadbArgs(t, r.address, r.flags, pki.ca)
			cmd := exec.Command(client, append(append([]string{"--no-defaults", "-D", "app", "-N"}, clientArgs...), "-e", "SELECT 1")...)
			cmd.Env = append(os.Environ(), "MYSQL_PWD="+pw)
			out, err := cmd.CombinedOutput()
			clientReady := err == nil
			args := []string{"--mysql.db.address=" + r.address, "--mysql.db.timeout=10s", "--default-max-attempts=1", "--timeout=20s"}
			for _, f := range r.flags {
				args = append(args, "--mysql.db."+f)
			}
			o := runPortpatrol(t, nil, args...)
			shown := redactURL(r.address)
			if clientReady != r.ready {
				out = []byte(strings.ReplaceAll(string(out), pw, "xxxxx"))
				t.Errorf("%s %v: the mariadb client's verdict is %v, want %v:\n%s", shown, clientArgs, clientReady, r.ready, out)
			}
			if ready := o.code == 0; ready != clientReady {
				t.Errorf("%s %v: portpatrol's verdict (exit %d) is %v, the client's %v:\nclient: %s\nportpatrol: %s", shown, r.flags, o.code, ready, clientReady, out, o.stderr)
			} else if !ready && o.code != 1 {
				t.Errorf("%s: exit %d, want 1:\n%s", shown, o.code, o.stderr)
			} else if !strings.Contains(o.stderr, r.reason) {
				t.Errorf("%s %v: the reason lacks %q:\n%s", shown, r.flags, r.reason, o.stderr)
			}
			for _, secret := range append([]string{wrong}, mapValues(passwords)...) {
				if strings.Contains(o.stdout+o.stderr, secret) {
					t.Errorf("%s: a password is in the output:\n%s", shown, o.stderr)
				}
			}
		}
	}
	run(rows)
	db.sql(t, "SET GLOBAL require_secure_transport = ON")
	run(secure)
	db.sql(t, "SET GLOBAL require_secure_transport = OFF")
	// Without the sandbox, the server refuses the login itself (1862).
	db.sql(t, "SET GLOBAL disconnect_on_expired_password = ON")
	run([]row{{address: dsn("expired", passwords["expired"], ""), reason: "the password has expired (error 1862"}})
	db.sql(t, "SET GLOBAL disconnect_on_expired_password = OFF")

	// Without a client to compare: VERIFY_CA checks the chain, not the
	// name; server-name names what to verify.
	for _, tc := range []struct {
		args   []string
		reason string
	}{
		{[]string{"--mysql.db.address=" + url("app", passwords["app"], "localhost", "?ssl-mode=VERIFY_CA&ssl-ca="+pki.ca)}, ""},
		{[]string{"--mysql.db.address=" + url("app", passwords["app"], "localhost", "?ssl-mode=VERIFY_CA")}, "certificate signed by unknown authority"},
		{[]string{"--mysql.db.address=" + url("app", passwords["app"], "localhost", ""), "--mysql.db.ca-file=" + pki.ca, "--mysql.db.server-name=db.test"}, ""},
		{[]string{"--mysql.db.address=" + dsn("app", passwords["app"], "?tls=true"), "--mysql.db.ca-file=" + pki.ca, "--mysql.db.server-name=other.test"}, "not other.test"},
		{[]string{"--mysql.db.address=" + dsn("app", passwords["app"], "?tls=true"), "--mysql.db.skip-tls-verify"}, ""},
	} {
		o := runPortpatrol(t, nil, append(tc.args, "--mysql.db.timeout=10s", "--default-max-attempts=1", "--timeout=20s")...)
		if tc.reason == "" {
			if o.code != 0 {
				t.Errorf("%s: exit %d, want 0:\n%s", redactURL(tc.args[0]), o.code, o.stderr)
			}
		} else if o.code != 1 || !strings.Contains(o.stderr, tc.reason) {
			t.Errorf("%s: exit %d, want 1 with %q:\n%s", redactURL(tc.args[0]), o.code, tc.reason, o.stderr)
		}
	}

	// A refusal is not an absence: inverted, a target whose credentials
	// are refused keeps waiting; a missing database is gone.
	for _, tc := range []struct{ address, seen string }{
		{dsn("app", wrong, ""), "error 1045"},
		{dsn("sslonly", passwords["sslonly"], ""), "the server requires TLS for it"},
		{dsn("expired", passwords["expired"], ""), "the password has expired"},
		{dsn("app", passwords["app"], "?tls=true"), "certificate signed by unknown authority"},
		{dsn("app", passwords["app"], "?tls=true") + "&x=1", "certificate signed by unknown authority"},
		{url("app", passwords["app"], "localhost", "?ssl-mode=VERIFY_IDENTITY&ssl-ca="+pki.ca), "certificate is valid for db.test, not localhost"},
		{"app:" + passwords["app"] + "@tcp(" + addr + ")/gone", ""},
	} {
		o := runPortpatrol(t, nil, "--mysql.db.address="+tc.address, "--mysql.db.invert", "--mysql.db.timeout=10s", "--default-interval=100ms", "--default-max-attempts=2", "--timeout=30s")
		if tc.seen == "" {
			if o.code != 0 {
				t.Errorf("%s inverted: exit %d, want 0 (gone):\n%s", redactURL(tc.address), o.code, o.stderr)
			}
		} else if o.code != 1 || !strings.Contains(o.stderr, tc.seen) {
			t.Errorf("%s inverted: exit %d, want 1, still waiting with %q:\n%s", redactURL(tc.address), o.code, tc.seen, o.stderr)
		}
	}
}

func mapValues(m map[string]string) []string {
	var vs []string
	for _, v := range m {
		vs = append(vs, v)
	}
	return vs
}

func TestMySQLTLSStartupErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--mysql.db.address=u:PLANTED@tcp(db)/app?tls=custom"}, "--mysql.db.address=u:xxxxx@tcp(db)/app?tls=custom: tls=custom: want true, false, skip-verify or preferred"},
		{[]string{"--mysql.db.address=app PLANTED@tcp(127.0.0.1:13306)/shop?tls=x"}, "--mysql.db.address=xxxxx@tcp(127.0.0.1:13306)/shop?tls=x: tls=x: want"},
		{[]string{"--mysql.db.address=app:PLANTED://x@tcp(db)/app?tls=custom"}, "--mysql.db.address=app:xxxxx@tcp(db)/app?tls=custom: tls=custom: want"},
		{[]string{"--mysql.db.address=mysql://u:PLANTED@db/app?ssl-mode=verify"}, "ssl-mode=verify: want DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY"},
		{[]string{"--mysql.db.address=u:PLANTED@tcp(db)/app?tls=false", "--mysql.db.ca-file=/etc/hostname"}, "TLS properties are set but the address turns TLS off (tls=false)"},
		{[]string{"--mysql.db.address=mysql://u:PLANTED@db/app?ssl-mode=DISABLED", "--mysql.db.server-name=db.test"}, "turns TLS off (ssl-mode=DISABLED)"},
		{[]string{"--mysql.db.address=mysql://u:PLANTED@db/app?ssl-mode=REQUIRED&ssl-cert=/etc/hostname"}, "ssl-cert and ssl-key go together"},
		{[]string{"--mysql.db.address=db", "--mysql.db.cert-file=/etc/hostname"}, "--mysql.db.cert-file and --mysql.db.key-file go together"},
		{[]string{"--mysql.db.address=u:PLANTED@tcp(db)/?tls=true", "--mysql.db.ca-file=/nonexistent/ca.pem"}, "--mysql.db.ca-file: cannot read /nonexistent/ca.pem"},
		{[]string{"--mysql.db.address=db", "--mysql.db.query="}, `--mysql.db.query="": must not be empty`},
		{[]string{"--mysql.db.address=db", "--mysql.db.query=file:/nonexistent/q.sql"}, "--mysql.db.query"},
		{[]string{"--mysql.db.address=db", "--mysql.db.login=maybe"}, "--mysql.db.login=maybe"},
	} {
		o := runPortpatrol(t, nil, tc.args...)
		o.mustExit(t, 2)
		if !strings.Contains(o.stderr, tc.want) {
			t.Errorf("%v: stderr lacks %q:\n%s", tc.args, tc.want, o.stderr)
		}
		if strings.Contains(o.stderr, "PLANTED") {
			t.Errorf("%v: the password is in stderr:\n%s", tc.args, o.stderr)
		}
	}
}

// mariadbArgs translates a DSN or URL and portpatrol's TLS properties into
// the mariadb client's options, as someone moving the app's string to the
// client would, and returns the password apart (for MYSQL_PWD).
//
// The mariadb client (10.11) has no "TLS required, not verified": --ssl
// falls back to clear text when the server offers no TLS, which
// tls=skip-verify and ssl-mode=REQUIRED refuse. What refuses clear text is
// --ssl-verify-server-cert, which also verifies; so those modes translate
// to it with ca (the test's CA, "" for none), and the verdicts are the
// same only where the server's certificate verifies for the host (the
// rows' 127.0.0.1) or the server offers no TLS.
func mariadbArgs(t *testing.T, address string, flags []string, ca string) (args []string, password string) {
	t.Helper()
	required := []string{"--ssl-verify-server-cert"}
	if ca != "" {
		required = append(required, "--ssl-ca="+ca)
	}
	var user, hostport string
	var tlsArgs []string
	props := map[string]string{}
	for _, f := range flags {
		k, v, _ := strings.Cut(f, "=")
		props[k] = v
	}
	if strings.HasPrefix(address, "mysql://") {
		u, err := neturl.Parse(address)
		if err != nil {
			t.Fatal(err)
		}
		user, hostport = u.User.Username(), u.Host
		password, _ = u.User.Password()
		q := u.Query()
		switch mode := strings.ToUpper(q.Get("ssl-mode")); mode {
		case "": // the client's default: TLS when the server offers it
		case "DISABLED":
			tlsArgs = append(tlsArgs, "--skip-ssl")
		case "PREFERRED":
			tlsArgs = append(tlsArgs, "--ssl")
		case "REQUIRED":
			tlsArgs = append(tlsArgs, required...)
		case "VERIFY_IDENTITY":
			tlsArgs = append(tlsArgs, "--ssl-verify-server-cert")
		default:
			t.Fatalf("the mariadb client has no equivalent of ssl-mode=%s", mode)
		}
		for _, o := range []string{"ssl-ca", "ssl-cert", "ssl-key"} {
			if v := q.Get(o); v != "" {
				tlsArgs = append(tlsArgs, "--"+o+"="+v)
			}
		}
	} else { // user:password@tcp(host:port)/db?params
		at := strings.LastIndex(address, "@")
		user, password, _ = strings.Cut(address[:at], ":")
		hostport, _, _ = strings.Cut(strings.TrimPrefix(address[at+1:], "tcp("), ")")
		_, params, _ := strings.Cut(address[at:], "?")
		q, _ := neturl.ParseQuery(params)
		switch v := q.Get("tls"); {
		case v == "true", v == "1", v == "" && props["ca-file"] != "":
			tlsArgs = append(tlsArgs, "--ssl-verify-server-cert")
		case v == "skip-verify":
			tlsArgs = append(tlsArgs, required...)
		case v == "preferred":
			tlsArgs = append(tlsArgs, "--ssl")
		default:
			tlsArgs = append(tlsArgs, "--skip-ssl")
		}
	}
	for prop, opt := range map[string]string{"ca-file": "--ssl-ca", "cert-file": "--ssl-cert", "key-file": "--ssl-key"} {
		if v := props[prop]; v != "" {
			tlsArgs = append(tlsArgs, opt+"="+v)
		}
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"--protocol=TCP", "-h", host, "-P", port, "-u", user}, tlsArgs...), password
}

// caching_sha2_password's full path over TLS sends the password itself,
// inside TLS, where without TLS it asks for the server's RSA key: a fake
// MySQL 8 that offers TLS (Debian packages no MySQL 8 server).
func TestMySQLSHA2FullAuthOverTLS(t *testing.T) {
	t.Parallel()
	pki := newMySQLPKI(t, t.TempDir())
	pair, err := tls.LoadX509KeyPair(pki.cert, pki.key)
	if err != nil {
		t.Fatal(err)
	}
	const password = "Tl-PLANTED-1"
	addr, got := fakeMySQL(t, mysqlTLSServer(pair, password))
	c := mysqlCheck{network: "tcp", address: addr, user: "app", password: password, login: true,
		tls: &tls.Config{InsecureSkipVerify: true}, tlsAsked: "tls=skip-verify", timeout: 5 * time.Second}
	if err := c.check(context.Background()); err != nil {
		t.Errorf("not ready: %v", err)
	}
	if seen := string(<-got); seen != "ok" {
		t.Errorf("the server saw: %s", seen)
	}
	// The fake, checked with MariaDB's Connector/C over TLS.
	admin := requireProgram(t, "mariadb-admin", "mysqladmin")
	addr, got = fakeMySQL(t, mysqlTLSServer(pair, password))
	host, port, _ := net.SplitHostPort(addr)
	o := runCommand(t, exec.Command(admin, "--no-defaults", "--connect-timeout=5", "--ssl", "-h", host, "-P", port, "-u", "app", "-p"+password, "ping"))
	if seen := string(<-got); o.code != 0 || seen != "ok" {
		t.Errorf("mariadb-admin --ssl: exit %d, the fake saw %q\n%s%s", o.code, seen, o.stdout, o.stderr)
	}
}

// mysqlTLSServer is a MySQL 8 that offers TLS, asks for the password
// itself (caching_sha2_password's full path), and answers one round trip
// (DO 1, or COM_PING from mariadb-admin) before COM_QUIT.
func mysqlTLSServer(pair tls.Certificate, password string) func(c net.Conn) []byte {
	return func(c net.Conn) []byte {
		hs := mysql8Handshake()
		payload := hs[4:]
		capabilities := 1 + bytes.IndexByte(payload[1:], 0) + 1 + 4 + 8 + 1 // after version, thread id, scramble, filler
		payload[capabilities+1] |= clientSSL >> 8
		c.Write(hs)
		seq, p, err := readMySQLPacket(c)
		if err != nil || seq != 1 || len(p) != 32 || binary.LittleEndian.Uint32(p)&clientSSL == 0 {
			return []byte(fmt.Sprintf("no SSLRequest: %d %q %v", seq, p, err))
		}
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{pair}})
		if err := tc.Handshake(); err != nil {
			return []byte("handshake: " + err.Error())
		}
		if seq, p, err = readMySQLPacket(tc); err != nil || seq != 2 || binary.LittleEndian.Uint32(p)&clientSSL == 0 {
			return []byte(fmt.Sprintf("no login after TLS: %d %v", seq, err))
		}
		tc.Write(mysqlPacket(3, []byte{mysqlAuthMore, performFullAuth}))
		if seq, p, err = readMySQLPacket(tc); err != nil || seq != 4 || string(p) != password+"\x00" {
			return []byte(fmt.Sprintf("not the password over TLS: %d %v", seq, err))
		}
		tc.Write(mysqlPacket(5, []byte{0, 0, 0, 2, 0, 0, 0}))
		if _, p, err = readMySQLPacket(tc); err != nil || string(p) != "\x03DO 1" && string(p) != "\x0e" {
			return []byte(fmt.Sprintf("no DO 1 or COM_PING: %q %v", p, err))
		}
		tc.Write(mysqlPacket(1, []byte{0, 0, 0, 2, 0, 0, 0}))
		if _, p, err = readMySQLPacket(tc); err != nil || !bytes.Equal(p, []byte{mysqlComQuit}) {
			return []byte(fmt.Sprintf("no COM_QUIT: %q %v", p, err))
		}
		return []byte("ok")
	}
}
