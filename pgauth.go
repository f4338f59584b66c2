package main

// The postgres type's authentication exchange, apart because its methods
// (cleartext, MD5, SCRAM with channel binding) and require_auth's rules
// are the longest part of a login and change independently of the rest.

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
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
		return errorf("require_auth %s failed: %s", strings.Join(c.requireAuth, ","), what)
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
