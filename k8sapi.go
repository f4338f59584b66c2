package main

// A small client for the Kubernetes API: which cluster and credentials a
// kubeconfig (or the pod itself) names, authenticated JSON requests, and a
// watch that says when a collection changed. No generated client: the
// structs hold only the fields portpatrol reads.
//
// Facts are from the Kubernetes documentation: "Organizing Cluster Access
// Using kubeconfig Files", "Accessing the Kubernetes API from a Pod",
// "client-go credential plugins" and "API Concepts" (efficient detection of
// changes, watch bookmarks, 410 Gone).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"
)

// serviceAccountDir is where a pod finds its own credentials.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

const (
	// k8sMaxBody bounds one reply (a list of many objects included).
	k8sMaxBody = 16 << 20
	// k8sMaxEvent bounds one watch event: an object is at most about
	// 1.5 MiB in etcd.
	k8sMaxEvent = 4 << 20
	// k8sMaxExecOutput bounds what an exec credential plugin may print.
	k8sMaxExecOutput = 1 << 20
	// k8sWatchSeconds asks the server to end a watch after this long, so a
	// connection that died silently is noticed; the watch then resumes.
	k8sWatchSeconds = 290
)

// kubeconfig is the part of a kubeconfig file portpatrol reads.
type kubeconfig struct {
	CurrentContext string `yaml:"current-context"`
	Clusters       []struct {
		Name    string            `yaml:"name"`
		Cluster kubeconfigCluster `yaml:"cluster"`
	} `yaml:"clusters"`
	Users []struct {
		Name string         `yaml:"name"`
		User kubeconfigUser `yaml:"user"`
	} `yaml:"users"`
	Contexts []struct {
		Name    string            `yaml:"name"`
		Context kubeconfigContext `yaml:"context"`
	} `yaml:"contexts"`
}

type kubeconfigCluster struct {
	Server     string `yaml:"server"`
	CA         string `yaml:"certificate-authority"`
	CAData     string `yaml:"certificate-authority-data"`
	Insecure   bool   `yaml:"insecure-skip-tls-verify"`
	ServerName string `yaml:"tls-server-name"`
	ProxyURL   string `yaml:"proxy-url"`
	dir        string // of the file that named it: relative paths start there
}

type kubeconfigUser struct {
	Token        string              `yaml:"token"`
	TokenFile    string              `yaml:"tokenFile"`
	Cert         string              `yaml:"client-certificate"`
	CertData     string              `yaml:"client-certificate-data"`
	Key          string              `yaml:"client-key"`
	KeyData      string              `yaml:"client-key-data"`
	Exec         *kubeconfigExec     `yaml:"exec"`
	AuthProvider map[string]any      `yaml:"auth-provider"`
	Username     string              `yaml:"username"`
	As           string              `yaml:"as"`
	AsUID        string              `yaml:"as-uid"`
	AsGroups     []string            `yaml:"as-groups"`
	AsUserExtra  map[string][]string `yaml:"as-user-extra"`
	dir          string
}

type kubeconfigExec struct {
	APIVersion string   `yaml:"apiVersion"`
	Command    string   `yaml:"command"`
	Args       []string `yaml:"args"`
	Env        []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	InteractiveMode string `yaml:"interactiveMode"`
}

type kubeconfigContext struct {
	Cluster   string `yaml:"cluster"`
	User      string `yaml:"user"`
	Namespace string `yaml:"namespace"`
}

// kubeAPI is one API server with the credentials to use on it.
type kubeAPI struct {
	server      string // https://host:port, no trailing slash
	shown       string // server as messages show it: a password redacted
	client      *http.Client
	token       string // static bearer token
	tokenFile   string // read again for every request: bound tokens rotate
	exec        *execPlugin
	namespace   string      // of the kubeconfig context
	where       string      // where the credentials are from, for messages
	cluster     string      // for the "waiting" line: the context's name, or the server
	secrets     []string    // tokens and keys known at start-up
	impersonate http.Header // Impersonate-User and the others, sent with every request

	discovery   chan struct{} // held while discovery is fetched
	kinds       map[string]k8sResource
	discovered  time.Time
	mu          sync.Mutex
	collections map[string]*kubeCollection // by path
}

