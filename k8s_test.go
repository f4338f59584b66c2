package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Unit tests of the k8s type: flags, kubeconfig, readiness rules, and a
// fake API server over TLS for states hard to make on the real one. The
// acceptance tests against a real kube-apiserver are in k8s_kube_test.go.

func TestK8sStartupErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := writeTestKubeconfig(t, dir, "https://127.0.0.1:1", "token: s3cr3t-token")
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("clusters: [\n"), 0o600)
	wrongType := filepath.Join(dir, "wrongtype")
	os.WriteFile(wrongType, []byte("apiVersion: v1\nclusters: 5\n"), 0o600)
	noCtx := filepath.Join(dir, "noctx")
	os.WriteFile(noCtx, []byte("clusters: []\n"), 0o600)
	asGroupsOnly := filepath.Join(dir, "asgroups")
	os.WriteFile(asGroupsOnly, []byte(strings.Replace(mustRead(t, good), "token: s3cr3t-token", "token: s3cr3t-token\n    as-groups: [ops]", 1)), 0o600)
	badProxy := filepath.Join(dir, "badproxy")
	os.WriteFile(badProxy, []byte(strings.Replace(mustRead(t, good), "server: https://127.0.0.1:1", "server: https://127.0.0.1:1\n    proxy-url: \"ftp://proxy:pr0xy-s3cr3t@127.0.0.1:1\"", 1)), 0o600)
	badNS := filepath.Join(dir, "badns")
	os.WriteFile(badNS, []byte(strings.Replace(mustRead(t, good), "namespace: shop", "namespace: Shop_1", 1)), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--k8s.a.address=job"}, "--k8s.a.address=job: want KIND/NAME, or KIND alone with --k8s.a.selector"},
		{[]string{"--k8s.a.address=giz_mo/x"}, `--k8s.a.address=giz_mo/x: unknown kind "giz_mo"`},
		{[]string{"--k8s.a.address=job/"}, "--k8s.a.address=job/: want KIND/NAME"},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.selector=app=x"}, "--k8s.a.selector goes with an address of KIND alone"},
		{[]string{"--k8s.a.address=job", "--k8s.a.selector=app=-x"}, `--k8s.a.selector=app=-x: "-x" is not a label value`},
		{[]string{"--k8s.a.address=job", "--k8s.a.selector=app in a,b"}, `--k8s.a.selector="app in a,b": "in" needs its values in parentheses`},
		{[]string{"--k8s.a.address=job", "--k8s.a.selector=a b=c"}, `--k8s.a.selector="a b=c": "a b" is not a label key`},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.for=field=status..phase=x"}, `--k8s.a.for=field=status..phase=x: field: path "status..phase" has an empty segment after "status"`},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.for=field={.status.succeeded}=1"}, `--k8s.a.for=field={.status.succeeded}=1: {.status.succeeded}=1 is a kubectl jsonpath; write it as a dot path: field=status.succeeded=1`},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.for=jsonpath={.status.phase}=Running"}, `kubectl's jsonpath is written as a dot path here: field=status.phase=Running`},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.for=field=status.ready>=many"}, `field: status.ready>= needs a number after it, e.g. status.ready>=2`},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.for=deleted", "--k8s.a.invert"}, `--k8s.a.for=deleted does not go with --k8s.a.invert: to wait until the object exists, use --k8s.a.for=exists`},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.for=exists", "--k8s.a.if-missing=ready"}, `--k8s.a.if-missing=ready does not go with --k8s.a.for=exists: a missing object would count as there`},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.invert", "--k8s.a.if-missing=ready"}, `--k8s.a.if-missing=ready does not go with --k8s.a.invert: a missing object would count as still there`},
		{[]string{"--k8s.a.address=job", "--k8s.a.selector=n>x"}, `"n>x" compares with >, which needs an integer`},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.kubeconfig=" + asGroupsOnly}, "the user's as-uid, as-groups or as-user-extra need as (the user to impersonate)"},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.kubeconfig=" + badProxy}, `the cluster's proxy-url "ftp://proxy:xxxxx@127.0.0.1:1" is not an http://, https:// or socks5:// URL`},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.for=condition"}, "--k8s.a.for=condition: condition needs a type"},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.for=done"}, "--k8s.a.for=done: want ready, exists, deleted"},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.if-missing=maybe"}, "--k8s.a.if-missing=maybe: want wait or ready"},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.namespace=Shop"}, "--k8s.a.namespace=Shop: not a namespace name"},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.kubeconfig=" + filepath.Join(dir, "missing")}, "--k8s.a.kubeconfig=" + filepath.Join(dir, "missing") + ": cannot read"},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.kubeconfig=" + bad}, "portpatrol: --k8s.a.kubeconfig=" + bad + ": not a valid kubeconfig: not valid YAML: syntax error at line 1\n"},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.kubeconfig=" + wrongType}, "portpatrol: --k8s.a.kubeconfig=" + wrongType + ": not a valid kubeconfig: a value of the wrong type, or a repeated key, at line 2\n"},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.kubeconfig=" + noCtx}, "sets no current-context: give --k8s.a.context"},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.kubeconfig=" + good, "--k8s.a.context=other"}, `has no context "other" (it has: test)`},
		{[]string{"--k8s.a.address=job/Bad_Name", "--k8s.a.kubeconfig=" + good, "--timeout=1s"}, `--k8s.a.address=job/Bad_Name: "Bad_Name" is not a valid job name (lower-case letters, digits, - and ., at most 253, starting and ending with a letter or digit)`},
		{[]string{"--k8s.a.address=deploy/api.", "--k8s.a.kubeconfig=" + good, "--timeout=1s"}, `"api." is not a valid deployment name`},
		{[]string{"--k8s.a.address=pod/" + strings.Repeat("a", 254), "--k8s.a.kubeconfig=" + good, "--timeout=1s"}, `is not a valid pod name`},
		{[]string{"--k8s.a.address=svc/1db", "--k8s.a.kubeconfig=" + good, "--timeout=1s"}, `"1db" is not a valid service name (lower-case letters, digits and -, at most 63, starting with a letter and ending with a letter or digit)`},
		{[]string{"--k8s.a.address=ns/a.b", "--k8s.a.kubeconfig=" + good, "--timeout=1s"}, `"a.b" is not a valid namespace name (lower-case letters, digits and -, at most 63, starting and ending with a letter or digit)`},
		{[]string{"--k8s.a.address=certificates.cert-manager.io/Web", "--k8s.a.kubeconfig=" + good, "--timeout=1s"}, `"Web" is not a valid certificates.cert-manager.io name`},
		{[]string{"--k8s.a.address=clusterroles.rbac.authorization.k8s.io/..", "--k8s.a.kubeconfig=" + good, "--timeout=1s"}, `want KIND/NAME with a name`},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.min=2", "--k8s.a.kubeconfig=" + good, "--timeout=1s"}, "--k8s.a.address=job/x: --k8s.a.min does not go with a name: it counts the objects --k8s.a.selector matches, or a Service's ready endpoints"},
		{[]string{"--k8s.a.address=certificates.cert-manager.io/web", "--k8s.a.min=2", "--k8s.a.kubeconfig=" + good, "--timeout=1s"}, "--k8s.a.min does not go with a name"},
		{[]string{"--k8s.a.address=svc/db", "--k8s.a.min=2", "--k8s.a.for=exists", "--k8s.a.kubeconfig=" + good, "--timeout=1s"}, "--k8s.a.min counts a Service's ready endpoints, which only --k8s.a.for=ready looks at, not --k8s.a.for=exists"},
		{[]string{"--k8s.a.address=job/x", "--k8s.a.kubeconfig=" + badNS, "--timeout=1s"}, `context "test": its namespace "Shop_1" is not a namespace name`},
	} {
		o := runPortpatrol(t, []string{"KUBECONFIG=", "KUBERNETES_SERVICE_HOST="}, tc.args...)
		o.mustExit(t, 2)
		if !strings.Contains(o.stderr, tc.want) {
			t.Errorf("%v: stderr lacks %q:\n%s", tc.args, tc.want, o.stderr)
		}
		if strings.Contains(o.stderr, "s3cr3t-token") || strings.Contains(o.stderr, "pr0xy-s3cr3t") {
			t.Errorf("%v: the token is in the output:\n%s", tc.args, o.stderr)
		}
	}
	// Without any credentials at all.
	o := runPortpatrol(t, []string{"KUBECONFIG=", "KUBERNETES_SERVICE_HOST=", "HOME=" + dir}, "--k8s.a.address=job/x")
	o.mustExit(t, 2)
	if !strings.Contains(o.stderr, "no credentials for the API server: give --k8s.a.kubeconfig") {
		t.Errorf("stderr: %s", o.stderr)
	}
}

