package main

// The postgres type's authentication exchange, apart because its methods
// (cleartext, MD5, SCRAM with channel binding) and require_auth's rules
// are the longest part of a login and change independently of the rest.

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Authentication requests: the Int32 after 'R' (section "Message Formats").
const (
	pgAuthCleartext    = 3
	pgAuthMD5          = 5
	pgAuthSASL         = 10
	pgAuthSASLContinue = 11
	pgAuthSASLFinal    = 12
	pgPasswordMessage  = 'p' // also SASLInitialResponse and SASLResponse
)

// pgAuthNames are require_auth's names of the authentication requests.
var pgAuthNames = map[uint32]string{pgAuthenticationOK: "none", pgAuthCleartext: "password", pgAuthMD5: "md5", pgAuthSASL: "scram-sha-256", 7: "gss", 9: "sspi"}

// parseRequireAuth reads require_auth: a comma list of methods the server
// may ask for, or of methods it may not (each with !).
func parseRequireAuth(v string) (methods []string, negated bool, err error) {
	for i, m := range strings.Split(v, ",") {
		neg := strings.HasPrefix(m, "!")
		m = strings.TrimPrefix(m, "!")
		if i > 0 && neg != negated {
			return nil, false, errors.New("require_auth: negative and positive methods cannot be mixed")
		}
		negated = neg
		if !slices.Contains([]string{"password", "md5", "scram-sha-256", "gss", "sspi", "none"}, m) {
			return nil, false, errorf("require_auth method %s: want password, md5, scram-sha-256, gss, sspi or none (or each with !)", quoteString(serverText(m, 40)))
		}
		methods = append(methods, m)
	}
	return methods, negated, nil
}

// pgMD5 is the answer to AuthenticationMD5Password:
// "md5" + md5hex(md5hex(password + user) + salt).
func pgMD5(password, user string, salt []byte) string {
	inner := md5.Sum([]byte(password + user))
	outer := md5.Sum(append([]byte(hex.EncodeToString(inner[:])), salt...))
	return "md5" + hex.EncodeToString(outer[:])
}

// authAllowed applies require_auth and channel_binding=require to the
// server's authentication request, as libpq does before answering it.
// answered: a password went before this request; bound: by SCRAM with
// channel binding.
func (c pgCheck) authAllowed(code uint32, state *tls.ConnectionState, answered, bound bool) error {
	name, known := pgAuthNames[code]
	if !known {
		name = strconv.Itoa(int(code))
	}
	if code == pgAuthenticationOK && answered {
		if c.channelBinding == "require" && !bound {
			return errors.New("channel binding required, but the server authenticated the client without it")
		}
		return nil
	}
	if c.channelBinding == "require" && code != pgAuthSASL {
		if state == nil {
			return errors.New("channel binding required, but SSL not in use")
		}
		return errorf("channel binding required, but the server asked for %s authentication, which has none", name)
	}
	if c.requireAuth == nil {
		return nil
	}
	if slices.Contains(c.requireAuth, name) == c.requireAuthNot {
		what := "server requested " + name + " authentication"
		if code == pgAuthenticationOK {
			what = "server did not complete authentication"
		}
		sep := ","
		if c.requireAuthNot {
			sep = ",!" // as written: what was required
		}
		return errorf("require_auth %s%s failed: %s", map[bool]string{true: "!"}[c.requireAuthNot], strings.Join(c.requireAuth, sep), what)
	}
	return nil
}

// pgEndPoint is the tls-server-end-point channel binding (RFC 5929): the
// hash of the server's certificate, SHA-256 unless its signature uses a
// stronger hash.
func pgEndPoint(state *tls.ConnectionState) []byte {
	if len(state.PeerCertificates) == 0 {
		return nil
	}
	cert := state.PeerCertificates[0]
	switch cert.SignatureAlgorithm {
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384, x509.SHA384WithRSAPSS:
		sum := sha512.Sum384(cert.Raw)
		return sum[:]
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512, x509.SHA512WithRSAPSS:
		sum := sha512.Sum512(cert.Raw)
		return sum[:]
	}
	sum := sha256.Sum256(cert.Raw)
	return sum[:]
}

// authentication answers an authentication request ('R': an Int32 code,
// then the method's data) as libpq would, or says why it will not.
func (l *pgLogin) authentication(body []byte) error {
	if len(body) < 4 {
		return errors.New("not a PostgreSQL server: an authentication request without its code")
	}
	code, data := binary.BigEndian.Uint32(body), body[4:]
	switch code {
	case pgAuthSASLContinue:
		return l.saslContinue(data)
	case pgAuthSASLFinal:
		return l.saslFinal(data)
	}
	if err := l.authAllowed(code, l.state, l.stage != "", l.sasl != nil && l.sasl.binding != nil); err != nil {
		return unseen{err}
	}
	if code == pgAuthenticationOK {
		l.stage = "after authentication"
		return nil
	}
	if l.host.password == "" {
		return unseen{l.passwordMissing(code)}
	}
	switch code {
	case pgAuthCleartext:
		return l.passwordMessage(append([]byte(l.host.password), 0))
	case pgAuthMD5:
		return l.md5Password(data)
	case pgAuthSASL:
		return l.saslInitialResponse(data)
	}
	return errorf("the server asks for authentication method %d, which portpatrol does not speak", code)
}

