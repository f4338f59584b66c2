package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// maxBodyRead bounds how much of a response body one attempt reads for
// expected-body-regex; an endless body costs no more than this.
const maxBodyRead = 1 << 20

const maxRedirects = 10

// httpCheck is ready when a request is answered with an expected status and,
// when asked, a body matching bodyRegex.
type httpCheck struct {
	url       *url.URL
	method    string
	header    http.Header
	host      string // virtual host from a Host header; "" uses the URL's
	body      string
	expected  statusCodes
	bodyRegex *regexp.Regexp
	timeout   time.Duration
	client    *http.Client
}

// parseHTTPAddress accepts absolute http:// and https:// URLs. Its errors
// never quote the URL, which may carry a password.
func parseHTTPAddress(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a valid URL (want http://host[:port]/path or https://...)")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("want an http:// or https:// URL")
	}
	if u.Hostname() == "" {
		return nil, errors.New("the URL has no host")
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if err := checkPort(p); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// newHTTPCheck builds the check for a resolved target: its request template
// and a client whose TLS settings come from the target alone.
func newHTTPCheck(s *targetSpec, u *url.URL) (*httpCheck, error) {
	c := &httpCheck{
		url:       u,
		method:    s.method,
		header:    http.Header{},
		body:      s.body,
		expected:  s.expectedStatus,
		bodyRegex: s.bodyRegex,
		timeout:   s.timeout,
	}
	var problems []error
	for _, h := range s.headers {
		// HTTP ignores white space around a value, and a value read from a
		// Secret often ends in a newline that would make the request invalid.
		h.value = strings.TrimSpace(h.value)
		if strings.IndexFunc(h.value, isControl) >= 0 {
			problems = append(problems, fmt.Errorf("%s: the value of %s holds a control character such as a line break, which a header cannot carry",
				s.flag("header"), h.name))
			continue
		}
		if strings.EqualFold(h.name, "Host") {
			if c.host != "" {
				return nil, fmt.Errorf("%s: header Host is given more than once; a request has one virtual host", s.flag("header"))
			}
			if u, err := url.Parse("http://" + h.value + "/"); err != nil || u.Host != h.value || h.value == "" {
				problems = append(problems, fmt.Errorf("%s: the Host header is not a valid host or host:port", s.flag("header")))
				continue
			}
			c.host = h.value
			continue
		}
		c.header.Add(h.name, h.value)
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if c.header.Get("User-Agent") == "" {
		c.header.Set("User-Agent", "portpatrol/"+versionString())
	}

	tlsConfig := &tls.Config{InsecureSkipVerify: s.skipTLSVerify}
	if c.host != "" {
		// Reaching a virtual host by another name (an IP, a node name) should
		// still ask for and verify the virtual host's certificate.
		tlsConfig.ServerName = hostWithoutPort(c.host)
	}
	if s.caFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(s.caFile)
		if err != nil {
			return nil, fmt.Errorf("%s: cannot read %s: %v", s.flag("ca-file"), s.caFile, unwrapPathError(err))
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: %s holds no PEM certificate", s.flag("ca-file"), s.caFile)
		}
		tlsConfig.RootCAs = pool
	}
	if s.certFile != "" && s.keyFile != "" {
		cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
		if err != nil {
			return nil, fmt.Errorf("%s=%s with %s=%s: %v", s.flag("cert-file"), s.certFile, s.flag("key-file"), s.keyFile, unwrapPathError(err))
		}
		tlsConfig.Certificates = []tls.Certificate{cert}
	}

	c.client = &http.Client{
		Transport: &http.Transport{
			Proxy:       http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{}).DialContext,
			// A proxy's logs should show who tunnels, as the target's do;
			// no other header is meant for the proxy.
			ProxyConnectHeader:     http.Header{"User-Agent": c.header.Values("User-Agent")},
			OnProxyConnectResponse: refusedByProxy,
			TLSClientConfig:        tlsConfig,
			DisableKeepAlives:      true, // every attempt proves a new connection works
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: c.checkRedirect,
	}
	return c, nil
}

// refusedByProxy names the proxy when it refuses a CONNECT; Go's own error
// is the bare status text ("Forbidden"), which reads like the target's.
func refusedByProxy(_ context.Context, proxy *url.URL, _ *http.Request, resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("proxy %s: CONNECT answered %s", proxyName(proxy), resp.Status)
	}
	return nil
}

// proxyName shows a proxy without its credentials.
func proxyName(proxy *url.URL) string {
	return proxy.Scheme + "://" + proxy.Host
}

// urlPieces are the parts of u that may carry a secret when u itself came
// from a reference: its user, password, host, path and query, whole and apart.
func urlPieces(u *url.URL) []string {
	pieces := []string{u.String(), u.Redacted(), u.Host, u.Hostname(), u.RawQuery}
	if u.User != nil {
		pieces = append(pieces, u.User.Username())
		if pw, ok := u.User.Password(); ok {
			pieces = append(pieces, pw)
		}
	}
	if u.Path != "/" {
		pieces = append(pieces, u.Path, u.EscapedPath())
	}
	return pieces
}

// isControl reports the characters RFC 9110 forbids in a field value.
func isControl(r rune) bool {
	return r < ' ' && r != '\t' || r == 0x7f
}

func hostWithoutPort(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// checkRedirect stops at a redirect whose status is itself expected (so
// 301-302 in the list means the redirect is the answer) and otherwise follows
// a bounded number of hops.
func (c *httpCheck) checkRedirect(req *http.Request, via []*http.Request) error {
	if c.expected.contains(req.Response.StatusCode) {
		return http.ErrUseLastResponse
	}
	for _, prev := range via {
		if prev.Method == req.Method && prev.URL.String() == req.URL.String() {
			return fmt.Errorf("redirect loop: %s was already requested", req.URL.Redacted())
		}
	}
	// via holds the requests made so far, so following redirect n means
	// len(via) == n: the 10th hop is still allowed.
	if len(via) > maxRedirects {
		return fmt.Errorf("more than %d redirects", maxRedirects)
	}
	return nil
}

func (c *httpCheck) check(ctx context.Context) error {
	// One deadline covers connect, TLS handshake, headers and body.
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, c.url.String(), body)
	if err != nil {
		return errors.New("cannot build the request")
	}
	req.Header = c.header.Clone()
	if c.host != "" {
		req.Host = c.host
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return c.describe(ctx, err)
	}
	// Closing without draining is deliberate: keep-alives are off, so the
	// connection is dropped and an endless body is never read.
	defer resp.Body.Close()
	if !c.expected.contains(resp.StatusCode) {
		return fmt.Errorf("status %d, want %s", resp.StatusCode, c.expected)
	}
	if c.bodyRegex == nil {
		return nil
	}
	r := &errorRecorder{r: io.LimitReader(resp.Body, maxBodyRead)}
	// MatchReader stops reading at the first match, so a large or endless
	// body that matches early is ready early.
	if c.bodyRegex.MatchReader(bufio.NewReader(r)) {
		return nil
	}
	if r.err != nil {
		return fmt.Errorf("status %d, but reading the body failed: %v", resp.StatusCode, describeNetError(ctx, r.err, c.timeout))
	}
	return fmt.Errorf("status %d, but the body does not match %s", resp.StatusCode, c.bodyRegex)
}

// describe drops the *url.Error wrapper: it quotes the URL (the log line
// already names the target, redacted) and repeats the method.
func (c *httpCheck) describe(ctx context.Context, err error) error {
	failed := c.url
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
		if u, perr := url.Parse(ue.URL); perr == nil {
			failed = u // after a redirect, another host may have another proxy
		}
	}
	// Failing to reach the proxy is not the target refusing: say which proxy.
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "proxyconnect" {
		if proxy, _ := http.ProxyFromEnvironment(&http.Request{URL: failed}); proxy != nil {
			return fmt.Errorf("proxy %s: %v", proxyName(proxy), describeNetError(ctx, op.Err, c.timeout))
		}
	}
	return describeNetError(ctx, err, c.timeout)
}

// errorRecorder remembers the first read error, which MatchReader hides.
type errorRecorder struct {
	r   io.Reader
	err error
}

func (e *errorRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// redactURL hides the password of any user:password@ in s, also when s does
// not parse as a URL, so that no message can carry it.
func redactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	authority, path, _ := strings.Cut(rest, "/")
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return s
	}
	user, _, hasPassword := strings.Cut(authority[:at], ":")
	if !hasPassword {
		return s
	}
	out := scheme + "://" + user + ":xxxxx" + authority[at:]
	if len(authority) < len(rest) {
		out += "/" + path
	}
	return out
}