// Names the API accepts are accepted: Kubernetes' own groups, reached as
// RESOURCE.GROUP, name some objects with colons. min goes with a selector
// and with a Service.
func TestK8sValidNames(t *testing.T) {
	t.Parallel()
	kc := writeTestKubeconfig(t, t.TempDir(), "https://127.0.0.1:1", "token: x")
	for _, args := range [][]string{{"--k8s.a.address=job/migrate-2"}, {"--k8s.a.address=deploy/api.v2"}, {"--k8s.a.address=crd/certificates.cert-manager.io"},
		{"--k8s.a.address=node/ip-10-0-0-1.ec2.internal"}, {"--k8s.a.address=svc/db"}, {"--k8s.a.address=ns/shop"},
		{"--k8s.a.address=clusterroles.rbac.authorization.k8s.io/system:aggregate-to-view"}, {"--k8s.a.address=pod/" + strings.Repeat("a", 253)},
		{"--k8s.a.address=svc/db", "--k8s.a.min=2"}, {"--k8s.a.address=pods", "--k8s.a.selector=app=x", "--k8s.a.min=2"}} {
		o := runPortpatrol(t, []string{"KUBECONFIG=", "KUBERNETES_SERVICE_HOST="}, append(args, "--k8s.a.kubeconfig="+kc, "--k8s.a.timeout=50ms", "--timeout=100ms")...)
		if o.code != 1 {
			t.Errorf("%s: exit %d, want 1 (not ready):\n%s", args, o.code, o.stderr)
		}
	}
}

func writeTestKubeconfig(t *testing.T, dir, server, user string) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "kubeconfig-")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: c\n  cluster:\n    server: %s\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    %s\ncontexts:\n- name: test\n  context: {cluster: c, user: u, namespace: shop}\n", server, user)
	f.Close()
	return f.Name()
}