// kubeAPIs are the clients made so far, by kubeconfig and context: the
// targets of one cluster share one client, its connections, its discovery
// and its watches.
var kubeAPIs = map[[2]string]*kubeAPI{}

// kubeSource says where credentials come from, for messages.
type kubeSource struct {
	what  string   // the flag, $KUBECONFIG or ~/.kube/config
	files []string // nil: the pod's own credentials
}

// findKubeconfig picks credentials in kubectl's order: the property, then
// $KUBECONFIG, then ~/.kube/config when it exists, then the pod's own.
func findKubeconfig(flag, property string) (kubeSource, error) {
	if property != "" {
		return kubeSource{flag + "=" + property, []string{property}}, nil
	}
	if env := os.Getenv("KUBECONFIG"); env != "" {
		var files []string
		for _, f := range filepath.SplitList(env) {
			if _, err := os.Stat(f); f != "" && err == nil {
				files = append(files, f)
			}
		}
		if len(files) == 0 {
			return kubeSource{}, errorf("$KUBECONFIG names no file that exists (%s); set it to kubeconfig files, or unset it", env)
		}
		return kubeSource{"$KUBECONFIG", files}, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		f := filepath.Join(home, ".kube", "config")
		if _, err := os.Stat(f); err == nil {
			return kubeSource{"~/.kube/config (" + f + ")", []string{f}}, nil
		}
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		return kubeSource{what: "the pod's service account"}, nil
	}
	return kubeSource{}, errorf("no credentials for the API server: give %s, set $KUBECONFIG, write ~/.kube/config, or run in a pod", flag)
}

// loadKubeconfig merges files as kubectl does: the first file that sets a
// value (a cluster, user or context by name, the current context) wins.
func loadKubeconfig(src kubeSource) (*kubeconfig, error) {
	merged := &kubeconfig{}
	seen := map[string]bool{}
	for _, f := range src.files {
		where := src.what
		if !strings.Contains(where, f) { // one of $KUBECONFIG's files
			where += ": " + f
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, errorf("%s: cannot read it: %v", where, unwrapPathError(err))
		}
		var kc kubeconfig
		if err := yaml.Unmarshal(data, &kc); err != nil {
			// yaml.v3 reports a repeated key as a type error too.
			if _, ok := errors.AsType[*yaml.TypeError](err); ok {
				return nil, errorf("%s: not a valid kubeconfig: a value of the wrong type, or a repeated key,%s", where, yamlAtLine(err))
			}
			return nil, errorf("%s: not a valid kubeconfig: %v", where, yamlError("syntax error", err))
		}
		dir := filepath.Dir(f)
		if merged.CurrentContext == "" {
			merged.CurrentContext = kc.CurrentContext
		}
		for _, c := range kc.Clusters {
			if !seen["c/"+c.Name] {
				seen["c/"+c.Name] = true
				c.Cluster.dir = dir
				merged.Clusters = append(merged.Clusters, c)
			}
		}
		for _, u := range kc.Users {
			if !seen["u/"+u.Name] {
				seen["u/"+u.Name] = true
				u.User.dir = dir
				merged.Users = append(merged.Users, u)
			}
		}
		for _, c := range kc.Contexts {
			if !seen["x/"+c.Name] {
				seen["x/"+c.Name] = true
				merged.Contexts = append(merged.Contexts, c)
			}
		}
	}
	return merged, nil
}

// newKubeAPI makes the client for a target from its kubeconfig and context
// properties. Its errors are start-up errors.
func newKubeAPI(s *targetSpec, kubeconfigProperty, contextName string) (*kubeAPI, error) {
	key := [2]string{kubeconfigProperty, contextName}
	if api := kubeAPIs[key]; api != nil {
		return api, nil
	}
	api, err := loadKubeAPI(s, kubeconfigProperty, contextName)
	if err != nil {
		return nil, err
	}
	api.discovery = make(chan struct{}, 1)
	api.collections = map[string]*kubeCollection{}
	kubeAPIs[key] = api
	return api, nil
}