// passwordMissing is the reason when the server asks for a password and
// none was found.
func (l *pgLogin) passwordMissing(code uint32) error {
	reason := errorf("the server asks for a password (authentication method %d): give the password property, one in the connection string, PGPASSWORD or the password file", code)
	if l.passfileWarning != "" {
		reason = errorf("%v (%s)", reason, l.passfileWarning)
	}
	return reason
}

// passwordMessage sends a PasswordMessage (or a SASLInitialResponse or
// SASLResponse, which share its type byte): 'p', an Int32 length, reply.
func (l *pgLogin) passwordMessage(reply []byte) error {
	msg := make([]byte, 5, 5+len(reply))
	msg[0] = pgPasswordMessage
	binary.BigEndian.PutUint32(msg[1:], uint32(4+len(reply)))
	if _, err := l.conn.Write(append(msg, reply...)); err != nil {
		return err
	}
	l.stage = "after the password was sent"
	return nil
}

// md5Password answers AuthenticationMD5Password, whose data is a 4-byte salt.
func (l *pgLogin) md5Password(salt []byte) error {
	if len(salt) != 4 {
		return errors.New("not a PostgreSQL server: an MD5 request without its 4-byte salt")
	}
	return l.passwordMessage(append([]byte(pgMD5(l.host.password, l.user, salt)), 0))
}

// saslInitialResponse answers AuthenticationSASL: the mechanism chosen
// (NUL-terminated), an Int32 length, and SCRAM's client-first-message.
func (l *pgLogin) saslInitialResponse(offered []byte) error {
	mechanism, gs2, binding, err := l.saslMechanism(offered)
	if err != nil {
		return err
	}
	l.sasl = newSCRAM(pgSASLprep(l.host.password))
	l.sasl.gs2, l.sasl.binding = gs2, binding
	first := l.sasl.first()
	reply := append([]byte(mechanism+"\x00"), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(reply[len(reply)-4:], uint32(len(first)))
	return l.passwordMessage(append(reply, first...))
}

// saslMechanism picks from the server's offer (a list of NUL-terminated
// names) as channel_binding says: SCRAM-SHA-256-PLUS over TLS when offered,
// else SCRAM-SHA-256 with the GS2 header that tells whether we could bind.
func (l *pgLogin) saslMechanism(offered []byte) (mechanism, gs2 string, binding []byte, err error) {
	offers := func(name string) bool {
		return bytes.HasPrefix(offered, []byte(name+"\x00")) || bytes.Contains(offered, []byte("\x00"+name+"\x00"))
	}
	mechanism, gs2 = "SCRAM-SHA-256", "n,,"
	switch {
	case l.state != nil && l.channelBinding != "disable" && offers("SCRAM-SHA-256-PLUS"):
		return "SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,", pgEndPoint(l.state), nil
	case l.channelBinding == "require":
		return "", "", nil, unseen{errors.New("channel binding required, but the server offers no SCRAM-SHA-256-PLUS (it needs TLS and a SCRAM password)")}
	case l.state != nil:
		gs2 = "y,," // we could bind, the server cannot
	}
	if !offers("SCRAM-SHA-256") {
		return "", "", nil, errorf("the server offers no SASL mechanism portpatrol speaks (want SCRAM-SHA-256): %s", serverText(strings.TrimRight(string(offered), "\x00"), 100))
	}
	return mechanism, gs2, nil, nil
}

// saslContinue answers AuthenticationSASLContinue (server-first-message)
// with a SASLResponse (client-final-message).
func (l *pgLogin) saslContinue(serverFirst []byte) error {
	if l.sasl == nil {
		return errors.New("not a PostgreSQL server: SASLContinue before SASL")
	}
	final, err := l.sasl.final(string(serverFirst))
	if err != nil {
		return err
	}
	return l.passwordMessage([]byte(final))
}

// saslFinal checks AuthenticationSASLFinal (server-final-message): the
// server proves it knows the password too. AuthenticationOk follows.
func (l *pgLogin) saslFinal(serverFinal []byte) error {
	if l.sasl == nil {
		return errors.New("not a PostgreSQL server: SASLFinal before SASL")
	}
	return l.sasl.verify(string(serverFinal))
}
