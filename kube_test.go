package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// A real Kubernetes API server for the tests: etcd and kube-apiserver built
// by scripts/kube/build.sh, started once per test process on loopback and
// shared by every test, which keeps to its own namespace. There is no
// controller: a test plays the controllers by writing status itself.

// kubeCluster is the running API server and the credentials the tests use.
type kubeCluster struct {
	URL          string // https://127.0.0.1:PORT
	Host, Port   string // for KUBERNETES_SERVICE_HOST and _PORT
	CAPEM        []byte // signs the serving certificate and the client certificates
	CAFile       string // CAPEM in a file every user can read
	AdminToken   string // user "admin" in group system:masters
	LimitedToken string // user "limited", who has no RBAC grant at all

	dir    string // the cluster's files; etcd's data; the logs
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	client *http.Client
	procs  []kubeProcess // in start order
	took   time.Duration // from starting etcd to kube-apiserver's /readyz
}

// kubeProcess is a running server; done closes when it has exited.
type kubeProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

var (
	kubeOnce    sync.Once
	kubeShared  *kubeCluster
	kubeSkip    string // why there is no cluster: binaries missing
	kubeFailure string // why there is no cluster: it did not start
	namespaces  atomic.Int64
)

// kubeBinDir holds kube-apiserver and etcd, as scripts/kube/build.sh leaves
// them.
func kubeBinDir() string {
	if dir := os.Getenv("PORTPATROL_KUBE_BIN"); dir != "" {
		return dir
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(cache, "portpatrol-kube")
}

// startKube returns the cluster of this test process, starting it on first
// use. Without the binaries it skips the test, or fails it when CI=true.
func startKube(t *testing.T) *kubeCluster {
	t.Helper()
	// Started from a goroutine of its own: the servers die with the thread
	// that started them (Pdeathsig), and a test's goroutine may be locked to
	// a thread, in namespaces of its own, that ends with the test.
	started := make(chan struct{})
	go func() { defer close(started); kubeOnce.Do(startKubeOnce) }()
	<-started
	if kubeSkip != "" {
		requirePrivilege(t, false, kubeSkip)
	}
	if kubeFailure != "" {
		t.Fatalf("starting the API server: %s", kubeFailure)
	}
	return kubeShared
}

func startKubeOnce() {
	bin := kubeBinDir()
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			kubeSkip = fmt.Sprintf("%s is not built in %s (run scripts/kube/build.sh; PORTPATROL_KUBE_BIN names another directory)", name, bin)
			return
		}
	}
	k, err := newKubeCluster(bin)
	if err != nil {
		kubeFailure = err.Error()
		if k != nil {
			k.stop()
		}
		return
	}
	kubeShared = k
}

// stopKube stops the shared cluster; TestMain calls it after every test.
func stopKube() {
	if kubeShared != nil {
		kubeShared.stop()
	}
}

