package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// maxBodyRead bounds how much of a response body one attempt reads for
// expected-body-regex and json; an endless body costs no more than this.
const maxBodyRead = 1 << 20

const maxRedirects = 10

func init() {
	register("http", &targetType{
		ready:      "when the response has an expected status and, if asked, a matching body and JSON values",
		stillReady: "still answers as expected",
		properties: httpProperties,
		settings:   func() any { return &httpSettings{} },
		finish:     finishHTTP,
		prepare:    prepareWatch, // for unix sockets
		build:      buildHTTP,
	})
}

// httpSettings are an http target's own properties. Header values and the
// body may still be references until the target is built.
type httpSettings struct {
	method                string
	headers               []header
	allowDuplicateHeaders bool
	expectedStatus        statusCodes
	bodyRegex             *regexp.Regexp
	json                  []jsonExpectation
	body                  string
	unixSocket            string // may be a reference until built
	tlsFiles
}

type header struct {
	name, value string
}

func httpOf(s *targetSpec) *httpSettings { return s.settings.(*httpSettings) }

var httpProperties = append([]property{
	{name: "method", arg: "METHOD", def: "GET", help: "request method",
		set: func(s *targetSpec, v string) error {
			if !isToken(v) {
				return errors.New("not a valid HTTP method (letters like GET, HEAD, POST)")
			}
			httpOf(s).method = v
			return nil
		}},
	{name: "header", arg: "KEY=VALUE", aliases: []string{"headers"}, repeatable: true, secret: true, help: "request header, repeatable; VALUE may be a reference",
		set: func(s *targetSpec, v string) error {
			name, value, ok := strings.Cut(v, "=")
			name = strings.TrimSpace(name)
			if !ok {
				return errors.New("want KEY=VALUE, e.g. Authorization=env:TOKEN")
			}
			if !isToken(name) {
				return errorf("header name %s is not valid (letters, digits and !#$%%&'*+-.^_`|~)", quoteString(name))
			}
			httpOf(s).headers = append(httpOf(s).headers, header{name, strings.TrimSpace(value)})
			return nil
		}},
	{name: "allow-duplicate-headers", def: "false", help: "send every value of a header given more than once",
		set: func(s *targetSpec, v string) (err error) { httpOf(s).allowDuplicateHeaders, err = parseBool(v); return }},
	{name: "expected-status-codes", arg: "LIST", def: "200", help: "status codes that mean ready: codes and ranges, e.g. 200,301-302",
		set: func(s *targetSpec, v string) (err error) { httpOf(s).expectedStatus, err = parseStatusCodes(v); return }},
	{name: "expected-body-regex", arg: "REGEX", help: "also require the first 1 MiB of the body to match (RE2 syntax)",
		set: func(s *targetSpec, v string) (err error) { httpOf(s).bodyRegex, err = compileRegex(v); return }},
	{name: "json", arg: "PATH=VALUE", repeatable: true, help: "also require the JSON body to hold VALUE at PATH (a dot path as in json:), repeatable; A|B for either, PATH!=VALUE for neither, PATH alone for any value but null",
		set: func(s *targetSpec, v string) error {
			e, err := parseJSONExpectation(v)
			if err == nil {
				httpOf(s).json = append(httpOf(s).json, e)
			}
			return err
		}},
	{name: "body", arg: "STRING", secret: true, help: "request body sent with every attempt; may be a reference",
		set: func(s *targetSpec, v string) error { httpOf(s).body = v; return nil }},
	{name: "unix-socket", arg: "PATH", help: "send every request to this unix socket, not the URL's host; may be a reference",
		set: func(s *targetSpec, v string) error { httpOf(s).unixSocket = v; return nil }},
}, append(tlsProperties(func(s *targetSpec) *tlsFiles { return &httpOf(s).tlsFiles }),
	timeoutProperty("how long one request may take, body included"))...)

func finishHTTP(s *targetSpec) []error {
	h := httpOf(s)
	var problems []error
	if !h.allowDuplicateHeaders {
		seen := map[string]bool{}
		for _, hd := range h.headers {
			key := strings.ToLower(hd.name)
			if seen[key] {
				problems = append(problems, errorf("%s: header %s is given more than once; set %s=true to send every value",
					s.flag("header"), quoteString(hd.name), s.flag("allow-duplicate-headers")))
			}
			seen[key] = true
		}
	}
	if h.bodyRegex != nil && h.method == http.MethodHead {
		// RFC 9110 section 9.3.2: a response to HEAD carries no content.
		problems = append(problems, errorf("%s with %s=HEAD can never match: a response to HEAD has no body; use GET, or drop the regex",
			s.flag("expected-body-regex"), s.flag("method")))
	}
	if len(h.json) > 0 && h.method == http.MethodHead {
		problems = append(problems, errorf("%s with %s=HEAD can never hold: a response to HEAD has no body; use GET, or drop the json expectation",
			s.flag("json"), s.flag("method")))
	}
	return append(problems, h.tlsFiles.finish(s)...)
}