func TestKubeconfigMergeFirstWins(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	b := filepath.Join(dir, "b")
	os.WriteFile(a, []byte("contexts:\n- name: x\n  context: {cluster: one, namespace: first}\nclusters:\n- name: one\n  cluster: {server: 'https://one:1'}\n"), 0o600)
	os.WriteFile(b, []byte("current-context: x\ncontexts:\n- name: x\n  context: {cluster: two, namespace: second}\nclusters:\n- name: one\n  cluster: {server: 'https://ignored:1'}\n- name: two\n  cluster: {server: 'https://two:1'}\n"), 0o600)
	t.Setenv("KUBECONFIG", a+":"+filepath.Join(dir, "missing")+":"+b)
	s := &targetSpec{kind: "k8s", id: "t"}
	api, err := newKubeAPI(s, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if api.server != "https://one:1" || api.namespace != "first" {
		t.Errorf("server %s namespace %s, want https://one:1 and first (the first file's)", api.server, api.namespace)
	}
}

func TestK8sReadinessRules(t *testing.T) {
	for _, tc := range []struct {
		rule, object, want string
		final              bool
	}{
		{"job", `{"status":{"active":1}}`, "not complete (active 1, succeeded 0, failed 0)", false},
		{"job", `{"status":{"conditions":[{"type":"Complete","status":"True"}]}}`, "", false},
		{"job", `{"status":{"conditions":[{"type":"Failed","status":"True","reason":"BackoffLimitExceeded","message":"Job has reached the specified backoff limit"}]}}`, "failed: BackoffLimitExceeded: Job has reached the specified backoff limit", true},
		{"deployment", `{"metadata":{"generation":2},"spec":{"replicas":3},"status":{"observedGeneration":1}}`, "waiting for the new spec to be observed", false},
		{"deployment", `{"metadata":{"generation":2},"spec":{"replicas":3},"status":{"observedGeneration":2,"updatedReplicas":1,"replicas":3}}`, "1 of 3 replicas updated", false},
		{"deployment", `{"metadata":{"generation":2},"spec":{"replicas":3},"status":{"observedGeneration":2,"updatedReplicas":3,"replicas":4}}`, "1 old replicas are pending termination", false},
		{"deployment", `{"metadata":{"generation":2},"spec":{"replicas":3},"status":{"observedGeneration":2,"updatedReplicas":3,"replicas":3,"availableReplicas":2}}`, "2 of 3 updated replicas available", false},
		{"deployment", `{"metadata":{"generation":2},"spec":{"replicas":3},"status":{"observedGeneration":2,"updatedReplicas":3,"replicas":3,"availableReplicas":3}}`, "", false},
		{"deployment", `{"metadata":{"generation":1},"status":{"observedGeneration":1,"conditions":[{"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded","message":"ReplicaSet \"api-1\" has timed out progressing."}]}}`, `rollout exceeded its progress deadline: ProgressDeadlineExceeded: ReplicaSet "api-1" has timed out progressing.`, true},
		{"statefulset", `{"spec":{"replicas":2},"status":{"readyReplicas":2,"updatedReplicas":2,"currentRevision":"a","updateRevision":"b"}}`, "rolling update from revision a to b not finished", false},
		{"statefulset", `{"spec":{"replicas":2},"status":{"readyReplicas":2,"updatedReplicas":2,"currentRevision":"b","updateRevision":"b"}}`, "", false},
		{"daemonset", `{"status":{"desiredNumberScheduled":3,"updatedNumberScheduled":3,"numberAvailable":1}}`, "1 of 3 pods available", false},
		{"pod", `{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"False","reason":"ContainersNotReady"}]}}`, "phase Running, condition Ready is False, want True (ContainersNotReady)", false},
		{"pod", `{"status":{"phase":"Succeeded"}}`, "", false},
		{"pvc", `{"status":{"phase":"Pending"}}`, "phase Pending, want Bound", false},
		{"crd", `{"status":{"conditions":[{"type":"Established","status":"True"}]}}`, "", false},
		{"", `{"metadata":{"generation":3},"status":{"conditions":[{"type":"Ready","status":"True","observedGeneration":2}]}}`, "no current condition Ready yet", false},
		{"", `{"metadata":{"generation":3},"status":{"conditions":[{"type":"Ready","status":"True","observedGeneration":3}]}}`, "", false},
		{"", `{"status":{"phase":{"odd":"shape"},"conditions":[{"type":"Ready","status":"True"}]}}`, "", false},
		{"namespace", `{"status":{"phase":"Terminating"}}`, "phase Terminating, want Active", false},
		{"job", `{"spec":{"suspend":true},"status":{"conditions":[{"type":"Suspended","status":"True"}]}}`, "suspended (spec.suspend is true; active 0, succeeded 0, failed 0)", false},
		{"pod", `{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"False"}],"containerStatuses":[{"name":"web","state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 5m0s restarting failed container=web"}}}]}}`,
			"phase Running, container web waiting: CrashLoopBackOff: back-off 5m0s restarting failed container=web", false},
		{"pod", `{"status":{"phase":"Pending","initContainerStatuses":[{"name":"init","state":{"waiting":{"reason":"ImagePullBackOff","message":"Back-off pulling image \"x:1\""}}}]}}`,
			`phase Pending, container init waiting: ImagePullBackOff: Back-off pulling image "x:1"`, false},
		{"replicas", `{"metadata":{"generation":1},"spec":{"replicas":2},"status":{"observedGeneration":1,"readyReplicas":1}}`, "1 of 2 replicas ready", false},
		{"replicas", `{"metadata":{"generation":1},"spec":{"replicas":2},"status":{"observedGeneration":1,"readyReplicas":2,"availableReplicas":2}}`, "", false},
		{"pv", `{"status":{"phase":"Released"}}`, "phase Released, want Available or Bound", false},
		{"apiservice", `{"status":{"conditions":[{"type":"Available","status":"True"}]}}`, "", false},
		{"", `{"metadata":{"name":"w"}}`, "no condition Ready yet (it has no status.conditions; if its kind has none, wait with for=exists or for=field)", false},
	} {
		doc, err := parseJSON([]byte(tc.object))
		if err != nil {
			t.Fatalf("%s: %v", tc.object, err)
		}
		o := k8sObjectOf(doc)
		err = objectReady(tc.rule, &o)
		got := ""
		if err != nil {
			got = err.Error()
		}
		_, final := err.(finalError)
		if got != tc.want || final != tc.final {
			t.Errorf("%s %s: got %q (final %v), want %q (final %v)", tc.rule, tc.object, got, final, tc.want, tc.final)
		}
	}
}

func TestK8sWantField(t *testing.T) {
	obj, err := parseJSON([]byte(`{"status":{"replicas":3,"phase":"Pending","loadBalancer":{"ingress":[{"ip":"10.0.0.1"}]}},"data":{"password":"hunter2"}}`))
	if err != nil {
		t.Fatal(err)
	}
	field := func(expectation string, secret bool) error {
		t.Helper()
		e, err := parseJSONExpectation(expectation)
		if err != nil {
			t.Fatalf("%s: %v", expectation, err)
		}
		return wantField(obj, e, secret)
	}
	for _, ok := range []string{"status.loadBalancer.ingress.0.ip=10.0.0.1", "status.phase=Running|Pending", "status.phase!=Failed",
		"status.replicas>=3", "status.replicas>2", "status.replicas<=3", "status.replicas<4", "status.phase"} {
		if err := field(ok, false); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for expectation, want := range map[string]string{
		"status.phase=Succeeded": `status.phase is "Pending", want Succeeded`,
		"status.phase!=Pending":  `status.phase is "Pending", want anything but Pending`,
		"status.replicas>=4":     "status.replicas is 3, want a number >= 4",
		"status.replicas<3":      "status.replicas is 3, want a number < 3",
		"status.phase>1":         `status.phase is "Pending", want a number > 1`,
		"status.ready>=1":        `no key "status.ready"`,
	} {
		if err := field(expectation, false); err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %s", expectation, err, want)
		}
	}
	if err := field("data.password=other", true); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a Secret's value must not be quoted: %v", err)
	}
}

// fakeKube is a fake API server for one Job: tests set its state.
type fakeKube struct {
	mu     sync.Mutex
	job    string // the object's JSON; "" when missing
	status int    // answer every request with this, when not 0
	token  string
	seen   []string
	watch  bool          // answer watches, sending an event on changed
	gone   int           // answer this many watches with 410 Gone first
	lists  int           // list requests so far
	change chan struct{} // a watcher is told of a change
}