func newKubeCluster(bin string) (*kubeCluster, error) {
	dir, err := os.MkdirTemp("", "portpatrol-kube-")
	if err != nil {
		return nil, err
	}
	k := &kubeCluster{dir: dir, AdminToken: randomHex(16), LimitedToken: randomHex(16)}
	if err := os.Chmod(dir, 0o755); err != nil {
		return k, err
	}
	// The servers run from a directory every user can read: the build
	// cache may be under root's home.
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if err := linkOrCopy(filepath.Join(bin, name), filepath.Join(dir, name)); err != nil {
			return k, err
		}
	}
	if err := k.writeCredentials(); err != nil {
		return k, err
	}
	if err := os.Mkdir(filepath.Join(dir, "etcd-data"), 0o700); err != nil {
		return k, err
	}
	if os.Geteuid() == 0 {
		// Root starts the servers as nobody, who must own their files
		// (but not the programs: they are links to the build's).
		err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
			if err != nil || info.Mode()&0o111 != 0 && !info.IsDir() {
				return err
			}
			return os.Lchown(path, nobody, nobody)
		})
		if err != nil {
			return k, err
		}
	}

	start := time.Now()
	etcdPort, peerPort, apiPort := freeLoopbackPort(), freeLoopbackPort(), freeLoopbackPort()
	etcdURL := "http://127.0.0.1:" + etcdPort
	peerURL := "http://127.0.0.1:" + peerPort
	if err := k.run("etcd",
		"--name=test",
		"--data-dir="+filepath.Join(dir, "etcd-data"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=test="+peerURL,
		"--unsafe-no-fsync", // a test's data need not survive a crash
		"--log-level=warn",
	); err != nil {
		return k, err
	}
	if err := waitTCP("127.0.0.1:"+etcdPort, 60*time.Second); err != nil {
		return k, fmt.Errorf("etcd: %v\n%s", err, k.logTail("etcd"))
	}

	file := func(name string) string { return filepath.Join(dir, name) }
	if err := k.run("kube-apiserver",
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--secure-port="+apiPort,
		"--advertise-address=127.0.0.1",
		// The default reconciler would publish 127.0.0.1 as the endpoint of
		// the "kubernetes" Service, which the API rejects as loopback.
		"--endpoint-reconciler-type=none",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--tls-cert-file="+file("serving.crt"), "--tls-private-key-file="+file("serving.key"),
		"--client-ca-file="+file("ca.crt"),
		"--token-auth-file="+file("tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+file("service-account.key"),
		"--service-account-signing-key-file="+file("service-account.key"),
		// ServiceAccount admission rejects a pod whose service account does
		// not exist yet, and in a cluster without controllers nothing makes
		// the "default" one; it would also refuse every dry-run pod of the
		// examples whose ServiceAccount is in the same manifest.
		"--disable-admission-plugins=ServiceAccount",
	); err != nil {
		return k, err
	}
	k.Host, k.Port = "127.0.0.1", apiPort
	k.URL = "https://127.0.0.1:" + apiPort
	pool := x509.NewCertPool()
	pool.AddCert(k.ca)
	k.client = &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		Timeout:   30 * time.Second,
	}
	err = k.waitReady(120 * time.Second)
	k.took = time.Since(start)
	return k, err
}

// writeCredentials makes the CA, the serving certificate, the tokens and the
// service-account signing key in the cluster's directory.
func (k *kubeCluster) writeCredentials() error {
	var err error
	k.caKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "portpatrol test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &k.caKey.PublicKey, k.caKey)
	if err != nil {
		return err
	}
	if k.ca, err = x509.ParseCertificate(der); err != nil {
		return err
	}
	k.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	k.CAFile = filepath.Join(k.dir, "ca.crt")

	servingCert, servingKey, err := k.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, net.IPv4(10, 0, 0, 1)},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
	})
	if err != nil {
		return err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	saDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return err
	}
	// token,user,uid,"groups": the static token file's format.
	tokens := fmt.Sprintf("%s,admin,admin,\"system:masters\"\n%s,limited,limited\n", k.AdminToken, k.LimitedToken)
	for name, content := range map[string][]byte{
		"ca.crt":              k.CAPEM,
		"serving.crt":         servingCert,
		"serving.key":         servingKey,
		"service-account.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saDER}),
		"tokens.csv":          []byte(tokens),
	} {
		mode := os.FileMode(0o600)
		if name == "ca.crt" {
			mode = 0o644
		}
		if err := os.WriteFile(filepath.Join(k.dir, name), content, mode); err != nil {
			return err
		}
	}
	return nil
}

