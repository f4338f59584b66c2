package main

// The postgres type's TLS, apart because libpq's sslmode, certificate files
// and SSLRequest negotiation are a concern of their own, read once at
// start-up and once per host.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
)

// pgAskTLS asks for TLS with an SSLRequest; the server answers one
// byte, S to go on in TLS or N to refuse.
func pgAskTLS(conn net.Conn) (accepted bool, err error) {
	if _, err := conn.Write([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}); err != nil { // length 8, code 80877103 ("Message Formats")
		return false, err
	}
	var answer [1]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		return false, err
	}
	switch answer[0] {
	case 'S':
		return true, nil
	case 'N':
		return false, nil
	}
	return false, errorf("not a PostgreSQL server: it answers an SSLRequest with %s", describeByte(answer[0]))
}

// pgTLSConfig is TLS as libpq's sslmode, sslrootcert, sslcert and sslkey
// ask for it (section "SSL Support"): a root certificate file, named or
// ~/.postgresql/root.crt, makes every mode check the server's chain, as
// verify-ca does (so require with a wrong CA fails, as in libpq);
// verify-full also checks the host name, set per host by the checker.
// disable has no TLS. direct is sslnegotiation=direct.
func pgTLSConfig(p pgParams) (config *tls.Config, direct bool, err error) {
	mode := pgSSLMode(p)
	if mode == "disable" {
		return nil, false, nil
	}
	verify := strings.HasPrefix(mode, "verify-")
	if direct = p["sslnegotiation"] == "direct"; direct && mode != "require" && !verify {
		return nil, false, errorf("sslnegotiation=direct with sslmode %s: libpq wants require, verify-ca or verify-full", mode)
	}
	config = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"postgresql"}}
	if err := pgTLSVersions(p, config); err != nil {
		return nil, false, err
	}
	rootCert, err := pgRootCerts(p, mode, config)
	if err != nil {
		return nil, false, err
	}
	if mode != "verify-full" {
		// The chain, without the host name: Go verifies both or neither.
		config.InsecureSkipVerify = true
		if rootCert != "" {
			config.VerifyConnection = pgVerifyChain(config.RootCAs)
		}
	}
	if err := pgClientCertificate(p, config); err != nil {
		return nil, false, err
	}
	return config, direct, nil
}

// pgSSLMode is sslmode, or libpq's default: prefer, or verify-full with
// the system's roots (sslrootcert=system).
func pgSSLMode(p pgParams) string {
	switch {
	case p["sslmode"] != "":
		return p["sslmode"]
	case p["sslrootcert"] == "system":
		return "verify-full"
	}
	return "prefer"
}

// pgTLSVersions applies ssl_min_protocol_version and ssl_max_protocol_version.
func pgTLSVersions(p pgParams, config *tls.Config) error {
	for key, into := range map[string]*uint16{"ssl_min_protocol_version": &config.MinVersion, "ssl_max_protocol_version": &config.MaxVersion} {
		switch v := p[key]; v {
		case "":
		case "TLSv1":
			*into = tls.VersionTLS10
		case "TLSv1.1":
			*into = tls.VersionTLS11
		case "TLSv1.2":
			*into = tls.VersionTLS12
		case "TLSv1.3":
			*into = tls.VersionTLS13
		default:
			return errorf("%s %s: want TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3", key, quoteString(serverText(v, 40)))
		}
	}
	return nil
}

// pgRootCerts reads sslrootcert (or ~/.postgresql/root.crt) into
// config.RootCAs, and returns the file read ("" for none, system for the
// system's roots). Only the verify modes need one.
func pgRootCerts(p pgParams, mode string, config *tls.Config) (rootCert string, err error) {
	rootCert = p["sslrootcert"]
	switch {
	case rootCert == "system":
		if mode != "verify-full" {
			return "", errorf("sslmode %s with sslrootcert=system: libpq wants verify-full", mode)
		}
		return rootCert, nil
	case rootCert == "" && pgHomeFile(".postgresql/root.crt") != "":
		rootCert = pgHomeFile(".postgresql/root.crt")
		if _, err := os.Stat(rootCert); err != nil {
			rootCert = "" // absent: no check, unless the mode asks for one
		}
	}
	pem, err := os.ReadFile(rootCert)
	switch {
	case err != nil && strings.HasPrefix(mode, "verify-"):
		if rootCert == "" {
			return "", errorf("sslmode %s needs a root certificate: give sslrootcert (a file, or system for the system's roots), or put one in ~/.postgresql/root.crt", mode)
		}
		return "", errorf("sslrootcert: cannot read %s: %v", rootCert, unwrapPathError(err))
	case err != nil:
		return "", nil // libpq checks nothing then
	}
	config.RootCAs = x509.NewCertPool()
	if !config.RootCAs.AppendCertsFromPEM(pem) {
		return "", errorf("sslrootcert: %s holds no PEM certificate", rootCert)
	}
	return rootCert, nil
}

