package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
)

// scramServer is the server side of SCRAM-SHA-256 written from RFC 5802
// for the fakes: it checks the client's proof and signs the exchange.
type scramServer struct {
	password   string
	salt       []byte
	iterations int
	badSig     bool // sign with a wrong key, as a server that does not know the password
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// readPGClientMessage reads a 'p' message and returns its body.
func readPGClientMessage(t *testing.T, c net.Conn) []byte {
	var head [5]byte
	if _, err := io.ReadFull(c, head[:]); err != nil || head[0] != 'p' {
		t.Errorf("client message %q: %v, want 'p'", head[:1], err)
		return nil
	}
	body := make([]byte, binary.BigEndian.Uint32(head[1:])-4)
	io.ReadFull(c, body)
	return body
}

func pgAuthData(code uint32, data string) []byte {
	b := binary.BigEndian.AppendUint32(nil, code)
	return pgMessage('R', append(b, data...))
}

// pgWelcome is what a server sends after AuthenticationOk, and its answer
// to the empty query that follows (sent ahead: a fake need not read it).
func pgWelcome() []byte {
	var b []byte
	b = append(b, pgAuthRequest(0)...)
	b = append(b, pgMessage('S', []byte("server_version\x0015.0\x00"))...)
	b = append(b, pgMessage('K', make([]byte, 8))...)
	return append(append(b, pgMessage('Z', []byte("I"))...), pgEmptyQueryAnswer()...)
}

// pgEmptyQueryAnswer is a server's answer to an empty Query.
func pgEmptyQueryAnswer() []byte {
	return append(pgMessage('I', nil), pgMessage('Z', []byte("I"))...)
}

// serve runs the exchange after the start-up message; it reports whether
// the client's proof was right.
func (s scramServer) serve(t *testing.T, c net.Conn) bool {
	c.Write(pgAuthData(10, "SCRAM-SHA-256-PLUS\x00SCRAM-SHA-256\x00\x00"))
	body := readPGClientMessage(t, c)
	mech, rest, _ := bytes.Cut(body, []byte{0})
	if string(mech) != "SCRAM-SHA-256" || len(rest) < 4 {
		t.Errorf("SASLInitialResponse %q", body)
		return false
	}
	clientFirst := string(rest[4:])
	bare, ok := strings.CutPrefix(clientFirst, "n,,")
	if !ok {
		t.Errorf("client-first %q, want the gs2 header n,,", clientFirst)
		return false
	}
	_, clientNonce, _ := strings.Cut(bare, "r=")
	serverFirst := fmt.Sprintf("r=%sSRV,s=%s,i=%d", clientNonce, base64.StdEncoding.EncodeToString(s.salt), s.iterations)
	c.Write(pgAuthData(11, serverFirst))
	clientFinal := string(readPGClientMessage(t, c))
	withoutProof, proof64, _ := strings.Cut(clientFinal, ",p=")
	salted, _ := pbkdf2.Key(sha256.New, s.password, s.salt, s.iterations, 32)
	authMessage := bare + "," + serverFirst + "," + withoutProof
	clientKey := hmacSHA256(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	sig := hmacSHA256(stored[:], authMessage)
	proof, _ := base64.StdEncoding.DecodeString(proof64)
	if withoutProof != "c=biws,r="+clientNonce+"SRV" || len(proof) != 32 {
		t.Errorf("client-final %q", clientFinal)
		return false
	}
	for i := range proof {
		proof[i] ^= sig[i]
	}
	if !bytes.Equal(proof, clientKey) {
		c.Write(pgError("28P01", `password authentication failed for user "app"`, ""))
		return false
	}
	serverKey := hmacSHA256(salted, "Server Key")
	if s.badSig {
		serverKey = hmacSHA256([]byte("not the password"), "Server Key")
	}
	c.Write(pgAuthData(12, "v="+base64.StdEncoding.EncodeToString(hmacSHA256(serverKey, authMessage))))
	c.Write(pgWelcome())
	return true
}

// Each way a server asks for the password, against fakes that check what
// the client answers; the refusals and stages the real servers cannot be
// made to show on demand.
func TestPostgresLoginAgainstFakes(t *testing.T) {
	t.Parallel()
	const password = "Fake-S3cret"
	good := scramServer{password: password, salt: []byte("saltsalt"), iterations: 4096}
	for _, tc := range []struct {
		name    string
		respond func(n int, c net.Conn)
		reason  string // "" is ready
	}{
		{"SCRAM-SHA-256", func(n int, c net.Conn) { good.serve(t, c) }, ""},
		{"SCRAM, a server that does not know the password", func(n int, c net.Conn) {
			bad := good
			bad.badSig = true
			bad.serve(t, c)
		}, "SCRAM: the server's signature does not match: it does not know the password"},
		{"SCRAM, the wrong password", func(n int, c net.Conn) {
			other := good
			other.password = "something else"
			other.serve(t, c)
		}, `login refused: password authentication failed for user \"app\" (SQLSTATE 28P01)`},
		{"SCRAM, a nonce that is not ours", func(n int, c net.Conn) {
			c.Write(pgAuthData(10, "SCRAM-SHA-256\x00\x00"))
			readPGClientMessage(t, c)
			c.Write(pgAuthData(11, "r=other,s=c2FsdA==,i=4096"))
		}, "SCRAM: the server's nonce does not extend ours"},
		{"SCRAM, too many iterations", func(n int, c net.Conn) {
			c.Write(pgAuthData(10, "SCRAM-SHA-256\x00\x00"))
			body := readPGClientMessage(t, c)
			_, nonce, _ := strings.Cut(string(body), "r=")
			c.Write(pgAuthData(11, "r="+nonce+"x,s=c2FsdA==,i=99999999"))
		}, "SCRAM: the iteration count must be a number from 1 to 1048576"},
		{"SASL without SCRAM-SHA-256", func(n int, c net.Conn) { c.Write(pgAuthData(10, "OAUTHBEARER\x00\x00")) },
			"the server offers no SASL mechanism portpatrol speaks (want SCRAM-SHA-256): OAUTHBEARER"},
		{"MD5", func(n int, c net.Conn) {
			c.Write(pgAuthData(5, "salt"))
			inner := md5.Sum([]byte(password + "app"))
			outer := md5.Sum(append([]byte(hex.EncodeToString(inner[:])), "salt"...))
			if got := string(readPGClientMessage(t, c)); got != "md5"+hex.EncodeToString(outer[:])+"\x00" {
				c.Write(pgError("28P01", "md5 mismatch", ""))
				return
			}
			c.Write(pgWelcome())
		}, ""},
		{"cleartext", func(n int, c net.Conn) {
			c.Write(pgAuthData(3, ""))
			if got := string(readPGClientMessage(t, c)); got != password+"\x00" {
				c.Write(pgError("28P01", "cleartext mismatch", ""))
				return
			}
			c.Write(pgWelcome())
		}, ""},
		{"Kerberos", func(n int, c net.Conn) { c.Write(pgAuthData(7, "")) }, "the server asks for authentication method 7, which portpatrol does not speak"},
		{"no ReadyForQuery after AuthenticationOk", func(n int, c net.Conn) { c.Write(pgAuthRequest(0)) },
			"no ReadyForQuery within 300ms after authentication"},
		{"no answer to the password", func(n int, c net.Conn) { c.Write(pgAuthData(3, "")) },
			"no ReadyForQuery within 300ms after the password was sent"},
		{"too many clients", func(n int, c net.Conn) { c.Write(pgError("53300", "sorry, too many clients already", "")) },
			"login refused: sorry, too many clients already (SQLSTATE 53300)"},
		{"starting up", func(n int, c net.Conn) { c.Write(pgError("57P03", "the database system is starting up", "")) },
			"the server rejects connections: the database system is starting up (SQLSTATE 57P03)"},
		{"an endless welcome", func(n int, c net.Conn) {
			c.Write(pgAuthRequest(0))
			for {
				if _, err := c.Write(pgMessage('S', []byte("a\x00b\x00"))); err != nil {
					return
				}
			}
		}, "no ReadyForQuery in the first 64 messages of the login"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := startPGFake(t, tc.respond)
			o := runPortpatrol(t, nil, "--postgres.db.address=postgres://app:"+password+"@"+f.addr+"/orders", "--postgres.db.timeout=300ms",
				"--default-max-attempts=1", "--timeout=20s")
			if tc.reason == "" {
				o.mustExit(t, 0)
			} else {
				o.mustExit(t, 1)
				if !strings.Contains(o.stderr, tc.reason) {
					t.Errorf("stderr lacks %s:\n%s", tc.reason, o.stderr)
				}
			}
			if strings.Contains(o.stderr, password) {
				t.Errorf("the password is shown:\n%s", o.stderr)
			}
			if _, received := f.snapshot(); tc.reason == "" && !strings.HasSuffix(received, "X\x00\x00\x00\x04") {
				t.Errorf("the session did not end with Terminate: %q", received)
			}
		})
	}
}

// FuzzSCRAMServerMessages: whatever a server sends in SCRAM, the client
// answers or refuses, never panics, and never accepts a signature it did
// not compute.
func FuzzSCRAMServerMessages(f *testing.F) {
	f.Add("r=NONCEx,s=c2FsdA==,i=4096", "v=AAAA")
	f.Add("r=NONCE,s=,i=0", "e=invalid-proof")
	f.Add("m=ext,r=NONCEx", "")
	f.Fuzz(func(t *testing.T, first, final string) {
		s := newSCRAM("pw")
		s.clientNonce = "NONCE"
		if _, _, _, err := s.parseServerFirst(first); err != nil {
			return
		}
		if err := s.verify(final); err == nil {
			t.Fatalf("verified %q without final", final)
		}
	})
}

// FuzzPGLogin: whatever a server sends during a login, the attempt ends in
// a reason or ready, reading a bounded amount.
func FuzzPGLogin(f *testing.F) {
	f.Add(pgWelcome())
	f.Add(append(pgAuthData(5, "salt"), pgWelcome()...))
	f.Add(pgAuthData(10, "SCRAM-SHA-256\x00\x00"))
	f.Add(pgError("28P01", "x", ""))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &countingReader{r: bytes.NewReader(data)}
		// No password: a request for one ends the attempt before any
		// costly key derivation.
		pgCheck{user: "u", startup: pgStartupMessage("u", "d"), login: true}.logIn(struct {
			io.Reader
			io.Writer
		}{c, io.Discard}, pgHost{}, "read-write", nil)
		// The login, SHOW transaction_read_only and the empty query.
		if c.n > 3*pgMaxLoginMessages*(5+pgMaxMessage)+pgMaxMessages*pgMaxMessage {
			t.Fatalf("read %d bytes", c.n)
		}
	})
}
