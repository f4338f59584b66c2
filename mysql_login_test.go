package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The fakes of a login with a password check what the client sends the way
// a server does: from the hash it stores, not by computing the client's
// answer again.

// mysqlScramble is the scramble of mysqlHandshakePacket: both parts of
// auth-plugin-data.
var mysqlScramble = []byte("E;7B%3nS4HO4T+v5D4w>")

// mysql8Handshake is the captured handshake naming caching_sha2_password,
// MySQL 8's default method (the name has the same length).
func mysql8Handshake() []byte {
	return bytes.Replace(mysqlHandshakePacket(), []byte("mysql_native_password"), []byte("caching_sha2_password"), 1)
}

// mysqlLoginFields takes a HandshakeResponse41 apart.
func mysqlLoginFields(p []byte) (user string, auth []byte, database, method string) {
	flags := binary.LittleEndian.Uint32(p)
	rest := p[32:]
	u, rest, _ := bytes.Cut(rest, []byte{0})
	auth, rest = rest[1:1+rest[0]], rest[1+rest[0]:]
	if flags&clientConnectWithDB != 0 {
		var db []byte
		db, rest, _ = bytes.Cut(rest, []byte{0})
		database = string(db)
	}
	m, _, _ := bytes.Cut(rest, []byte{0})
	return string(u), auth, database, string(m)
}

func xor(a, b []byte) []byte {
	out := make([]byte, len(a))
	for i := range a {
		out[i] = a[i] ^ b[i%len(b)]
	}
	return out
}

// mysqlLoginServer serves one login for password: the handshake (MariaDB's,
// or with caching_sha2_password), then a check of the answer. full makes
// caching_sha2_password ask for the password itself, which a client
// without TLS sends encrypted with the RSA key it asks for. It sends back
// what it saw on got.
func mysqlLoginServer(t *testing.T, password string, sha2, full bool, key *rsa.PrivateKey) func(c net.Conn) []byte {
	return func(c net.Conn) []byte {
		hs := mysqlHandshakePacket()
		if sha2 {
			hs = mysql8Handshake()
		}
		c.Write(hs)
		_, p, err := readMySQLPacket(c)
		if err != nil {
			return nil
		}
		user, auth, database, method := mysqlLoginFields(p)
		seen := []byte("user=" + user + " db=" + database + " method=" + method)
		deny := func(seq byte) []byte {
			c.Write(mysqlErrPacket(seq, 1045, "#28000Access denied for user '"+user+"'@'localhost' (using password: YES)"))
			return append(seen, " denied"...)
		}
		ok := func(seq byte) []byte {
			c.Write(mysqlPacket(seq, []byte{0, 0, 0, 2, 0, 0, 0}))
			for {
				_, q, err := readMySQLPacket(c)
				if err == nil && bytes.Equal(q, []byte{0x0e}) { // COM_PING, from mariadb-admin
					c.Write(mysqlPacket(1, []byte{0, 0, 0, 2, 0, 0, 0}))
					continue
				}
				if err != nil || !bytes.Equal(q, []byte{mysqlComQuit}) {
					t.Errorf("after OK: %q %v, want COM_QUIT", q, err)
				}
				return append(seen, " ok"...)
			}
		}
		if !sha2 {
			// Stored: SHA1(SHA1(password)); the answer XOR SHA1(scramble +
			// stored) must hash to it.
			h1 := sha1.Sum([]byte(password))
			stored := sha1.Sum(h1[:])
			mask := sha1.Sum(append(bytes.Clone(mysqlScramble), stored[:]...))
			if got := sha1.Sum(xor(auth, mask[:])); len(auth) != 20 || got != stored {
				return deny(2)
			}
			return ok(2)
		}
		if !full {
			// Stored: SHA256(SHA256(password)); the answer XOR
			// SHA256(stored + scramble) is SHA256(password).
			h1 := sha256.Sum256([]byte(password))
			stored := sha256.Sum256(h1[:])
			mask := sha256.Sum256(append(stored[:], mysqlScramble...))
			if got := sha256.Sum256(xor(auth, mask[:])); len(auth) != 32 || got != stored {
				return deny(2)
			}
			c.Write(mysqlPacket(2, []byte{mysqlAuthMore, fastAuthSuccess}))
			return ok(3)
		}
		c.Write(mysqlPacket(2, []byte{mysqlAuthMore, performFullAuth}))
		if seq, q, err := readMySQLPacket(c); err != nil || seq != 3 || !bytes.Equal(q, []byte{requestPublicKey}) {
			t.Errorf("after perform_full_authentication: %d %q %v, want the public key request", seq, q, err)
			return seen
		}
		der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
		c.Write(mysqlPacket(4, append([]byte{mysqlAuthMore}, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)))
		seq, q, err := readMySQLPacket(c)
		if err != nil || seq != 5 {
			t.Errorf("the encrypted password: %d %v", seq, err)
			return seen
		}
		plain, err := rsa.DecryptOAEP(sha1.New(), nil, key, q, nil)
		if err != nil || string(xor(plain, mysqlScramble)) != password+"\x00" {
			return deny(6)
		}
		return ok(6)
	}
}