func loadKubeAPI(s *targetSpec, kubeconfigProperty, contextName string) (*kubeAPI, error) {
	src, err := findKubeconfig(s.flag("kubeconfig"), kubeconfigProperty)
	if err != nil {
		return nil, err
	}
	if src.files == nil {
		if contextName != "" {
			return nil, errorf("%s: there is no kubeconfig to take the context from (in a pod, without one)", s.flag("context"))
		}
		return inClusterAPI()
	}
	kc, err := loadKubeconfig(src)
	if err != nil {
		return nil, err
	}
	name := contextName
	if name == "" {
		name = kc.CurrentContext
	}
	if name == "" {
		return nil, errorf("%s sets no current-context: give %s", src.what, s.flag("context"))
	}
	var ctx *kubeconfigContext
	var names []string
	for i, c := range kc.Contexts {
		names = append(names, c.Name)
		if c.Name == name {
			ctx = &kc.Contexts[i].Context
		}
	}
	if ctx == nil {
		return nil, errorf("%s has no context %q (it has: %s)", src.what, name, strings.Join(names, ", "))
	}
	var cluster *kubeconfigCluster
	for i, c := range kc.Clusters {
		if c.Name == ctx.Cluster {
			cluster = &kc.Clusters[i].Cluster
		}
	}
	if cluster == nil {
		return nil, errorf("%s: context %q names cluster %q, which is not in it", src.what, name, ctx.Cluster)
	}
	user := &kubeconfigUser{}
	if ctx.User != "" {
		user = nil
		for i, u := range kc.Users {
			if u.Name == ctx.User {
				user = &kc.Users[i].User
			}
		}
		if user == nil {
			return nil, errorf("%s: context %q names user %q, which is not in it", src.what, name, ctx.User)
		}
	}
	where := src.what + ", context " + strconv.Quote(name)
	api, err := kubeconfigAPI(where, cluster, user)
	if err != nil {
		return nil, err
	}
	api.namespace, api.where, api.cluster = ctx.Namespace, where, name
	return api, nil
}

func kubeconfigAPI(where string, cluster *kubeconfigCluster, user *kubeconfigUser) (*kubeAPI, error) {
	u, err := url.Parse(cluster.Server)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errorf("%s: the cluster's server %q is not an https:// (or http://) URL", where, redactURL(cluster.Server))
	}
	// As kubectl: a request carries its own query only, not the server's.
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	api := &kubeAPI{server: strings.TrimSuffix(u.String(), "/")}
	api.shown = redactURL(api.server)
	if password, ok := u.User.Password(); ok {
		api.secrets = append(api.secrets, password)
	}
	cfg := &tls.Config{InsecureSkipVerify: cluster.Insecure, ServerName: cluster.ServerName}
	var problems []error
	read := func(field, file, data, dir string) []byte {
		if data != "" {
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(data))
			if err != nil {
				problems = append(problems, errorf("%s: %s is not valid base64", where, field+"-data"))
			}
			return b
		}
		if file == "" {
			return nil
		}
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			problems = append(problems, errorf("%s: %s: cannot read %s: %v", where, field, file, unwrapPathError(err)))
		}
		return b
	}
	if ca := read("certificate-authority", cluster.CA, cluster.CAData, cluster.dir); ca != nil {
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(ca) {
			problems = append(problems, errorf("%s: certificate-authority holds no PEM certificate", where))
		}
	}
	certPEM := read("client-certificate", user.Cert, user.CertData, user.dir)
	keyPEM := read("client-key", user.Key, user.KeyData, user.dir)
	switch {
	case certPEM == nil && keyPEM == nil:
	case certPEM == nil || keyPEM == nil:
		problems = append(problems, errorf("%s: client-certificate and client-key go together", where))
	default:
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			// The error may not quote the key: it is described, not shown.
			problems = append(problems, errorf("%s: client-certificate and client-key are not a valid pair of PEM certificate and key", where))
		}
		cfg.Certificates = []tls.Certificate{cert}
		api.secrets = append(api.secrets, string(keyPEM), strings.TrimSpace(user.KeyData))
	}
	api.token = strings.TrimSpace(user.Token)
	api.secrets = append(api.secrets, api.token)
	if user.TokenFile != "" {
		api.tokenFile = user.TokenFile
		if !filepath.IsAbs(api.tokenFile) {
			api.tokenFile = filepath.Join(user.dir, api.tokenFile)
		}
	}
	if user.AuthProvider != nil {
		problems = append(problems, errorf("%s: the user's auth-provider is not supported (kubectl dropped it too); use an exec plugin", where))
	}
	if user.Username != "" {
		problems = append(problems, errorf("%s: basic authentication (username, password) is not supported; the API server dropped it", where))
	}
	if e := user.Exec; e != nil {
		p, err := newExecPlugin(where, e, user.dir)
		if err != nil {
			problems = append(problems, err)
		}
		api.exec = p
		cfg.GetClientCertificate = p.clientCertificate(cfg.Certificates)
		cfg.Certificates = nil
	}
	proxy, err := clusterProxy(where, cluster, api)
	if err != nil {
		problems = append(problems, err)
	}
	if api.impersonate, err = impersonation(where, user); err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	api.client = kubeHTTPClient(cfg, proxy)
	return api, nil
}