func buildHTTP(s *targetSpec, address string) (built, []error) {
	var problems []error
	u, err := parseHTTPAddress(address)
	if err != nil {
		problems = append(problems, addressError{err})
	}
	c, errs := newHTTPCheck(s, u)
	if problems = append(problems, errs...); len(problems) > 0 {
		return built{}, problems
	}
	// Logged as written: u.String() would percent-escape a non-ASCII host
	// and path, which the user did not write.
	b := built{checker: c, address: redactURL(address), pieces: append(urlPieces(u), address), secrets: c.secrets}
	if c.host != "" {
		// A Host header is a header value: it must not surface
		// through a TLS error that names the server it expected.
		b.secrets = append(b.secrets, c.host, hostWithoutPort(c.host))
	}
	if c.socket != "" {
		if ref := httpOf(s).unixSocket; isReference(ref) {
			b.address += " via " + ref // the path it names is not shown
			b.secrets = append(b.secrets, c.socket)
		} else {
			b.address += " via unix://" + c.socket
		}
	}
	return b, nil
}

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
	json      []jsonExpectation
	// secrets are the values read through references, hidden in every
	// reason.
	secrets []string
	// hidden is what a value found in the body may not quote: the secrets,
	// and every header value, the body and the URL's credentials in the
	// forms the request carries them, which an echo endpoint sends back.
	// Hidden before the value is cut.
	hidden  hidden
	timeout time.Duration
	socket  string // a unix socket every request goes to; "" dials the URL's host
	client  *http.Client
}

// parseHTTPAddress accepts absolute http:// and https:// URLs. Its errors
// never quote the URL, which may carry a password.
func parseHTTPAddress(s string) (*url.URL, error) {
	if err := unencodedPassword(s, true); err != nil {
		return nil, err
	}
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
	if err := checkHost(u.Hostname()); err != nil {
		return nil, err
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if err := checkPort(p); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// newHTTPCheck builds the check for a target with a parsed address (or nil,
// when the address was bad, to report every other problem too): it resolves
// header values and the body, and makes a client whose TLS settings come from
// the target alone.
func newHTTPCheck(s *targetSpec, u *url.URL) (*httpCheck, []error) {
	h := httpOf(s)
	c := &httpCheck{
		url:       u,
		method:    h.method,
		header:    http.Header{},
		expected:  h.expectedStatus,
		bodyRegex: h.bodyRegex,
		json:      h.json,
		timeout:   s.timeout,
	}
	if u != nil && isReference(s.address) {
		c.secrets = urlPieces(u)
	}
	// sent is every credential the request carries, hidden from reasons in
	// case the server echoes it back.
	var sent []string
	if u != nil {
		sent = sentCredentials(u)
	}
	problems := c.addHeaders(s, h.headers, &sent)
	if h.body != "" {
		var err error
		if c.body, err = resolveProperty(s.flag("body"), h.body); err != nil {
			problems = append(problems, err)
		}
		if isReference(h.body) {
			c.secrets = append(c.secrets, c.body)
		}
		// A form's password=... is echoed decoded (httpbin's "form").
		sent = append(append(sent, c.body), secretParamValues(c.body)...)
	}
	if h.unixSocket != "" {
		var err error
		if c.socket, err = httpSocket(s, h.unixSocket); err != nil {
			problems = append(problems, err)
		}
	}
	if c.header.Get("User-Agent") == "" {
		c.header.Set("User-Agent", "portpatrol/"+versionString())
	}
	// Reaching a virtual host by another name (an IP, a node name) should
	// still ask for and verify the virtual host's certificate.
	tlsConfig, errs := h.tlsFiles.config(s, hostWithoutPort(c.host))
	if problems = append(problems, errs...); len(problems) > 0 {
		return nil, problems
	}
	c.hidden = newHidden(append(sent, c.secrets...)...)
	c.client = &http.Client{Transport: c.transport(tlsConfig), CheckRedirect: c.checkRedirect}
	return c, nil
}

// addHeaders resolves the header properties into the request's headers, or
// its virtual host for Host, adding each value to sent.
func (c *httpCheck) addHeaders(s *targetSpec, headers []header, sent *[]string) (problems []error) {
	for _, hd := range headers {
		value, err := resolveProperty(s.flag("header")+" "+hd.name, hd.value)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		// HTTP ignores white space around a value, and a value read from a
		// Secret often ends in a newline that would make the request invalid.
		value = strings.TrimSpace(value)
		if isReference(hd.value) {
			c.secrets = append(c.secrets, value)
		}
		*sent = append(*sent, value)
		if _, credentials, ok := strings.Cut(value, " "); ok && strings.HasSuffix(strings.ToLower(hd.name), "authorization") {
			*sent = append(*sent, strings.TrimSpace(credentials)) // Bearer TOKEN: the token alone
		}
		if err := c.addHeader(s, hd.name, value); err != nil {
			problems = append(problems, err)
		}
	}
	return problems
}

func (c *httpCheck) addHeader(s *targetSpec, name, value string) error {
	switch {
	case value == "":
		return errorf("%s: the value of %s is empty; a header without a value is never what was meant", s.flag("header"), name)
	case strings.IndexFunc(value, isControl) >= 0:
		return errorf("%s: the value of %s holds a control character such as a line break, which a header cannot carry",
			s.flag("header"), name)
	case !strings.EqualFold(name, "Host"):
		c.header.Add(name, value)
		return nil
	case c.host != "":
		return errorf("%s: header Host is given more than once; a request has one virtual host", s.flag("header"))
	}
	if u, err := url.Parse("http://" + value + "/"); err != nil || u.Host != value || value == "" {
		return errorf("%s: the Host header is not a valid host or host:port", s.flag("header"))
	}
	c.host = value
	return nil
}

// httpSocket resolves the unix-socket property into a socket's path.
func httpSocket(s *targetSpec, property string) (string, error) {
	path, err := resolveProperty(s.flag("unix-socket"), property)
	if err != nil {
		return path, err
	}
	// DOCKER_HOST's form, unix:///var/run/docker.sock, is accepted too.
	path, _ = cutUnixScheme(strings.TrimSpace(path))
	if err := unixSocketPath(path); err != nil {
		shown := quoteValue(property)
		if isReference(property) {
			shown += " (resolved)"
		}
		return path, errorf("%s=%s: %v", s.flag("unix-socket"), shown, err)
	}
	return path, nil
}

func (c *httpCheck) transport(tlsConfig *tls.Config) *http.Transport {
	transport := &http.Transport{
		Proxy:       http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{}).DialContext,
		// A proxy's logs should show who tunnels, as the target's do;
		// no other header is meant for the proxy.
		ProxyConnectHeader:     http.Header{"User-Agent": c.header.Values("User-Agent")},
		OnProxyConnectResponse: refusedByProxy,
		TLSClientConfig:        tlsConfig,
		DisableKeepAlives:      true, // every attempt proves a new connection works
		MaxResponseHeaderBytes: 64 << 10,
	}
	if c.socket != "" {
		// The URL names the request line, the Host and, for https, the
		// name to verify; the connection goes to the socket, never a proxy.
		transport.Proxy = nil
		transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", c.socket)
		}
	}
	return transport
}