// issue signs a certificate from template with the test CA and returns it
// and its new key, PEM-encoded.
func (k *kubeCluster) issue(template *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	template.SerialNumber = serial
	template.NotBefore = time.Now().Add(-time.Hour)
	template.NotAfter = time.Now().Add(24 * time.Hour)
	template.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, template, k.ca, &key.PublicKey, k.caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// run starts one of the cluster's servers, as nobody when we are root, with
// its output in NAME.log. It dies with the test process if that crashes.
func (k *kubeCluster) run(name string, args ...string) error {
	log, err := os.Create(filepath.Join(k.dir, name+".log"))
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(filepath.Join(k.dir, name), args...)
	cmd.Dir = k.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + k.dir}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: nobody, Gid: nobody}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	k.procs = append(k.procs, kubeProcess{cmd, done})
	return nil
}

// waitReady waits until /readyz says every part of the server is ready.
func (k *kubeCluster) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	last := "no answer"
	for time.Now().Before(deadline) {
		status, body, err := k.send(k.AdminToken, "GET", "/readyz", "", nil)
		if err == nil && status == http.StatusOK {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("status %d: %s", status, body)
		}
		select {
		case <-k.procs[len(k.procs)-1].done:
			return fmt.Errorf("kube-apiserver exited (%s)\n%s", last, k.logTail("kube-apiserver"))
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("kube-apiserver not ready within %v (%s)\n%s", within, last, k.logTail("kube-apiserver"))
}

func (k *kubeCluster) logTail(name string) string {
	b, _ := os.ReadFile(filepath.Join(k.dir, name+".log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return name + ".log ends:\n" + string(b)
}

// stop ends the servers, newest first, and removes their files.
func (k *kubeCluster) stop() {
	for i := len(k.procs) - 1; i >= 0; i-- {
		p := k.procs[i]
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	os.RemoveAll(k.dir)
}

// send makes one request with a bearer token ("" for none).
func (k *kubeCluster) send(token, method, path, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, k.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// request makes one request with token; a PATCH is a JSON merge patch.
func (k *kubeCluster) request(t *testing.T, token, method, path, body string) (int, []byte) {
	t.Helper()
	contentType := "application/json"
	if method == "PATCH" {
		contentType = "application/merge-patch+json"
	}
	if body == "" {
		contentType = ""
	}
	status, b, err := k.send(token, method, path, contentType, []byte(body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return status, b
}

// do makes one request as the admin; body is JSON ("" for none), and a
// PATCH is a JSON merge patch.
func (k *kubeCluster) do(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	return k.request(t, k.AdminToken, method, path, body)
}

// mustDo is do that fails the test unless the status is 2xx.
func (k *kubeCluster) mustDo(t *testing.T, method, path, body string) []byte {
	t.Helper()
	status, b := k.do(t, method, path, body)
	if status/100 != 2 {
		t.Fatalf("%s %s: status %d: %s", method, path, status, b)
	}
	return b
}

// namespace creates a namespace of its own for the test and returns its
// name. Without a namespace controller a deleted namespace would stay
// Terminating, so it is left in place: the cluster ends with the process.
func (k *kubeCluster) namespace(t *testing.T) string {
	t.Helper()
	base := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
	if len(base) > 40 {
		base = base[:40]
	}
	name := strings.Trim(fmt.Sprintf("t%d-%s", namespaces.Add(1), base), "-")
	k.mustDo(t, "POST", "/api/v1/namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"`+name+`"}}`)
	return name
}

// manifestObjects reads YAML or JSON documents (several separated by ---)
// into objects, skipping empty documents.
func manifestObjects(t *testing.T, manifest string) []map[string]any {
	t.Helper()
	var objects []map[string]any
	dec := yaml.NewDecoder(strings.NewReader(manifest))
	for {
		var object map[string]any
		err := dec.Decode(&object)
		if errors.Is(err, io.EOF) {
			return objects
		}
		if err != nil {
			t.Fatalf("reading the manifest: %v\n%s", err, manifest)
		}
		if object != nil {
			objects = append(objects, object)
		}
	}
}

// toJSON reads one YAML or JSON document and writes it as JSON.
func toJSON(t *testing.T, doc string) string {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("reading %q: %v", doc, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("writing %q as JSON: %v", doc, err)
	}
	return string(b)
}

// collection is the path of the collection that holds objects of kind in
// apiVersion, in namespace ns for a namespaced kind, found by the API's
// discovery like kubectl does. A kind its CRD has just added may take a
// moment to appear.
func (k *kubeCluster) collection(t *testing.T, apiVersion, kind, ns string) (path string, namespaced bool) {
	t.Helper()
	prefix := "/apis/" + apiVersion
	if apiVersion == "v1" {
		prefix = "/api/v1"
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var list struct {
			Resources []struct {
				Name       string `json:"name"`
				Kind       string `json:"kind"`
				Namespaced bool   `json:"namespaced"`
			} `json:"resources"`
		}
		status, b := k.do(t, "GET", prefix, "")
		if status == http.StatusOK {
			if err := json.Unmarshal(b, &list); err != nil {
				t.Fatalf("discovery %s: %v", prefix, err)
			}
			for _, r := range list.Resources {
				if r.Kind != kind || strings.Contains(r.Name, "/") {
					continue
				}
				if !r.Namespaced {
					return prefix + "/" + r.Name, false
				}
				if ns == "" {
					t.Fatalf("%s %s is namespaced: give a namespace", apiVersion, kind)
				}
				return prefix + "/namespaces/" + ns + "/" + r.Name, true
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API server has no kind %s in %s (discovery: status %d)", kind, apiVersion, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createAll creates every object of a YAML or JSON manifest, the namespaced
// ones in ns, and returns their paths (for get, patch, patchStatus, delete).
func (k *kubeCluster) createAll(t *testing.T, ns, manifest string) []string {
	t.Helper()
	var paths []string
	for _, object := range manifestObjects(t, manifest) {
		paths = append(paths, k.post(t, ns, object, ""))
	}
	return paths
}

// create creates the one object of a YAML or JSON manifest (in ns when it
// is namespaced) and returns its path.
func (k *kubeCluster) create(t *testing.T, ns, manifest string) string {
	t.Helper()
	paths := k.createAll(t, ns, manifest)
	if len(paths) != 1 {
		t.Fatalf("create wants one object, the manifest has %d", len(paths))
	}
	return paths[0]
}

// post sends object to its collection with the query (such as
// "dryRun=All") and returns the new object's path; anything but 2xx fails
// the test with the server's message.
func (k *kubeCluster) post(t *testing.T, ns string, object map[string]any, query string) string {
	t.Helper()
	apiVersion, _ := object["apiVersion"].(string)
	kind, _ := object["kind"].(string)
	metadata, _ := object["metadata"].(map[string]any)
	name, _ := metadata["name"].(string)
	if apiVersion == "" || kind == "" || name == "" {
		t.Fatalf("an object needs apiVersion, kind and metadata.name: %v", object)
	}
	path, namespaced := k.collection(t, apiVersion, kind, ns)
	if namespaced {
		metadata["namespace"] = ns
	}
	body, err := json.Marshal(object)
	if err != nil {
		t.Fatal(err)
	}
	url := path
	if query != "" {
		url += "?" + query
	}
	status, b := k.do(t, "POST", url, string(body))
	if status/100 != 2 {
		t.Fatalf("creating %s %s: status %d: %s", kind, name, status, b)
	}
	return path + "/" + name
}

// get reads the object at path.
func (k *kubeCluster) get(t *testing.T, path string) map[string]any {
	t.Helper()
	var object map[string]any
	if err := json.Unmarshal(k.mustDo(t, "GET", path, ""), &object); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return object
}

// patch merges patch (YAML or JSON) into the object at path, as a user edits
// its spec or labels.
func (k *kubeCluster) patch(t *testing.T, path, patch string) {
	t.Helper()
	k.mustDo(t, "PATCH", path, toJSON(t, patch))
}

// patchStatus merges patch (YAML or JSON, starting at "status:") into the
// object's status subresource, as its controller would. Lists such as
// conditions are replaced whole.
func (k *kubeCluster) patchStatus(t *testing.T, path, patch string) {
	t.Helper()
	k.mustDo(t, "PATCH", path+"/status", toJSON(t, patch))
}

// delete deletes the object at path; cluster objects with finalizers stay
// until something removes them.
func (k *kubeCluster) delete(t *testing.T, path string) {
	t.Helper()
	k.mustDo(t, "DELETE", path, "")
}

// grant lets user (a user name; a service account's is
// system:serviceaccount:NS:NAME) get, list and watch resource ("jobs.batch",
// "pods") in ns, through a Role and a RoleBinding named after both. The
// server's authorizer sees them a moment later, not at once.
func (k *kubeCluster) grant(t *testing.T, ns, user, resource string) {
	t.Helper()
	name := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9.]+`).ReplaceAllString(user+"-"+resource, "-"))
	plural, group, _ := strings.Cut(resource, ".")
	rules, _ := json.Marshal([]any{map[string]any{
		"apiGroups": []string{group}, "resources": []string{plural}, "verbs": []string{"get", "list", "watch"}}})
	subjects, _ := json.Marshal([]any{map[string]any{
		"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}})
	k.create(t, ns, `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"`+name+`"},"rules":`+string(rules)+`}`)
	k.create(t, ns, `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"`+name+`"},
		"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"`+name+`"},"subjects":`+string(subjects)+`}`)
}

// clientCert mints a client certificate of the test CA for user in groups,
// which the API server takes as that user.
func (k *kubeCluster) clientCert(t *testing.T, user string, groups ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := k.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: groups},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

// serviceAccountToken makes the service account ns/name if it is not there
// and returns a bound token for it from the TokenRequest API, as the kubelet
// mounts in a pod.
func (k *kubeCluster) serviceAccountToken(t *testing.T, ns, name string) string {
	t.Helper()
	status, b := k.do(t, "POST", "/api/v1/namespaces/"+ns+"/serviceaccounts",
		`{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"`+name+`"}}`)
	if status != http.StatusCreated && status != http.StatusConflict {
		t.Fatalf("creating service account %s/%s: status %d: %s", ns, name, status, b)
	}
	b = k.mustDo(t, "POST", "/api/v1/namespaces/"+ns+"/serviceaccounts/"+name+"/token",
		`{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}`)
	var review struct {
		Status struct {
			Token string `json:"token"`
		} `json:"status"`
	}
	if err := json.Unmarshal(b, &review); err != nil || review.Status.Token == "" {
		t.Fatalf("token request for %s/%s: %v: %s", ns, name, err, b)
	}
	return review.Status.Token
}

// kubeconfig writes a kubeconfig file for this cluster whose one context
// uses user (see tokenUser, certUser, execUser) and namespace ns ("" for
// none), and returns its path.
func (k *kubeCluster) kubeconfig(t *testing.T, ns string, user map[string]any) string {
	t.Helper()
	context := map[string]any{"cluster": "test", "user": "test"}
	if ns != "" {
		context["namespace"] = ns
	}
	config := map[string]any{
		"apiVersion": "v1",
		"kind":       "Config",
		"clusters": []any{map[string]any{"name": "test", "cluster": map[string]any{
			"server": k.URL, "certificate-authority": k.CAFile}}},
		"users":           []any{map[string]any{"name": "test", "user": user}},
		"contexts":        []any{map[string]any{"name": "test", "context": context}},
		"current-context": "test",
	}
	b, err := yaml.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tokenUser is a kubeconfig user with a bearer token.
func tokenUser(token string) map[string]any {
	return map[string]any{"token": token}
}

// certUser is a kubeconfig user with a new client certificate for user in
// groups, in files.
func (k *kubeCluster) certUser(t *testing.T, user string, groups ...string) map[string]any {
	t.Helper()
	certPEM, keyPEM := k.clientCert(t, user, groups...)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]any{"client-certificate": certFile, "client-key": keyFile}
}

// execUser is a kubeconfig user whose credentials an exec plugin prints
// (client.authentication.k8s.io/v1).
func execUser(command string, args ...string) map[string]any {
	exec := map[string]any{
		"apiVersion":      "client.authentication.k8s.io/v1",
		"command":         command,
		"interactiveMode": "Never",
	}
	if len(args) > 0 {
		exec["args"] = args
	}
	return map[string]any{"exec": exec}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// freeLoopbackPort is a loopback TCP port that was free a moment ago.
func freeLoopbackPort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func waitTCP(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing accepted on %s within %v", addr, within)
}

// linkOrCopy puts the file src at dst, as a hard link when both are on the
// same file system.
func linkOrCopy(src, dst string) error {
	if os.Link(src, dst) == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// runJob writes the status a Job controller writes when the Job's pod
// starts.
func (k *kubeCluster) runJob(t *testing.T, path string) {
	t.Helper()
	k.patchStatus(t, path, `{"status":{"startTime":"`+k.jobStartTime(t, path)+`","active":1,"ready":0}}`)
}

// jobStartTime is the Job's status.startTime, or now when it has none: once
// set, the API refuses to change it.
func (k *kubeCluster) jobStartTime(t *testing.T, path string) string {
	t.Helper()
	status, _ := k.get(t, path)["status"].(map[string]any)
	if start, ok := status["startTime"].(string); ok {
		return start
	}
	return time.Now().UTC().Format(time.RFC3339)
}

// completeJob writes the status of a Job whose one pod succeeded, as the
// API validates it: a start and a completion time, no active pod, and
// Complete=True together with SuccessCriteriaMet=True.
func (k *kubeCluster) completeJob(t *testing.T, path string) {
	t.Helper()
	start, now := k.jobStartTime(t, path), time.Now().UTC().Format(time.RFC3339)
	k.patchStatus(t, path, `{"status":{"startTime":"`+start+`","completionTime":"`+now+`","active":0,"ready":0,"succeeded":1,
		"conditions":[
			{"type":"SuccessCriteriaMet","status":"True","reason":"CompletionsReached","lastTransitionTime":"`+now+`"},
			{"type":"Complete","status":"True","reason":"CompletionsReached","lastTransitionTime":"`+now+`"}]}}`)
}

// failJob writes the status of a Job that failed for reason with message:
// Failed=True needs FailureTarget=True beside it.
func (k *kubeCluster) failJob(t *testing.T, path, reason, message string) {
	t.Helper()
	now := time.Now().UTC().Format(time.RFC3339)
	condition := func(kind string) map[string]any {
		return map[string]any{"type": kind, "status": "True", "reason": reason, "message": message, "lastTransitionTime": now}
	}
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{
		"startTime": k.jobStartTime(t, path), "active": 0, "ready": 0, "failed": 1,
		"conditions": []any{condition("FailureTarget"), condition("Failed")},
	}})
	k.patchStatus(t, path, string(patch))
}

// whoami asks the API server who a client is (a SelfSubjectReview, which
// every authenticated user may make).
func (k *kubeCluster) whoami(t *testing.T, client *http.Client, token string) (user string, groups []string) {
	t.Helper()
	req, _ := http.NewRequest("POST", k.URL+"/apis/authentication.k8s.io/v1/selfsubjectreviews",
		strings.NewReader(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("self-subject review: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var review struct {
		Status struct {
			UserInfo struct {
				Username string   `json:"username"`
				Groups   []string `json:"groups"`
			} `json:"userInfo"`
		} `json:"status"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &review) != nil {
		t.Fatalf("self-subject review: status %d: %s", resp.StatusCode, b)
	}
	return review.Status.UserInfo.Username, review.Status.UserInfo.Groups
}

// The harness itself: the cluster starts, takes objects, lets a test write
// a Job's status as its controller would, tells users apart by token,
// client certificate and service-account token, and refuses the user
// without RBAC.
func TestKubeHarness(t *testing.T) {
	k := startKube(t)
	var version struct{ GitVersion string }
	json.Unmarshal(k.mustDo(t, "GET", "/version", ""), &version)
	t.Logf("kube-apiserver %s and etcd were ready %v after they started", version.GitVersion, k.took.Round(time.Millisecond))
	if os.Geteuid() == 0 {
		for _, p := range k.procs {
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
			if want := fmt.Sprintf("\nUid:\t%d\t%d\t", nobody, nobody); err != nil || !strings.Contains(string(status), want) {
				t.Errorf("%s does not run as nobody (%v):\n%s", p.cmd.Path, err, status)
			}
		}
	}
	ns := k.namespace(t)

	job := k.create(t, ns, `
apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: registry.example.com/migrate:v1}]
`)
	if want := "/apis/batch/v1/namespaces/" + ns + "/jobs/migrate"; job != want {
		t.Errorf("create returned %q, want %q", job, want)
	}
	k.runJob(t, job)
	k.completeJob(t, job)
	var got struct {
		Status struct {
			Succeeded  int
			Conditions []struct{ Type, Status string }
		}
	}
	if err := json.Unmarshal(k.mustDo(t, "GET", job, ""), &got); err != nil {
		t.Fatal(err)
	}
	complete := false
	for _, c := range got.Status.Conditions {
		complete = complete || c.Type == "Complete" && c.Status == "True"
	}
	if !complete || got.Status.Succeeded != 1 {
		t.Errorf("the Job's status as read back: %+v, want Complete=True and 1 succeeded", got.Status)
	}

	failed := k.create(t, ns, strings.Replace(`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"NAME"},
		"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}}}`, "NAME", "broken", 1))
	k.failJob(t, failed, "BackoffLimitExceeded", "Job has reached the specified backoff limit")
	if status := k.get(t, failed)["status"].(map[string]any); status["failed"] != 1.0 {
		t.Errorf("the failed Job's status: %v", status)
	}

	// Without a ServiceAccount admission plugin and without a kubelet, a
	// pod is just an object whose status the test writes.
	pod := k.create(t, ns, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"app":"web"}},
		"spec":{"containers":[{"name":"web","image":"nginx"}]}}`)
	k.patchStatus(t, pod, `{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}`)
	k.patch(t, pod, "metadata: {labels: {tier: front}}")
	labels := k.get(t, pod)["metadata"].(map[string]any)["labels"].(map[string]any)
	if labels["app"] != "web" || labels["tier"] != "front" {
		t.Errorf("labels after a merge patch: %v", labels)
	}
	k.delete(t, pod)
	if status, _ := k.do(t, "GET", pod, ""); status != http.StatusNotFound {
		t.Errorf("GET of a deleted pod: status %d, want 404", status)
	}

	status, body := k.request(t, k.LimitedToken, "GET", job, "")
	if status != http.StatusForbidden || !strings.Contains(string(body), `User \"limited\" cannot get resource \"jobs\"`) {
		t.Errorf("the limited token reading a Job: status %d: %s, want 403", status, body)
	}
	k.grant(t, ns, "limited", "jobs.batch")
	// The authorizer learns of the grant through its informer, not at once.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		status, body := k.request(t, k.LimitedToken, "GET", job, "")
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the limited token reading a Job once granted: status %d: %s, want 200", status, body)
		}
	}
	if status, body := k.request(t, "not-a-token", "GET", job, ""); status != http.StatusUnauthorized {
		t.Errorf("an unknown token: status %d: %s, want 401", status, body)
	}

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(k.CAPEM)
	certPEM, keyPEM := k.clientCert(t, "carol", "ops", "system:masters")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	withCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	for _, c := range []struct {
		name   string
		client *http.Client
		token  string
		user   string
		group  string
	}{
		{"admin token", plain, k.AdminToken, "admin", "system:masters"},
		{"limited token", plain, k.LimitedToken, "limited", "system:authenticated"},
		{"client certificate", withCert, "", "carol", "ops"},
		{"service-account token", plain, k.serviceAccountToken(t, ns, "portpatrol"), "system:serviceaccount:" + ns + ":portpatrol", "system:serviceaccounts:" + ns},
	} {
		user, groups := k.whoami(t, c.client, c.token)
		if user != c.user || !strings.Contains(strings.Join(groups, ","), c.group) {
			t.Errorf("%s: the server sees user %q in %v, want %q in %s", c.name, user, groups, c.user, c.group)
		}
	}

	config, err := os.ReadFile(k.kubeconfig(t, ns, tokenUser(k.LimitedToken)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"server: " + k.URL, "certificate-authority: " + k.CAFile, "namespace: " + ns, "current-context: test"} {
		if !strings.Contains(string(config), want) {
			t.Errorf("the kubeconfig lacks %q:\n%s", want, config)
		}
	}
}

// Every manifest under examples/kubernetes/ passes the real API server's
// strict validation (unknown or duplicate fields are errors, not warnings),
// so the README's recipes are known to apply. Nothing is stored: the
// server runs its validation and admission and stops there.
func TestKubernetesExamplesApplyStrictly(t *testing.T) {
	files, err := filepath.Glob("examples/kubernetes/*.y*ml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in examples/kubernetes (%v)", err)
	}
	k := startKube(t)
	ns := k.namespace(t)
	const strict = "dryRun=All&fieldValidation=Strict"
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			objects := manifestObjects(t, string(b))
			if len(objects) == 0 {
				t.Fatal("no objects in the manifest")
			}
			for _, object := range objects {
				k.post(t, ns, object, strict)
			}
		})
	}

	// The check itself: a misspelt field is refused, not dropped.
	status, body := k.do(t, "POST", "/apis/apps/v1/namespaces/"+ns+"/deployments?"+strict, toJSON(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: typo}
spec:
  selector: {matchLabels: {app: typo}}
  template:
    metadata: {labels: {app: typo}}
    spec:
      initContainers: [{name: wait, image: portpatrol, arg: ["--k8s.x.address=job/x"]}]
      containers: [{name: app, image: app}]
`))
	if status != http.StatusBadRequest || !strings.Contains(string(body), `unknown field \"spec.template.spec.initContainers[0].arg\"`) {
		t.Errorf("a Deployment with the unknown field arg: status %d: %s, want 400 naming the field", status, body)
	}
}