// set changes the Job and tells a watcher.
func (f *fakeKube) set(job string) {
	f.mu.Lock()
	f.job = job
	f.mu.Unlock()
	f.change <- struct{}{}
}

func (f *fakeKube) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, r.URL.RequestURI())
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		w.WriteHeader(401)
		return
	}
	if f.status != 0 {
		w.WriteHeader(f.status)
		fmt.Fprint(w, `{"kind":"Status","reason":"Forbidden","message":"jobs.batch \"m\" is forbidden: User \"x\" cannot list resource \"jobs\""}`)
		return
	}
	if r.URL.Query().Get("watch") != "" {
		if !f.watch {
			w.WriteHeader(500) // no watch: the interval is the fallback
			return
		}
		if r.URL.Query().Get("resourceVersion") != "7" || r.URL.Query().Get("allowWatchBookmarks") != "true" {
			w.WriteHeader(400)
			return
		}
		if f.gone > 0 {
			f.gone--
			w.WriteHeader(200)
			fmt.Fprint(w, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410}}\n")
			return
		}
		f.mu.Unlock()
		defer f.mu.Lock()
		w.WriteHeader(200)
		fmt.Fprint(w, "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"7\"}}}\n")
		w.(http.Flusher).Flush()
		select {
		case <-f.change:
			f.mu.Lock()
			fmt.Fprintf(w, "{\"type\":\"ADDED\",\"object\":%s}\n", f.job)
			f.mu.Unlock()
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		case <-r.Context().Done():
		}
		return
	}
	f.lists++
	items := ""
	if f.job != "" {
		items = f.job
	}
	fmt.Fprintf(w, `{"kind":"JobList","metadata":{"resourceVersion":"7"},"items":[%s]}`, items)
}

func TestK8sFakeAPI(t *testing.T) {
	t.Parallel()
	fake := &fakeKube{token: "tok-123secret"}
	srv := httptest.NewTLSServer(fake)
	defer srv.Close()
	dir := t.TempDir()
	kc := writeTestKubeconfig(t, dir, srv.URL, "token: tok-123secret")
	base := []string{"--k8s.m.address=job/m", "--k8s.m.kubeconfig=" + kc, "--k8s.m.interval=10ms", "--timeout=2s"}

	fake.job = `{"metadata":{"name":"m"},"status":{"conditions":[{"type":"Failed","status":"True","reason":"BackoffLimitExceeded","message":"too many retries"}]}}`
	o := runPortpatrol(t, nil, base...)
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, "gave up on k8s target m: job/m: failed: BackoffLimitExceeded: too many retries") || o.elapsed > 1500*1e6 {
		t.Errorf("a failed Job must end the wait at once, with its reason (%v):\n%s", o.elapsed, o.stderr)
	}

	fake.job = ""
	o = runPortpatrol(t, nil, append(base, "--k8s.m.if-missing=ready")...)
	o.mustExit(t, 0)
	o = runPortpatrol(t, nil, append(base, "--k8s.m.for=deleted")...)
	o.mustExit(t, 0)
	o = runPortpatrol(t, nil, base...)
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, "job/m: not found yet") {
		t.Errorf("stderr:\n%s", o.stderr)
	}
	if !strings.Contains(strings.Join(fake.seen, " ")+" ", "/apis/batch/v1/namespaces/shop/jobs?limit=500 ") {
		t.Errorf("requests %v: want the Jobs listed in the context's namespace", fake.seen)
	}

	fake.mu.Lock()
	fake.status = 403
	fake.mu.Unlock()
	o = runPortpatrol(t, nil, base...)
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, `cannot list resource \"jobs\"; needs get, list and watch on jobs.batch in namespace shop`) {
		t.Errorf("stderr:\n%s", o.stderr)
	}
	// Inverted, a 403 is no sign the Job is gone.
	o = runPortpatrol(t, nil, append(base, "--k8s.m.invert")...)
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, `level=ERROR msg="not ready" target=m type=k8s address=job/m attempts=`) {
		t.Errorf("stderr:\n%s", o.stderr)
	}
	fake.mu.Lock()
	fake.status, fake.token = 0, "another"
	fake.mu.Unlock()
	o = runPortpatrol(t, nil, base...)
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, "the API server refused the credentials") {
		t.Errorf("stderr:\n%s", o.stderr)
	}
	if strings.Contains(o.stderr, "tok-123secret") {
		t.Errorf("the token is in the output:\n%s", o.stderr)
	}
}