// pgVerifyChain checks the server's chain against roots, without its name,
// as verify-ca does.
func pgVerifyChain(roots *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
		for _, cert := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(cert)
		}
		_, err := cs.PeerCertificates[0].Verify(opts)
		return err
	}
}

// pgClientCertificate adds a client certificate, named (sslcert, sslkey)
// or in ~/.postgresql, when its file exists and sslcertmode allows it.
func pgClientCertificate(p pgParams, config *tls.Config) error {
	certFile, keyFile := p["sslcert"], p["sslkey"]
	if certFile == "" {
		certFile = pgHomeFile(".postgresql/postgresql.crt")
	}
	if keyFile == "" {
		keyFile = pgHomeFile(".postgresql/postgresql.key")
	}
	if _, err := os.Stat(certFile); err != nil || p["sslcertmode"] == "disable" {
		if p["sslcertmode"] == "require" {
			return errorf("sslcertmode=require, but no client certificate at %s", certFile)
		}
		return nil
	}
	keyPEM, err := pgClientKey(keyFile)
	if err != nil {
		return err
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return errorf("sslcert: cannot read %s: %v", certFile, unwrapPathError(err))
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return errorf("sslcert %s and sslkey %s: %v", certFile, keyFile, err)
	}
	config.Certificates = []tls.Certificate{pair}
	return nil
}

// pgClientKey reads the client certificate's private key as libpq accepts
// it: private to its owner (or to root's group), and not encrypted.
func pgClientKey(keyFile string) ([]byte, error) {
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, errorf("sslkey: certificate present, but cannot read the private key %s: %v", keyFile, unwrapPathError(err))
	}
	if info, err := os.Stat(keyFile); err == nil && info.Mode().Perm()&0o077 != 0 && !(info.Mode().Perm()&0o037 == 0 && pgOwnedByRoot(info)) {
		return nil, errorf("sslkey: private key file %s has group or world access: libpq wants permissions u=rw (0600) or less (u=rw,g=r, 0640, when root owns it)", keyFile)
	}
	if bytes.Contains(keyPEM, []byte("ENCRYPTED")) {
		return nil, errorf("sslkey: %s is encrypted, which portpatrol cannot read (sslpassword is not supported): give an unencrypted key", keyFile)
	}
	return keyPEM, nil
}

// overTLS logs in over TLS: an SSLRequest first (or, with
// sslnegotiation=direct, TLS at once). tryPlain says whether prefer goes on
// without TLS: the handshake failed, or the server refused the start-up
// over TLS (a pg_hba.conf with hostnossl lines only, say).
func (c pgCheck) overTLS(ctx context.Context, h pgHost, attrs string, optional bool) (err error, tryPlain bool) {
	config := c.tls.Clone()
	config.ServerName = h.name
	err = exchange(ctx, h.network, h.address, c.timeout, nil, func(conn net.Conn) error {
		if !c.direct {
			accepted, err := pgAskTLS(conn)
			switch {
			case err != nil:
				return err
			case !accepted && optional:
				return c.session(conn, h, attrs, nil) // a server without TLS
			case !accepted:
				// It answered the SSLRequest: there, if not as wanted.
				return finalReason{unseen{errorf("the server does not accept TLS, which sslmode=%s asks for", c.sslmode)}}
			}
		}
		tc := tls.Client(conn, config)
		if err := tc.HandshakeContext(ctx); err != nil {
			tryPlain = optional && ctx.Err() == nil
			reason := handshakeFailed(ctx, err, 0)
			if _, ok := reason.(unseen); !ok && pgTrustFailure(err) {
				reason = unseen{reason}
			}
			return finalReason{reason}
		}
		defer tc.Close() // close_notify: a polite end, as libpq's SSL_shutdown
		state := tc.ConnectionState()
		err = c.session(tc, h, attrs, &state)
		_, refused := errors.AsType[pgStartupRefusal](err)
		tryPlain = optional && refused
		return err
	})
	return err, tryPlain
}

// pgTrustFailure: the handshake failed on the server's certificate (its
// CA, its name, its dates), or the server refused ours: a refusal, which
// shows the server is there. verify-ca's own check returns x509's errors
// bare, which distrusted (tls.go) does not see.
func pgTrustFailure(err error) bool {
	_, authority := errors.AsType[x509.UnknownAuthorityError](err)
	_, name := errors.AsType[x509.HostnameError](err)
	_, invalid := errors.AsType[x509.CertificateInvalidError](err)
	return authority || name || invalid || distrusted(err)
}

func pgOwnedByRoot(info os.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0
}