// kubectl runs the kubectl that scripts/kube/build.sh built, the oracle of
// the differential tests: the same kubeconfig and server as portpatrol, so
// that their verdicts can be compared. env is added to a clean
// environment (no $KUBECONFIG, not in a pod, a home of its own). It
// returns kubectl's exit code and output.
func kubectl(t *testing.T, env []string, kubeconfig string, args ...string) (int, string) {
	t.Helper()
	bin := filepath.Join(kubeBinDir(), "kubectl")
	if _, err := os.Stat(bin); err != nil {
		requirePrivilege(t, false, "kubectl is not built in "+kubeBinDir()+" (run scripts/kube/build.sh)")
	}
	cmd := exec.Command(bin, append([]string{"--kubeconfig=" + kubeconfig, "--request-timeout=5s"}, args...)...)
	cmd.Env = append(os.Environ(), append([]string{"KUBECONFIG=", "KUBERNETES_SERVICE_HOST=", "HOME=" + t.TempDir()}, env...)...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("kubectl %v: %v", args, err)
	}
	return 0, string(out)
}

// mustKubectl is kubectl that fails the test unless it exits 0.
func mustKubectl(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	code, out := kubectl(t, nil, kubeconfig, args...)
	if code != 0 {
		t.Fatalf("kubectl %v: exit %d:\n%s", args, code, out)
	}
	return out
}