func TestK8sLabelSelectors(t *testing.T) {
	for _, ok := range []string{"app=api", "app==api,tier!=canary", "env in (a, b),!legacy", "example.com/team notin (x)", "app", "app="} {
		if err := checkLabelSelector(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "app=api,", "=x", "a=b c", "in (x)", "app in (x", "-a=b", "a/b/c=d"} {
		if err := checkLabelSelector(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestParseExecCredential(t *testing.T) {
	c, err := parseExecCredential([]byte(`{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"abc","expirationTimestamp":"2030-01-02T03:04:05Z"}}`))
	if err != nil || c.token != "abc" || c.expires.Year() != 2030 {
		t.Errorf("got %+v, %v", c, err)
	}
	if _, err := parseExecCredential([]byte(`{"kind":"ExecCredential","status":{"token":"leak-me","expirationTimestamp":"soon"}}`)); err == nil || strings.Contains(err.Error(), "leak-me") {
		t.Errorf("got %v", err)
	}
}

func FuzzK8sObject(f *testing.F) {
	f.Add([]byte(`{"metadata":{"generation":2},"spec":{"replicas":3},"status":{"observedGeneration":2,"conditions":[{"type":"Ready","status":"True"}]}}`), "status.conditions.0.type")
	f.Fuzz(func(t *testing.T, data []byte, path string) {
		doc, err := parseJSON(data)
		if err != nil {
			return
		}
		o := k8sObjectOf(doc)
		for _, rule := range []string{"job", "deployment", "statefulset", "daemonset", "pod", "pvc", "pv", "replicas", "apiservice", "crd", "namespace", "exists", ""} {
			objectReady(rule, &o)
		}
		if e, err := parseJSONExpectation(path); err == nil {
			wantField(doc, e, false)
			wantField(doc, e, true)
		}
	})
}

func FuzzK8sWatchEvent(f *testing.F) {
	f.Add([]byte("{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"resourceVersion\":\"12\"}}}\n\n{\"type\":\"ERROR\",\"object\":{\"code\":410}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(strings.NewReader(string(data)), 16)
		for {
			line, err := readLine(r, 64)
			if err != nil {
				return
			}
			if len(line) > 64 {
				t.Fatalf("line of %d bytes", len(line))
			}
			parseWatchEvent(line)
		}
	})
}

func FuzzExecCredential(f *testing.F) {
	f.Add([]byte(`{"kind":"ExecCredential","status":{"token":"abc"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		parseExecCredential(data)
	})
}

// A watch event ends the pause at once: ready well before the 10 s interval.
func TestK8sWatchWakes(t *testing.T) {
	t.Parallel()
	fake := &fakeKube{watch: true, change: make(chan struct{}, 1)}
	srv := httptest.NewTLSServer(fake)
	defer srv.Close()
	kc := writeTestKubeconfig(t, t.TempDir(), srv.URL, "token: x")
	cmd := exec.Command(ppBinary, "--k8s.m.address=job/m", "--k8s.m.kubeconfig="+kc, "--k8s.m.interval=10s", "--timeout=30s")
	p := startPortpatrol(t, cmd)
	waitFor(t, p.stderr, "job/m: not found yet")
	fake.set(`{"metadata":{"name":"m"},"status":{"conditions":[{"type":"Complete","status":"True"}]}}`)
	p.exit(t, 0, 5*time.Second)
}

// A watch whose resourceVersion expired (410 Gone) starts again from a
// fresh list, at once rather than at the interval, and then wakes the
// target as before.
func TestK8sWatchGoneStartsAgain(t *testing.T) {
	t.Parallel()
	fake := &fakeKube{watch: true, gone: 1, change: make(chan struct{}, 1)}
	srv := httptest.NewTLSServer(fake)
	defer srv.Close()
	kc := writeTestKubeconfig(t, t.TempDir(), srv.URL, "token: x")
	cmd := exec.Command(ppBinary, "--k8s.m.address=job/m", "--k8s.m.kubeconfig="+kc, "--k8s.m.interval=10s", "--timeout=30s", "--log-level=debug")
	p := startPortpatrol(t, cmd)
	waitFor(t, p.stderr, "attempt=2 ")
	fake.mu.Lock()
	lists := fake.lists
	fake.mu.Unlock()
	if lists < 2 {
		t.Fatalf("%d lists, want a second one after the 410", lists)
	}
	fake.set(`{"metadata":{"name":"m"},"status":{"conditions":[{"type":"Complete","status":"True"}]}}`)
	p.exit(t, 0, 5*time.Second)
}

// An exec plugin that hangs, holding its output or not, ends with the
// attempt's timeout and is killed; a bare command name is found in $PATH.
func TestK8sExecPluginHangs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, script := range []string{"sleep 30", "exec >&-; sleep 30"} {
		path := filepath.Join(dir, "hang")
		os.WriteFile(path+".new", []byte("#!/bin/sh\n"+script+"\n"), 0o755)
		os.Rename(path+".new", path)
		kc := writeTestKubeconfig(t, dir, "https://127.0.0.1:1", "exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: hang}")
		o := runPortpatrol(t, []string{"PATH=" + dir + ":" + os.Getenv("PATH")}, "--k8s.m.address=job/m", "--k8s.m.kubeconfig="+kc, "--k8s.m.timeout=300ms", "--timeout=2s")
		o.mustExit(t, 1)
		if !strings.Contains(o.stderr, "the exec plugin hang is still running (it may take 1m0s)") || o.elapsed > 10*time.Second {
			t.Errorf("%s: after %v:\n%s", script, o.elapsed, o.stderr)
		}
	}
}

// A plugin slower than an attempt's timeout is waited for beyond it: the
// attempt after it ends finds its token. A failed plugin's stderr, never
// its output, is in the reason.
func TestK8sExecPluginSlowOrFailing(t *testing.T) {
	t.Parallel()
	fake := &fakeKube{token: "slow-t0ken", job: `{"metadata":{"name":"m"},"status":{"conditions":[{"type":"Complete","status":"True"}]}}`}
	srv := httptest.NewTLSServer(fake)
	defer srv.Close()
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	os.WriteFile(filepath.Join(dir, "slow"), []byte(`#!/bin/sh
echo run >> `+runs+`
sleep 1.5
echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"slow-t0ken"}}'
`), 0o755)
	kc := writeTestKubeconfig(t, dir, srv.URL, "exec: {apiVersion: client.authentication.k8s.io/v1, command: "+filepath.Join(dir, "slow")+"}")
	o := runPortpatrol(t, nil, "--k8s.m.address=job/m", "--k8s.m.kubeconfig="+kc, "--k8s.m.timeout=300ms", "--k8s.m.interval=100ms", "--timeout=10s")
	o.mustExit(t, 0)
	if b, _ := os.ReadFile(runs); string(b) != "run\n" || !strings.Contains(o.stderr, "is still running") {
		t.Errorf("the plugin ran %q, want once, waited for past the attempts' timeout:\n%s", b, o.stderr)
	}

	os.WriteFile(filepath.Join(dir, "fails"), []byte("#!/bin/sh\necho 'leaked-stdout-t0ken'\nprintf 'error: the refresh token expired\\033[2J\\nrun: cloud auth login\\n' >&2\nexit 3\n"), 0o755)
	kc = writeTestKubeconfig(t, dir, srv.URL, "exec: {apiVersion: client.authentication.k8s.io/v1, command: "+filepath.Join(dir, "fails")+"}")
	o = runPortpatrol(t, nil, "--k8s.m.address=job/m", "--k8s.m.kubeconfig="+kc, "--timeout=1s")
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, "failed: exit status 3: error: the refresh token expired\uFFFD[2J\uFFFDrun: cloud auth login") || strings.Contains(o.stderr, "leaked-stdout") {
		t.Errorf("want the plugin's stderr, sanitised, and never its output:\n%s", o.stderr)
	}
}

// An exec plugin still running when portpatrol ends is killed with what it
// started, whether the run ends at the deadline, on SIGTERM, or by running
// the command after every target was ready (here the plugin runs a second
// time for the watch, its first token having expired).
func TestK8sExecPluginEndsWithPortpatrol(t *testing.T) {
	t.Parallel()
	fake := &fakeKube{token: "tok", job: `{"metadata":{"name":"m"},"status":{"conditions":[{"type":"Complete","status":"True"}]}}`}
	srv := httptest.NewTLSServer(fake)
	defer srv.Close()
	for _, end := range []string{"deadline", "SIGTERM", "command"} {
		t.Run(end, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "plugin"), []byte(`#!/bin/sh
if [ ! -e "$DIR/ran" ]; then
	: > "$DIR/ran"
	echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"tok","expirationTimestamp":"2000-01-01T00:00:00Z"}}'
	exit 0
fi
sleep 300 &
echo $! > "$DIR/child"
echo $$ > "$DIR/pid.new"
mv "$DIR/pid.new" "$DIR/pid"
wait
`), 0o755)
			user := "exec: {apiVersion: client.authentication.k8s.io/v1, command: ./plugin, env: [{name: DIR, value: '" + dir + "'}]}"
			server := "https://127.0.0.1:1"
			if end == "command" {
				server = srv.URL
			} else {
				os.WriteFile(filepath.Join(dir, "ran"), nil, 0o644) // the first run hangs
			}
			kc := writeTestKubeconfig(t, dir, server, user)
			os.Rename(kc, filepath.Join(dir, "kubeconfig")) // next to ./plugin
			args := []string{"--k8s.m.address=job/m", "--k8s.m.kubeconfig=" + filepath.Join(dir, "kubeconfig"), "--k8s.m.timeout=60s"}
			var pids []int
			readPids := func() {
				t.Helper()
				for _, f := range []string{"pid", "child"} {
					b, err := os.ReadFile(filepath.Join(dir, f))
					pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
					if err != nil || pid <= 0 {
						t.Fatalf("the plugin wrote no %s file: %v", f, err)
					}
					pids = append(pids, pid)
					t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
				}
			}
			switch end {
			case "deadline":
				o := runPortpatrol(t, nil, append(args, "--timeout=1s")...)
				o.mustExit(t, 1)
				readPids()
			case "SIGTERM":
				p := startPortpatrol(t, exec.Command(ppBinary, append(args, "--timeout=60s")...))
				waitForFile(t, filepath.Join(dir, "pid"))
				readPids()
				p.cmd.Process.Signal(syscall.SIGTERM)
				p.exit(t, 128+int(syscall.SIGTERM), 10*time.Second)
			case "command":
				// A second target holds the run until the plugin hangs.
				p := startPortpatrol(t, exec.Command(ppBinary, append(args, "--file.go.address="+filepath.Join(dir, "go"), "--timeout=60s", "--", "true")...))
				waitForFile(t, filepath.Join(dir, "pid"))
				readPids()
				os.WriteFile(filepath.Join(dir, "go"), nil, 0o644)
				p.exit(t, 0, 10*time.Second)
			}
			for _, pid := range pids {
				if !processGone(pid, 2*time.Second) {
					t.Errorf("process %d of the plugin still runs after portpatrol ended", pid)
				}
			}
		})
	}
}

func waitForFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	t.Fatalf("no %s after 10s", path)
}

// processGone waits up to within for pid to end; a zombie has ended.
func processGone(pid int, within time.Duration) bool {
	for deadline := time.Now().Add(within); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		if _, state, _ := strings.Cut(string(b), ") "); strings.HasPrefix(state, "Z") || strings.HasPrefix(state, "X") {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// A password or a secret parameter in the cluster's server URL never
// appears in the output: not in a start-up error, not in a reason (a
// refused dial, no answer, a reply that is not JSON), not in the last
// report. The requests go to the server all the same.
func TestK8sServerURLSecrets(t *testing.T) {
	t.Parallel()
	const password, token = "pw-Sekr1t", "tk-Sekr2t"
	garbage := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/prefix/apis/batch/v1/namespaces/shop/jobs" {
			w.WriteHeader(404)
			return
		}
		fmt.Fprint(w, "not json")
	}))
	defer garbage.Close()
	secretURL := func(hostPort string) string {
		return "https://admin:" + password + "@" + hostPort + "/prefix?token=" + token
	}
	for _, tc := range []struct {
		server, want string
		code         int
	}{
		{secretURL(closedPort(t)), "https://admin:xxxxx@127.0.0.1:", 1},
		{secretURL(silentServer(t)), "no answer from the API server https://admin:xxxxx@", 1},
		{secretURL(strings.TrimPrefix(garbage.URL, "https://")), "the reply is not valid JSON", 1},
		{"ftp://admin:" + password + "@example.com/?token=" + token, `the cluster's server "ftp://admin:xxxxx@example.com/?token=xxxxx" is not`, 2},
	} {
		kc := writeTestKubeconfig(t, t.TempDir(), tc.server, "token: x")
		o := runPortpatrol(t, nil, "--k8s.m.address=job/m", "--k8s.m.kubeconfig="+kc, "--k8s.m.timeout=300ms", "--k8s.m.interval=100ms", "--timeout=1s")
		o.mustExit(t, tc.code)
		if !strings.Contains(o.stderr, tc.want) {
			t.Errorf("%s: stderr lacks %q:\n%s", tc.server, tc.want, o.stderr)
		}
		for _, secret := range []string{password, token} {
			if strings.Contains(o.stdout+o.stderr, secret) {
				t.Errorf("%s: %s is in the output:\n%s%s", tc.server, secret, o.stdout, o.stderr)
			}
		}
	}
}

// Reasons decided by the target's kind and what for asks: an ExternalName
// Service is ready once it exists (there are no endpoints to wait for); a
// failed Job under for=condition=Complete ends the run; an object held by
// its finalizers says so.
func TestK8sObjectReasons(t *testing.T) {
	object := func(s string) any {
		t.Helper()
		doc, err := parseJSON([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	svc := &k8sCheck{want: k8sWant{what: "ready"}}
	if err := svc.objectReady(context.Background(), k8sKinds()["svc"], object(`{"metadata":{"name":"db"},"spec":{"type":"ExternalName","externalName":"db.example.com"}}`)); err != nil {
		t.Errorf("ExternalName Service: %v", err)
	}
	want, _ := parseK8sWant("condition=complete")
	job := &k8sCheck{want: want}
	err := job.objectReady(context.Background(), k8sKinds()["job"], object(`{"metadata":{"name":"m"},"status":{"conditions":[{"type":"Failed","status":"True","reason":"DeadlineExceeded","message":"too slow"}]}}`))
	if _, final := errors.AsType[finalError](err); !final || err.Error() != "job/m: failed: DeadlineExceeded: too slow" {
		t.Errorf("failed Job under condition=Complete: %v (final %v)", err, final)
	}
	err = job.objectReady(context.Background(), k8sKinds()["job"], object(`{"metadata":{"name":"m","deletionTimestamp":"2026-01-01T00:00:00Z","finalizers":["batch.kubernetes.io/job-tracking"]},"status":{"active":1}}`))
	if err == nil || err.Error() != "job/m, being deleted (finalizers batch.kubernetes.io/job-tracking): no current condition complete yet" {
		t.Errorf("Job being deleted: %v", err)
	}
}

// A label selector matches as the API server matches it.
func TestK8sMatchSelector(t *testing.T) {
	labels := map[string]any{"app": "web", "tier": "front", "rank": "7"}
	for sel, want := range map[string]bool{
		"app=web": true, "app==web": true, "app=api": false, "app!=api": true, "app!=web": false,
		"missing!=x": true, "app": true, "!app": false, "!missing": true, "missing": false,
		"tier in (front, back)": true, "tier notin (front)": false, "missing notin (x)": true, "missing in (x)": false,
		"rank>5": true, "rank<5": false, "missing>1": false, "app=web,tier=back": false, "app=web,tier=front": true,
	} {
		if got := matchSelector(sel, labels); got != want {
			t.Errorf("%s: got %v, want %v", sel, got, want)
		}
	}
	if matchSelector("app=web", nil) {
		t.Error("an object without labels matched app=web")
	}
}

// Impersonation reaches the server as client-go sends it: Impersonate-User,
// -Uid, one Impersonate-Group per group, and Impersonate-Extra-KEY with the
// key percent-encoded where a header name cannot hold it.
func TestK8sImpersonationHeaders(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Clone():
		default:
		}
		fmt.Fprint(w, `{"kind":"ConfigMapList","metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"c"}}]}`)
	}))
	defer srv.Close()
	kc := writeTestKubeconfig(t, t.TempDir(), srv.URL, `token: x
    as: jane
    as-uid: "42"
    as-groups: [ops, dev]
    as-user-extra: {"example.com/scopes": [read, write]}`)
	o := runPortpatrol(t, nil, "--k8s.c.address=cm/c", "--k8s.c.kubeconfig="+kc, "--timeout=5s")
	o.mustExit(t, 0)
	h := <-got
	for key, want := range map[string]string{"Impersonate-User": "jane", "Impersonate-Uid": "42", "Impersonate-Group": "ops,dev", "Impersonate-Extra-Example.com%2Fscopes": "read,write"} {
		if v := strings.Join(h.Values(key), ","); v != want {
			t.Errorf("%s: %q, want %q (headers %v)", key, v, want, h)
		}
	}
}