// refusedByProxy names the proxy when it refuses a CONNECT; Go's own error
// is the bare status text ("Forbidden"), which reads like the target's.
func refusedByProxy(_ context.Context, proxy *url.URL, _ *http.Request, resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		return errorf("proxy %s: CONNECT answered %s", proxyName(proxy), resp.Status)
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
	if hostport == "" {
		return ""
	}
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
			return errorf("redirect loop: %s was already requested", redactURL(req.URL.Redacted()))
		}
	}
	// via holds the requests made so far, so following redirect n means
	// len(via) == n: the 10th hop is still allowed.
	if len(via) > maxRedirects {
		return errorf("more than %d redirects", maxRedirects)
	}
	// Go's client sends every header on and adds a Referer, whose query may
	// hold a token (?api_token=): no Referer, and another host, or plain
	// HTTP after HTTPS, gets none of the headers that were set. The same
	// host on https:// (the usual upgrade) or another port keeps them, and
	// the URL's user and password too, which Go keeps only on the same port.
	req.Header.Del("Referer")
	first := via[0].URL
	if !strings.EqualFold(req.URL.Hostname(), first.Hostname()) || first.Scheme == "https" && req.URL.Scheme != "https" {
		req.Header = http.Header{"User-Agent": {"portpatrol/" + versionString()}}
	} else if user := first.User; user != nil && req.URL.User == nil && req.Header.Get("Authorization") == "" {
		password, _ := user.Password()
		req.SetBasicAuth(user.Username(), password)
	}
	return nil
}

// changes wakes the wait when the unix socket's file appears (watch.go).
func (c *httpCheck) changes() <-chan struct{} {
	if c.socket == "" {
		return nil
	}
	return watchPath(c.socket)
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
		return errorf("status %d, want %s", resp.StatusCode, c.expected)
	}
	if len(c.json) > 0 {
		return c.checkJSON(ctx, resp)
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
		return errorf("status %d, but reading the body failed: %v", resp.StatusCode, describeNetError(ctx, r.err, c.timeout))
	}
	return errorf("status %d, but the body does not match %s", resp.StatusCode, c.bodyRegex)
}