// clusterProxy is the cluster's proxy-url, for every request as client-go
// uses it (NO_PROXY or not), else the environment's HTTPS_PROXY and
// NO_PROXY. A password in it joins api's secrets.
func clusterProxy(where string, cluster *kubeconfigCluster, api *kubeAPI) (func(*http.Request) (*url.URL, error), error) {
	if cluster.ProxyURL == "" {
		return http.ProxyFromEnvironment, nil
	}
	p, err := url.Parse(cluster.ProxyURL)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https" && p.Scheme != "socks5") || p.Host == "" {
		return nil, errorf("%s: the cluster's proxy-url %q is not an http://, https:// or socks5:// URL", where, redactURL(cluster.ProxyURL))
	}
	if password, ok := p.User.Password(); ok {
		api.secrets = append(api.secrets, password)
	}
	return http.ProxyURL(p), nil
}

// impersonation is the Impersonate-* headers of the user's as, as-uid,
// as-groups and as-user-extra (nil without as).
func impersonation(where string, user *kubeconfigUser) (http.Header, error) {
	if user.As == "" {
		if user.AsUID != "" || len(user.AsGroups) > 0 || len(user.AsUserExtra) > 0 {
			return nil, errorf("%s: the user's as-uid, as-groups or as-user-extra need as (the user to impersonate)", where)
		}
		return nil, nil
	}
	h := http.Header{"Impersonate-User": {user.As}}
	if user.AsUID != "" {
		h.Set("Impersonate-Uid", user.AsUID)
	}
	h["Impersonate-Group"] = user.AsGroups
	for k, vs := range user.AsUserExtra {
		h["Impersonate-Extra-"+headerKeyEscape(k)] = vs
	}
	return h, nil
}