// A collection comes in pages: the object on the second page is found, and
// the watch starts from the first page's resourceVersion.
func TestK8sListPages(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.RequestURI())
		mu.Unlock()
		q := r.URL.Query()
		switch {
		case q.Get("watch") != "":
			<-r.Context().Done()
		case q.Get("continue") == "":
			fmt.Fprint(w, `{"metadata":{"resourceVersion":"5","continue":"page 2"},"items":[{"metadata":{"name":"a","labels":{"app":"web"}}}]}`)
		case q.Get("continue") == "page 2":
			fmt.Fprint(w, `{"metadata":{"resourceVersion":"6"},"items":[{"metadata":{"name":"b","labels":{"app":"web"}}}]}`)
		default:
			w.WriteHeader(400)
		}
	}))
	defer srv.Close()
	kc := writeTestKubeconfig(t, t.TempDir(), srv.URL, "token: x")
	o := runPortpatrol(t, nil, "--k8s.c.address=cm", "--k8s.c.selector=app=web", "--k8s.c.min=2", "--k8s.c.kubeconfig="+kc, "--timeout=5s")
	o.mustExit(t, 0)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < 2 || seen[1] != "/api/v1/namespaces/shop/configmaps?limit=500&continue=page+2" {
		t.Errorf("requests %v: want the second page asked for", seen)
	}
	for _, s := range seen[2:] {
		if strings.Contains(s, "watch=1") && !strings.Contains(s, "resourceVersion=5") {
			t.Errorf("%s: want the watch from the first page's resourceVersion", s)
		}
	}
}