// checkJSON reads the body, up to maxBodyRead, once for the json
// expectations and the body regex.
func (c *httpCheck) checkJSON(ctx context.Context, resp *http.Response) error {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(io.LimitReader(resp.Body, maxBodyRead+1))
	body := buf.Bytes()
	switch {
	case err != nil:
		return errorf("status %d, but reading the body failed: %v", resp.StatusCode, describeNetError(ctx, err, c.timeout))
	case len(body) > maxBodyRead:
		return errorf("status %d, but the body is longer than %d MiB, more than is read for json", resp.StatusCode, maxBodyRead>>20)
	case c.bodyRegex != nil && !c.bodyRegex.Match(body):
		return errorf("status %d, but the body does not match %s", resp.StatusCode, c.bodyRegex)
	}
	return checkJSONBody(body, c.json, c.hidden)
}

// describe drops the *url.Error wrapper: it quotes the URL (the log line
// already names the target, redacted) and repeats the method.
func (c *httpCheck) describe(ctx context.Context, err error) error {
	failed := c.url
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
		if u, perr := url.Parse(ue.URL); perr == nil {
			failed = u // after a redirect, another host may have another proxy
		}
	}
	// Go quotes these lines of the reply whole: a redirect's Location may
	// carry a signed URL's secrets (X-Amz-Signature=…), and a server that
	// is not HTTP may echo the request line, query and all.
	switch msg := err.Error(); {
	case strings.HasPrefix(msg, "failed to parse Location header"):
		return errors.New("the server redirected to a Location that is not a valid URL")
	case strings.Contains(msg, "malformed MIME header"):
		return errors.New("the server sent a malformed header line")
	case strings.Contains(msg, "malformed HTTP"): // response, version or status code
		return errors.New("the server's reply is not HTTP: its status line is malformed")
	}
	// Failing to reach the proxy is not the target refusing: say which proxy.
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "proxyconnect" {
		if proxy, _ := http.ProxyFromEnvironment(&http.Request{URL: failed}); proxy != nil {
			return errorf("proxy %s: %v", proxyName(proxy), describeNetError(ctx, op.Err, c.timeout))
		}
	}
	err = describeNetError(ctx, err, c.timeout)
	// Go names its own function when the server ends the connection with a
	// TLS alert after the handshake, as a TLS 1.3 server that wants a
	// client certificate does.
	if msg := err.Error(); strings.Contains(msg, "readLoopPeekFailLocked: ") {
		text := errors.New(strings.Replace(msg, "readLoopPeekFailLocked: ", "", 1))
		if _, ok := err.(unseen); ok { // the server refused our certificate
			return unseen{text}
		}
		return text
	}
	return err
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

// isToken reports whether s is an RFC 9110 token, the syntax of header names
// and methods.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// statusCodes is a set of accepted HTTP status codes as inclusive ranges.
type statusCodes [][2]int

func parseStatusCodes(v string) (statusCodes, error) {
	var codes statusCodes
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, errors.New("empty entry in the list (want codes and ranges like 200,301-302)")
		}
		lo, hi, isRange := strings.Cut(item, "-")
		from, err := parseStatusCode(lo)
		if err != nil {
			return nil, err
		}
		to := from
		if isRange {
			if to, err = parseStatusCode(hi); err != nil {
				return nil, err
			}
			if to < from {
				return nil, errorf("range %s runs backwards (want low-high, e.g. %d-%d)", item, to, from)
			}
		}
		codes = append(codes, [2]int{from, to})
	}
	return codes, nil
}

func parseStatusCode(s string) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil || len(s) != 3 {
		return 0, errorf("%s is not a status code (want a number from 100 to 599)", quoteString(s))
	}
	if n < 100 || n > 599 {
		return 0, errorf("%d is outside 100-599", n)
	}
	return n, nil
}

func (c statusCodes) contains(code int) bool {
	for _, r := range c {
		if r[0] <= code && code <= r[1] {
			return true
		}
	}
	return false
}

func (c statusCodes) String() string {
	parts := make([]string, len(c))
	for i, r := range c {
		parts[i] = strconv.Itoa(r[0])
		if r[1] != r[0] {
			parts[i] += "-" + strconv.Itoa(r[1])
		}
	}
	if len(parts) > 1 {
		return strings.Join(parts[:len(parts)-1], ", ") + " or " + parts[len(parts)-1]
	}
	return strings.Join(parts, "")
}