// headerKeyEscape percent-encodes what a header name cannot hold, as
// client-go writes an as-user-extra key and the API server reads it.
func headerKeyEscape(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == '%' || c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			b.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(c)|0x100, 16)[1:]))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// inClusterAPI uses the pod's service account, as client-go's in-cluster
// configuration does.
func inClusterAPI() (*kubeAPI, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if port == "" {
		return nil, errors.New("in a pod, KUBERNETES_SERVICE_HOST is set but KUBERNETES_SERVICE_PORT is not")
	}
	ca, err := os.ReadFile(filepath.Join(serviceAccountDir, "ca.crt"))
	if err != nil {
		return nil, errorf("in a pod: cannot read the service account's ca.crt: %v (is automountServiceAccountToken false?)", unwrapPathError(err))
	}
	cfg := &tls.Config{RootCAs: x509.NewCertPool()}
	if !cfg.RootCAs.AppendCertsFromPEM(ca) {
		return nil, errorf("in a pod: %s holds no PEM certificate", filepath.Join(serviceAccountDir, "ca.crt"))
	}
	server := "https://" + net.JoinHostPort(host, port)
	return &kubeAPI{
		server:    server,
		shown:     server,
		cluster:   server,
		client:    kubeHTTPClient(cfg, http.ProxyFromEnvironment),
		tokenFile: filepath.Join(serviceAccountDir, "token"),
	}, nil
}

func kubeHTTPClient(cfg *tls.Config, proxy func(*http.Request) (*url.URL, error)) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                  proxy,
		DialContext:            (&net.Dialer{KeepAlive: 15 * time.Second}).DialContext,
		TLSClientConfig:        cfg,
		MaxResponseHeaderBytes: 64 << 10,
		IdleConnTimeout:        90 * time.Second,
	}}
}

// podNamespace is the pod's own namespace, "" outside a pod.
func podNamespace() string {
	b, err := os.ReadFile(filepath.Join(serviceAccountDir, "namespace"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// errNoAnswer is a request that did not end within the attempt's timeout.
var errNoAnswer = errors.New("no answer in time")

// errUnauthorized is a 401: the credentials are wrong or expired.
var errUnauthorized = errors.New("the API server refused the credentials")

// apiStatus is a reply other than 2xx, with the server's own message.
type apiStatus struct {
	code    int
	reason  string // Status.reason, e.g. Forbidden, NotFound, Expired
	message string
}

func (e *apiStatus) Error() string {
	msg := "the API server answered " + strconv.Itoa(e.code)
	if e.message != "" {
		msg += ": " + serverText(e.message, 300)
	}
	return msg
}

// authorize adds the bearer token, from the kubeconfig, the token file or
// the exec plugin, to req.
func (a *kubeAPI) authorize(ctx context.Context, req *http.Request) error {
	token := a.token
	if a.tokenFile != "" {
		// As client-go: the file when it can be read, else the inline token.
		b, err := os.ReadFile(a.tokenFile)
		if err != nil && a.token == "" {
			return errorf("cannot read the token file %s: %v", a.tokenFile, unwrapPathError(err))
		}
		if err == nil {
			token = strings.TrimSpace(string(b))
		}
	}
	if a.exec != nil {
		t, err := a.exec.credential(ctx)
		if err != nil {
			return err
		}
		if t != "" {
			token = t
		}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return nil
}

// request sends one authenticated GET for path (with its query) and returns
// the 2xx response, whose body the caller closes.
func (a *kubeAPI) request(ctx context.Context, path, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.server+path, nil)
	if err != nil {
		return nil, errorf("API server %s: %v", a.shown, withoutURL(err))
	}
	for k, v := range a.impersonate {
		req.Header[k] = v
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "portpatrol/"+versionString())
	if err := a.authorize(ctx, req); err != nil {
		return nil, unseen{err} // without credentials, nothing was asked
	}
	resp, err := a.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, errNoAnswer
		}
		return nil, errorf("API server %s: %v", a.shown, describeNetError(ctx, withoutURL(err), 0))
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		if a.exec != nil {
			a.exec.forget() // expired early, or revoked: run the plugin again
		}
		return nil, errUnauthorized
	}
	st := &apiStatus{code: resp.StatusCode}
	body, _ := readBounded(resp.Body, resp.ContentLength, 64<<10)
	if status, err := parseJSON(body); err == nil {
		st.reason, st.message = jsonString(jsonAt(status, "reason")), jsonString(jsonAt(status, "message"))
	}
	return nil, st
}

// withoutURL is err without the request's URL, which a *url.Error quotes,
// password and all.
func withoutURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

// get reads one JSON reply.
func (a *kubeAPI) get(ctx context.Context, path, accept string) (any, error) {
	resp, err := a.request(ctx, path, accept)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := readBounded(resp.Body, resp.ContentLength, k8sMaxBody)
	if err != nil {
		return nil, errorf("API server %s: %v", a.shown, err)
	}
	reply, err := parseJSON(body)
	if err != nil {
		return nil, errorf("API server %s: the reply is not valid JSON", a.shown)
	}
	return reply, nil
}

// readBounded reads a body of at most max bytes, checking a declared length
// first.
func readBounded(r io.Reader, declared int64, max int) ([]byte, error) {
	if declared > int64(max) {
		return nil, errorf("the reply is %d bytes, more than the %d portpatrol reads", declared, max)
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, errorf("reading the reply: %v", err)
	}
	if len(b) > max {
		return nil, errorf("the reply is more than the %d bytes portpatrol reads", max)
	}
	return b, nil
}

// watchEvent is one line of a watch stream: its type, its object and, for
// ERROR, the Status code of its object.
type watchEvent struct {
	Type   string
	Object any
	Code   int64
}

// errGone is a watch's 410: its resourceVersion is too old to resume from.
var errGone = errors.New("watch expired (410 gone)")

// watch follows the collection at path from rv, calling changed for every
// added, modified or deleted object and every bookmark. It returns nil when
// the server ended the watch, errGone when rv expired, or another error.
func (a *kubeAPI) watch(ctx context.Context, path, rv string, headerTimeout time.Duration, changed func(typ string, object any)) error {
	ctx, cancel := context.WithTimeout(ctx, (k8sWatchSeconds+30)*time.Second)
	defer cancel()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	path += sep + "watch=1&allowWatchBookmarks=true&timeoutSeconds=" + strconv.Itoa(k8sWatchSeconds) + "&resourceVersion=" + url.QueryEscape(rv)
	timer := time.AfterFunc(headerTimeout, cancel)
	resp, err := a.request(ctx, path, "application/json")
	if !timer.Stop() && err == nil {
		resp.Body.Close()
		return errors.New("no answer in time")
	}
	if err != nil {
		if st, ok := errors.AsType[*apiStatus](err); ok && st.code == http.StatusGone {
			return errGone
		}
		return err
	}
	defer resp.Body.Close()
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := readLine(r, k8sMaxEvent)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		ev, err := parseWatchEvent(line)
		if err != nil {
			return err
		}
		switch ev.Type {
		case "ERROR":
			if ev.Code == http.StatusGone {
				return errGone
			}
			return errorf("the watch reported error %d", ev.Code)
		default:
			changed(ev.Type, ev.Object)
		}
	}
}