// Many targets on one collection, checked at once while watch events
// arrive: one list, one watch, each target woken for its own object (run
// with -race, this is the shared collection's test for data races).
func TestK8sSharedCollection(t *testing.T) {
	t.Parallel()
	events, stop := make(chan string, 100), make(chan struct{})
	var mu sync.Mutex
	lists, watches := 0, 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") == "" {
			mu.Lock()
			lists++
			mu.Unlock()
			time.Sleep(20 * time.Millisecond) // the other targets arrive meanwhile
			fmt.Fprint(w, `{"metadata":{"resourceVersion":"1"},"items":[]}`)
			return
		}
		mu.Lock()
		watches++
		mu.Unlock()
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		for {
			select {
			case name := <-events:
				fmt.Fprintf(w, `{"type":"ADDED","object":{"metadata":{"name":%q,"resourceVersion":"2"}}}`+"\n", name)
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			case <-stop:
				return
			}
		}
	}))
	defer srv.Close()
	defer close(stop) // first: the watch would otherwise hold Close for minutes
	api, err := kubeconfigAPI("test", &kubeconfigCluster{Server: srv.URL, Insecure: true}, &kubeconfigUser{Token: "x"})
	if err != nil {
		t.Fatal(err)
	}
	api.discovery, api.collections = make(chan struct{}, 1), map[string]*kubeCollection{}
	const n = 20
	checks := make([]*k8sCheck, n)
	wakes := make([]<-chan struct{}, n)
	for i := range checks {
		checks[i] = &k8sCheck{api: api, res: new(k8sKinds()["cm"]), name: "c" + strconv.Itoa(i), namespace: "shop",
			want: k8sWant{what: "exists"}, min: 1, timeout: 5 * time.Second}
		wakes[i] = checks[i].changes()
	}
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Go(func() {
			if err := c.check(context.Background()); err == nil || !strings.Contains(err.Error(), "not found yet") {
				t.Errorf("%s: %v, want not found yet", c.name, err)
			}
		})
	}
	wg.Wait()
	for i := range n {
		events <- "c" + strconv.Itoa(i)
	}
	for i, c := range checks {
		select {
		case <-wakes[i]:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s was not woken by its object's event", c.name)
		}
		if err := c.check(context.Background()); err != nil {
			t.Errorf("%s after its event: %v", c.name, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if lists != 1 || watches != 1 {
		t.Errorf("%d lists and %d watches for %d targets, want one each", lists, watches, n)
	}
}

// The RBAC of a Role with resourceNames, as the real API server applies it
// (TestKubeResourceNamesFallback): the namespace's Secrets may not be
// listed, Secret a may be listed and watched by a metadata.name field
// selector, Secret g only got. Targets on a share one list and one watch of
// a alone, the target on g gets it by name, and the ConfigMaps' targets
// still share one list and one watch of them all.
func TestK8sResourceNamesFallback(t *testing.T) {
	t.Parallel()
	events, stop := make(chan string, 10), make(chan struct{})
	var mu sync.Mutex
	count := map[string]int{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		field, watch := q.Get("fieldSelector"), q.Get("watch") != ""
		key := r.Method + " " + r.URL.Path + " " + field
		if watch {
			key += " watch"
		}
		mu.Lock()
		count[key]++
		mu.Unlock()
		secrets := strings.HasPrefix(r.URL.Path, "/api/v1/namespaces/shop/secrets")
		switch {
		case secrets && r.URL.Path == "/api/v1/namespaces/shop/secrets/g":
			w.WriteHeader(404)
			fmt.Fprint(w, `{"kind":"Status","code":404,"reason":"NotFound"}`)
		case secrets && (field != "metadata.name=a" || r.URL.Path != "/api/v1/namespaces/shop/secrets"):
			w.WriteHeader(403)
			fmt.Fprint(w, `{"kind":"Status","code":403,"reason":"Forbidden","message":"secrets is forbidden"}`)
		case !watch:
			time.Sleep(20 * time.Millisecond) // the other targets arrive meanwhile
			fmt.Fprint(w, `{"metadata":{"resourceVersion":"1"},"items":[]}`)
		case secrets:
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			select {
			case name := <-events:
				fmt.Fprintf(w, `{"type":"ADDED","object":{"metadata":{"name":%q,"resourceVersion":"2"}}}`+"\n", name)
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
				case <-stop:
				}
			case <-r.Context().Done():
			case <-stop:
			}
		default:
			select {
			case <-r.Context().Done():
			case <-stop:
			}
		}
	}))
	defer srv.Close()
	defer close(stop)
	api, err := kubeconfigAPI("test", &kubeconfigCluster{Server: srv.URL, Insecure: true}, &kubeconfigUser{Token: "x"})
	if err != nil {
		t.Fatal(err)
	}
	api.discovery, api.collections = make(chan struct{}, 1), map[string]*kubeCollection{}
	var checks []*k8sCheck
	for i := range 4 {
		checks = append(checks, &k8sCheck{res: new(k8sKinds()["secret"]), name: "a"},
			&k8sCheck{res: new(k8sKinds()["cm"]), name: "c" + strconv.Itoa(i)})
	}
	checks = append(checks, &k8sCheck{res: new(k8sKinds()["secret"]), name: "g"})
	wakes := make([]<-chan struct{}, len(checks))
	for i, c := range checks {
		c.api, c.namespace, c.want, c.min, c.timeout = api, "shop", k8sWant{what: "exists"}, 1, 5*time.Second
		wakes[i] = c.changes()
	}
	for range 2 { // the second attempt keeps the way the first found
		var wg sync.WaitGroup
		for _, c := range checks {
			wg.Go(func() {
				if err := c.check(context.Background()); err == nil || !strings.Contains(err.Error(), c.res.singular+"/"+c.name+": not found yet") {
					t.Errorf("%s/%s: %v, want not found yet", c.res.singular, c.name, err)
				}
			})
		}
		wg.Wait()
	}
	if checks[0].read != readSelected || checks[len(checks)-1].read != readGet || checks[1].read != readShared {
		t.Errorf("read secret/a %d, secret/g %d, configmap/c0 %d; want %d, %d, %d", checks[0].read, checks[len(checks)-1].read, checks[1].read, readSelected, readGet, readShared)
	}
	events <- "a"
	for i, c := range checks {
		if c.name != "a" {
			continue
		}
		select {
		case <-wakes[i]:
		case <-time.After(5 * time.Second):
			t.Fatalf("secret/a (target %d) was not woken by its object's event", i)
		}
		if err := c.check(context.Background()); err != nil {
			t.Errorf("secret/a after its event: %v", err)
		}
	}
	time.Sleep(50 * time.Millisecond) // the watches are up
	mu.Lock()
	defer mu.Unlock()
	for key, want := range map[string]int{
		"GET /api/v1/namespaces/shop/secrets metadata.name=a":       1,
		"GET /api/v1/namespaces/shop/secrets metadata.name=a watch": 1,
		"GET /api/v1/namespaces/shop/configmaps ":                   1,
		"GET /api/v1/namespaces/shop/configmaps  watch":             1,
		"GET /api/v1/namespaces/shop/secrets/g ":                    2,
		"GET /api/v1/namespaces/shop/secrets metadata.name=g watch": 0,
	} {
		if count[key] != want {
			t.Errorf("%s: %d requests, want %d (all: %v)", key, count[key], want, count)
		}
	}
	// Only first attempts ask for it: at most once for each of the five
	// targets, as those that wait on a list in flight take its refusal.
	if n := count["GET /api/v1/namespaces/shop/secrets "]; n < 1 || n > 5 {
		t.Errorf("the refused list of all the Secrets was asked %d times, want 1 to 5 (all: %v)", n, count)
	}
}

// A condition without a reason or message is not quoted as "((none))".
func TestWantConditionReason(t *testing.T) {
	for _, tc := range []struct {
		c    k8sCondition
		want string
	}{
		{k8sCondition{Type: "Complete", Status: "True"}, "condition Complete is True, want False"},
		{k8sCondition{Type: "Complete", Status: "True", Reason: "Done"}, "condition Complete is True, want False (Done)"},
		{k8sCondition{Type: "Complete", Status: "True", Message: "all ran"}, "condition Complete is True, want False (all ran)"},
	} {
		o := &k8sObject{}
		o.Status.Conditions = []k8sCondition{tc.c}
		if err := wantCondition(o, "Complete", "False"); err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %s", err, tc.want)
		}
	}
}
