package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strings"
)

// TLS as every type that speaks it configures it: the same properties with
// the same meaning, read once at start-up, and one rule for the handshakes
// that fail on trust.

// tlsFiles are the TLS properties of every type that can speak TLS.
type tlsFiles struct {
	skipVerify bool
	caFile     string
	certFile   string
	keyFile    string
}

// tlsOf is the settings of a type whose own properties are the TLS ones alone.
func tlsOf(s *targetSpec) *tlsFiles { return s.settings.(*tlsFiles) }

// tlsProperties are skip-tls-verify, ca-file, cert-file and key-file for a
// type whose settings hold a tlsFiles.
func tlsProperties(of func(s *targetSpec) *tlsFiles) []property {
	return []property{
		{name: "skip-tls-verify", def: "false", aliases: []string{"insecure", "insecure-skip-verify", "tls-skip-verify"}, help: "accept any server certificate",
			set: func(s *targetSpec, v string) (err error) { of(s).skipVerify, err = parseBool(v); return }},
		{name: "ca-file", arg: "PATH", help: "PEM certificates to trust instead of the system roots",
			set: func(s *targetSpec, v string) error { of(s).caFile = v; return nil }},
		{name: "cert-file", arg: "PATH", help: "PEM client certificate for mutual TLS (needs key-file)",
			set: func(s *targetSpec, v string) error { of(s).certFile = v; return nil }},
		{name: "key-file", arg: "PATH", help: "PEM private key of cert-file",
			set: func(s *targetSpec, v string) error { of(s).keyFile = v; return nil }},
	}
}

func (f *tlsFiles) finish(s *targetSpec) []error {
	if (f.certFile == "") != (f.keyFile == "") {
		return []error{errorf("%s and %s go together: mutual TLS needs both the certificate and its key",
			s.flag("cert-file"), s.flag("key-file"))}
	}
	return nil
}

// config reads the files once, at start-up. serverName, when set, is the
// name to ask for and verify instead of the dialled host.
//
// A ca-file replaces the system roots, as curl's --cacert does: a target on
// a private CA must not also trust every public one, and the system pool is
// then never loaded (that alone tripled a TLS target's start-up).
func (f *tlsFiles) config(s *targetSpec, serverName string) (*tls.Config, []error) {
	cfg := &tls.Config{InsecureSkipVerify: f.skipVerify, ServerName: serverName}
	var problems []error
	if f.caFile != "" {
		pool := x509.NewCertPool()
		if pem, err := os.ReadFile(f.caFile); err != nil {
			problems = append(problems, errorf("%s: cannot read %s: %v", s.flag("ca-file"), f.caFile, unwrapPathError(err)))
		} else if !pool.AppendCertsFromPEM(pem) {
			problems = append(problems, errorf("%s: %s holds no PEM certificate", s.flag("ca-file"), f.caFile))
		}
		cfg.RootCAs = pool
	}
	if f.certFile != "" && f.keyFile != "" {
		cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
		if err != nil {
			problems = append(problems, errorf("%s=%s with %s=%s: %v", s.flag("cert-file"), quoteValue(f.certFile), s.flag("key-file"), quoteValue(f.keyFile), unwrapPathError(err)))
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, problems
}

// distrusted reports whether a TLS handshake failed on trust: we did not
// trust the server's certificate (an unknown CA, another name, expired), or
// the server refused ours with an alert. Either way nothing of the target
// behind TLS was seen, so the shared reasons wrap it in unseen.
func distrusted(err error) bool {
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	// An alert the server sent comes as a *net.OpError "remote error"
	// around crypto/tls's unexported alert: its text tells bad_certificate,
	// unknown_ca, certificate_required and the others (RFC 8446 section
	// 6.2) apart.
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "remote error" && op.Err != nil {
		text := op.Err.Error()
		return strings.Contains(text, "certificate") || text == "tls: access denied"
	}
	return false
}