func parseWatchEvent(line []byte) (watchEvent, error) {
	var ev watchEvent
	doc, err := parseJSON(line)
	if err != nil {
		return ev, errors.New("a watch event is not valid JSON")
	}
	ev.Type, ev.Object, ev.Code = jsonString(jsonAt(doc, "type")), jsonAt(doc, "object"), jsonInt(jsonAt(doc, "object", "code"))
	if ev.Type == "" {
		return ev, errors.New("a watch event has no type")
	}
	return ev, nil
}

// readLine reads one newline-terminated line of at most max bytes, skipping
// empty ones.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > max {
			return nil, errorf("a watch event is longer than %d bytes", max)
		}
		line = append(line, chunk...)
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(bytes.TrimSpace(line)) > 0:
			return line, nil
		case err != nil:
			return nil, err
		}
		if len(bytes.TrimSpace(line)) > 0 {
			return line, nil
		}
		line = line[:0]
	}
}

// execPlugin runs a client-go credential plugin and keeps what it printed
// until it expires.
type execPlugin struct {
	where      string // for messages
	apiVersion string
	command    string
	args       []string
	env        []string

	mu      sync.Mutex
	have    bool
	token   string
	cert    *tls.Certificate
	expires time.Time     // zero: until the API server refuses it
	running chan struct{} // closed when the run in flight ends
	failed  error         // why the last run gave nothing
}