func TestMySQLLoginAgainstFakes(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const password = "My-S3cret/pw"
	for _, tc := range []struct {
		name       string
		sha2, full bool
		password   string
		reason     string
	}{
		{"mysql_native_password", false, false, password, ""},
		{"mysql_native_password, wrong password", false, false, "wrong", "error 1045: Access denied for user 'app'@'localhost' (using password: YES)"},
		{"caching_sha2_password, fast path", true, false, password, ""},
		{"caching_sha2_password, fast path, wrong password", true, false, "wrong", "error 1045"},
		{"caching_sha2_password, full path with the RSA key", true, true, password, ""},
		{"caching_sha2_password, full path, wrong password", true, true, "wrong", "error 1045"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, got := fakeMySQL(t, mysqlLoginServer(t, password, tc.sha2, tc.full, key))
			c := mysqlCheck{network: "tcp", address: addr, user: "app", password: tc.password, database: "shop", timeout: 5 * time.Second}
			err := c.check(context.Background())
			switch {
			case tc.reason == "" && err != nil:
				t.Errorf("not ready: %v", err)
			case tc.reason != "" && (err == nil || !strings.Contains(err.Error(), tc.reason)):
				t.Errorf("error %v, want %q", err, tc.reason)
			}
			method := "mysql_native_password"
			if tc.sha2 {
				method = "caching_sha2_password"
			}
			if seen := string(<-got); !strings.HasPrefix(seen, "user=app db=shop method="+method) {
				t.Errorf("the server saw %q", seen)
			}
		})
	}
}

// The fake's caching_sha2_password checks, tried with another client that
// speaks the method: MariaDB's Connector/C (the mariadb client's plugin).
// No MySQL 8 client is packaged in Debian.
func TestMySQLSHA2FakeAgainstRealClient(t *testing.T) {
	admin := requireProgram(t, "mariadb-admin", "mysqladmin")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, full := range []bool{false, true} {
		addr, got := fakeMySQL(t, mysqlLoginServer(t, "S3cret", true, full, key))
		host, port, _ := net.SplitHostPort(addr)
		o := runCommand(t, exec.Command(admin, "--no-defaults", "--connect-timeout=5", "--skip-ssl", "-h", host, "-P", port, "-u", "app", "-pS3cret", "ping"))
		seen := string(<-got)
		if o.code != 0 || !strings.HasSuffix(seen, " ok") {
			t.Errorf("full path %v: mariadb-admin exit %d, the fake saw %q\n%s%s", full, o.code, seen, o.stdout, o.stderr)
		}
	}
}

// FuzzMySQLLogin: whatever a server answers a login with a password, the
// attempt ends in a reason or ready, never a panic, and writes little.
func FuzzMySQLLogin(f *testing.F) {
	f.Add(append(mysql8Handshake(), mysqlPacket(2, []byte{1, 3})...))
	f.Add(append(mysql8Handshake(), mysqlPacket(2, []byte{1, 4})...))
	f.Add(append(append(mysql8Handshake(), mysqlPacket(2, []byte{1, 4})...), mysqlPacket(4, []byte("\x01-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n"))...))
	f.Add(append(mysqlHandshakePacket(), mysqlPacket(2, []byte("\xfecaching_sha2_password\x00abcdefghijabcdefghij\x00"))...))
	f.Fuzz(func(t *testing.T, stream []byte) {
		conn := &fuzzConn{Reader: bytes.NewReader(stream)}
		mysqlCheck{user: "app", password: "pw", database: "db"}.talk(conn)
		if conn.written > 1<<16 {
			t.Errorf("wrote %d bytes", conn.written)
		}
		_ = io.EOF
	})
}

// A server that asks for an authentication method portpatrol does not
// speak (MariaDB's ed25519 plugin) gets a well-formed answer, so that the
// login is not counted as a connection error, and the reason names the
// method rather than reading like a wrong password.
func TestMySQLUnsupportedAuthMethod(t *testing.T) {
	t.Parallel()
	const want = "the server asks for the authentication plugin client_ed25519, which portpatrol does not support (it supports mysql_native_password, caching_sha2_password and mysql_clear_password)"
	switchTo := mysqlPacket(2, append([]byte("\xfeclient_ed25519\x00"), "0123456789abcdefghijABCDEFGHIJ01\x00"...))
	denied := mysqlErrPacket(4, 1045, "#28000Access denied for user 'signer'@'localhost' (using password: YES)")
	addr, got := fakeMySQL(t, serveLogin(switchTo, denied))
	c := mysqlCheck{network: "tcp", address: addr, user: "signer", password: "Ed-S3cret", timeout: 5 * time.Second}
	err := c.check(context.Background())
	if err == nil || err.Error() != want {
		t.Errorf("reason %v, want %q", err, want)
	}
	sent := <-got
	if !bytes.HasSuffix(sent, append([]byte{64, 0, 0, 3}, make([]byte, 64)...)) {
		t.Errorf("the switch was not answered with a 64-byte signature: %q", sent)
	}
	if bytes.Contains(sent, []byte("Ed-S3cret")) {
		t.Errorf("the password was sent: %q", sent)
	}
}