// execPluginTimeout bounds one run of an exec plugin. It is its own, not
// an attempt's: a cloud CLI may take longer than an attempt's 5 s to fetch
// a token, and the attempts after the first one find it when it is done.
const execPluginTimeout = 60 * time.Second

// k8sMaxPluginStderr is how much of a failed plugin's stderr a reason
// quotes.
const k8sMaxPluginStderr = 400

func newExecPlugin(where string, e *kubeconfigExec, dir string) (*execPlugin, error) {
	switch e.APIVersion {
	case "client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1":
	default:
		return nil, errorf("%s: exec plugin apiVersion %q is not supported; want client.authentication.k8s.io/v1 or v1beta1", where, e.APIVersion)
	}
	if e.Command == "" {
		return nil, errorf("%s: the exec plugin has no command", where)
	}
	if e.InteractiveMode == "Always" {
		return nil, errorf("%s: the exec plugin's interactiveMode is Always, but portpatrol never has a terminal to offer it", where)
	}
	p := &execPlugin{where: where, apiVersion: e.APIVersion, command: e.Command, args: e.Args}
	// As kubectl: a relative command with a directory in it is relative to
	// the kubeconfig; a bare name is looked up in $PATH.
	if strings.Contains(p.command, "/") && !filepath.IsAbs(p.command) {
		p.command = filepath.Join(dir, p.command)
	}
	for _, v := range e.Env {
		p.env = append(p.env, v.Name+"="+v.Value)
	}
	return p, nil
}

func (p *execPlugin) forget() {
	p.mu.Lock()
	p.have = false
	p.mu.Unlock()
}

// credential returns the plugin's token ("" when it gave a certificate),
// starting the plugin when nothing valid is kept and none is running. It
// waits for the plugin for as long as ctx lets it; the plugin runs on.
func (p *execPlugin) credential(ctx context.Context) (string, error) {
	p.mu.Lock()
	if p.have && (p.expires.IsZero() || time.Now().Before(p.expires)) {
		defer p.mu.Unlock()
		return p.token, nil
	}
	if p.running == nil {
		p.running = make(chan struct{})
		go p.refresh()
	}
	running := p.running
	p.mu.Unlock()
	select {
	case <-running:
	case <-ctx.Done():
		return "", errorf("%s: the exec plugin %s is still running (it may take %v)", p.where, p.command, execPluginTimeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.have {
		return "", p.failed
	}
	return p.token, nil
}

// refresh runs the plugin once and keeps what it gave, or why not.
func (p *execPlugin) refresh() {
	ctx, cancel := context.WithTimeout(context.Background(), execPluginTimeout)
	defer cancel()
	info := append(appendJSONString([]byte(`{"apiVersion":`), p.apiVersion), `,"kind":"ExecCredential","spec":{"interactive":false}}`...)
	out, err := p.run(ctx, append(append(os.Environ(), p.env...), "KUBERNETES_EXEC_INFO="+string(info)))
	var cred execCredential
	if err != nil {
		err = errorf("%s: the exec plugin %s %v", p.where, p.command, err)
	} else if cred, err = parseExecCredential(out); err != nil {
		err = errorf("%s: the exec plugin %s: %v", p.where, p.command, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.have, p.failed = err == nil, err
	if err == nil {
		p.token, p.cert, p.expires = cred.token, cred.cert, cred.expires
	}
	close(p.running)
	p.running = nil
}

type execCredential struct {
	token   string
	cert    *tls.Certificate
	expires time.Time
}

// parseExecCredential reads an ExecCredential. Its errors never quote the
// output, which holds the credential.
func parseExecCredential(out []byte) (execCredential, error) {
	var cred execCredential
	ec, err := parseJSON(out)
	if err != nil || jsonAt(ec, "kind") != "ExecCredential" {
		return cred, errors.New("its output is not an ExecCredential in JSON")
	}
	status := jsonAt(ec, "status")
	token, certData, keyData := jsonString(jsonAt(status, "token")), jsonString(jsonAt(status, "clientCertificateData")), jsonString(jsonAt(status, "clientKeyData"))
	if token == "" && (certData == "" || keyData == "") {
		return cred, errors.New("its ExecCredential has neither status.token nor clientCertificateData and clientKeyData")
	}
	cred.token = token
	if certData != "" {
		cert, err := tls.X509KeyPair([]byte(certData), []byte(keyData))
		if err != nil {
			return cred, errors.New("its client certificate and key are not a valid PEM pair")
		}
		cred.cert = &cert
	}
	if expiration := jsonString(jsonAt(status, "expirationTimestamp")); expiration != "" {
		t, err := time.Parse(time.RFC3339, expiration)
		if err != nil {
			return cred, errors.New("its status.expirationTimestamp is not an RFC 3339 time")
		}
		cred.expires = t
	}
	return cred, nil
}

// readStderr reads a plugin's stderr to the end, so that the plugin never
// blocks on it, and keeps its start.
func readStderr(er *os.File) <-chan []byte {
	stderr := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(er, k8sMaxPluginStderr))
		io.Copy(io.Discard, er)
		stderr <- b
	}()
	return stderr
}

// clientCertificate offers the plugin's certificate when it gave one, else
// the kubeconfig's.
func (p *execPlugin) clientCertificate(static []tls.Certificate) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.cert != nil {
			return p.cert, nil
		}
		if len(static) > 0 {
			return &static[0], nil
		}
		return &tls.Certificate{}, nil
	}
}

// run starts the plugin with stdin on /dev/null (it is never interactive)
// and reads its bounded output; a failure quotes the start of its stderr,
// never its output, which holds the credential. syscall.ForkExec rather than os/exec or os.StartProcess, which
// would cost the binary about 90 KB or 50 KB more.
func (p *execPlugin) run(ctx context.Context, env []string) ([]byte, error) {
	path := p.command
	if !strings.Contains(path, "/") {
		var err error
		if path, err = exec.LookPath(path); err != nil {
			return nil, errors.New("is not in $PATH")
		}
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	er, ew, err := os.Pipe()
	if err != nil {
		w.Close()
		return nil, err
	}
	defer er.Close()
	// In a process group of its own (children.go), so that a timeout
	// kills what it started too, and the end of the run kills it.
	pid, err := startChild(path, append([]string{p.command}, p.args...), env, []uintptr{null.Fd(), w.Fd(), ew.Fd()})
	w.Close()
	ew.Close()
	if err != nil {
		return nil, errorf("cannot be run: %v", err)
	}
	stderr := readStderr(er)
	// Killing is safe until the plugin is reaped, which only this
	// goroutine does (reapChild), after stopping the kill at the deadline.
	kill := func() { syscall.Kill(-pid, syscall.SIGKILL) }
	stop := context.AfterFunc(ctx, func() {
		kill()
		r.SetReadDeadline(time.Now()) // in case something else holds its output
		er.SetReadDeadline(time.Now())
	})
	out, readErr := readBounded(r, -1, k8sMaxExecOutput)
	stop()
	if readErr != nil {
		kill()
	}
	status := reapChild(ctx, pid)
	er.SetReadDeadline(time.Now().Add(100 * time.Millisecond)) // in case its children hold stderr
	said := ""
	if b := bytes.TrimSpace(<-stderr); len(b) > 0 {
		said = ": " + serverText(string(b), k8sMaxPluginStderr)
	}
	switch {
	case ctx.Err() != nil:
		return nil, errorf("did not finish within %v", execPluginTimeout)
	case readErr != nil:
		return nil, errorf("printed more than %d bytes", k8sMaxExecOutput)
	case status.Signaled():
		return nil, errorf("failed: killed by %v%s", status.Signal(), said)
	case status.ExitStatus() != 0:
		return nil, errorf("failed: exit status %d%s", status.ExitStatus(), said)
	}
	return out, nil
}
