package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The k8s type against a real kube-apiserver (kube_test.go). The tests play
// the controllers by writing status.

// ppProcess is portpatrol running in the background while a test changes
// the cluster.
type ppProcess struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	ended  time.Time
}

func startPortpatrol(t *testing.T, cmd *exec.Cmd) *ppProcess {
	t.Helper()
	p := &ppProcess{cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		p.ended = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

func runK8s(t *testing.T, env []string, args ...string) *ppProcess {
	t.Helper()
	cmd := exec.Command(ppBinary, args...)
	cmd.Env = append(os.Environ(), append([]string{"KUBECONFIG=", "KUBERNETES_SERVICE_HOST="}, env...)...)
	return startPortpatrol(t, cmd)
}

// exit waits for the process to end (at most within) and checks its code.
func (p *ppProcess) exit(t *testing.T, code int, within time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("still running after %v; stderr:\n%s", within, p.stderr.String())
	}
	if got := p.cmd.ProcessState.ExitCode(); got != code {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", got, code, p.stderr.String())
	}
}

// noSecrets fails the test when any secret appears in the output.
func (p *ppProcess) noSecrets(t *testing.T, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(p.stderr.String(), s) {
			t.Errorf("a secret (%.4s...) is in the output:\n%s", s, p.stderr.String())
		}
	}
}

const testJob = `
apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: m, image: migrate:1}]
`

// A Job created after portpatrol started is not found, then not complete,
// then ready as soon as its status says Complete, with a 10 s interval: the
// watch, not the interval, brings the change.
func TestKubeJobCreatedLater(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	kc := k.kubeconfig(t, ns, tokenUser(k.AdminToken))
	p := runK8s(t, nil, "--k8s.m.address=job/migrate", "--k8s.m.kubeconfig="+kc, "--k8s.m.interval=10s", "--timeout=60s")
	waitFor(t, p.stderr, "job/migrate: not found yet")
	job := k.create(t, ns, testJob)
	waitFor(t, p.stderr, "job/migrate: not complete (active 0, succeeded 0, failed 0)")
	// The status a Job controller writes, with one startTime throughout:
	// the API refuses to change it once set.
	start := time.Now().UTC().Format(time.RFC3339)
	k.patchStatus(t, job, `{"status":{"startTime":"`+start+`","active":1,"ready":0}}`)
	waitFor(t, p.stderr, "job/migrate: not complete (active 1, succeeded 0, failed 0)")
	time.Sleep(200 * time.Millisecond) // the watch is idle again
	written := time.Now()
	k.patchStatus(t, job, `{"status":{"startTime":"`+start+`","completionTime":"`+time.Now().UTC().Format(time.RFC3339)+`","active":0,"ready":0,"succeeded":1,
		"conditions":[
			{"type":"SuccessCriteriaMet","status":"True","reason":"CompletionsReached","lastTransitionTime":"`+start+`"},
			{"type":"Complete","status":"True","reason":"CompletionsReached","lastTransitionTime":"`+start+`"}]}}`)
	p.exit(t, 0, 5*time.Second)
	t.Logf("ready %v after the status write (interval 10s)", p.ended.Sub(written))
	p.noSecrets(t, k.AdminToken)
}

// A failed Job ends the wait at once with exit 1 and its message. As
// RESOURCE.GROUP, found through discovery, a Job keeps its rules.
func TestKubeJobFailed(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	kc := k.kubeconfig(t, ns, tokenUser(k.AdminToken))
	job := k.create(t, ns, testJob)
	p := runK8s(t, nil, "--k8s.m.address=jobs.batch/migrate", "--k8s.m.kubeconfig="+kc, "--k8s.m.interval=10s", "--timeout=60s")
	waitFor(t, p.stderr, "not complete")
	k.failJob(t, job, "BackoffLimitExceeded", "Job has reached the specified backoff limit")
	p.exit(t, 1, 5*time.Second)
	want := "gave up on k8s target m: job/migrate: failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
	if !strings.Contains(p.stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, p.stderr.String())
	}
}

// A Job cleaned up by its TTL counts as complete with if-missing=ready; by
// default it is waited for.
func TestKubeJobIfMissing(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	kc := k.kubeconfig(t, ns, tokenUser(k.AdminToken))
	p := runK8s(t, nil, "--k8s.m.address=Jobs/migrate", "--k8s.m.kubeconfig="+kc, "--k8s.m.if-missing=ready")
	p.exit(t, 0, 10*time.Second)
	p = runK8s(t, nil, "--k8s.m.address=job/migrate", "--k8s.m.kubeconfig="+kc, "--timeout=1s")
	p.exit(t, 1, 10*time.Second)
	if !strings.Contains(p.stderr.String(), "job/migrate: not found yet") {
		t.Errorf("stderr:\n%s", p.stderr.String())
	}
}

// A Deployment with old replicas left is not rolled out; it is once its
// status says so.
func TestKubeDeploymentRollout(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	kc := k.kubeconfig(t, ns, tokenUser(k.AdminToken))
	d := k.create(t, ns, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 3
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: api, image: api:2}]}
`)
	k.patchStatus(t, d, `{"status":{"observedGeneration":1,"replicas":4,"updatedReplicas":3,"readyReplicas":3,"availableReplicas":3}}`)
	p := runK8s(t, nil, "--k8s.api.address=deploy/api", "--k8s.api.kubeconfig="+kc, "--k8s.api.interval=10s", "--timeout=60s")
	waitFor(t, p.stderr, "deployment/api: 1 old replicas are pending termination")
	k.patchStatus(t, d, `{"status":{"observedGeneration":1,"replicas":3,"updatedReplicas":3,"readyReplicas":2,"availableReplicas":2}}`)
	waitFor(t, p.stderr, "deployment/api: 2 of 3 updated replicas available")
	k.patchStatus(t, d, `{"status":{"observedGeneration":1,"replicas":3,"updatedReplicas":3,"readyReplicas":3,"availableReplicas":3}}`)
	p.exit(t, 0, 5*time.Second)

	// A new spec not yet observed is not rolled out; a rollout past its
	// progress deadline ends the run with exit 1.
	k.patch(t, d, `{"spec":{"template":{"spec":{"containers":[{"name":"api","image":"api:3"}]}}}}`)
	p = runK8s(t, nil, "--k8s.api.address=deploy/api", "--k8s.api.kubeconfig="+kc, "--k8s.api.interval=10s", "--timeout=60s")
	waitFor(t, p.stderr, "deployment/api: waiting for the new spec to be observed")
	now := time.Now().UTC().Format(time.RFC3339)
	k.patchStatus(t, d, `{"status":{"observedGeneration":2,"replicas":4,"updatedReplicas":1,"readyReplicas":3,"availableReplicas":3,
		"conditions":[{"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded","message":"ReplicaSet \"api-2\" has timed out progressing.","lastUpdateTime":"`+now+`","lastTransitionTime":"`+now+`"}]}}`)
	p.exit(t, 1, 5*time.Second)
	want := `gave up on k8s target api: deployment/api: rollout exceeded its progress deadline: ProgressDeadlineExceeded: ReplicaSet "api-2" has timed out progressing.`
	if !strings.Contains(p.stderr.String(), strings.ReplaceAll(want, `"`, `\"`)) {
		t.Errorf("stderr lacks %q:\n%s", want, p.stderr.String())
	}
}

// A StatefulSet is ready when its replicas are ready and updated and its
// rolling update has finished.
func TestKubeStatefulSet(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	kc := k.kubeconfig(t, ns, tokenUser(k.AdminToken))
	sts := k.create(t, ns, `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: db:1}]}
`)
	k.patchStatus(t, sts, `{"status":{"observedGeneration":1,"replicas":2,"readyReplicas":2,"updatedReplicas":2,"currentRevision":"db-1","updateRevision":"db-2"}}`)
	p := runK8s(t, nil, "--k8s.db.address=sts/db", "--k8s.db.kubeconfig="+kc, "--k8s.db.interval=10s", "--timeout=60s")
	waitFor(t, p.stderr, "statefulset/db: rolling update from revision db-1 to db-2 not finished")
	k.patchStatus(t, sts, `{"status":{"observedGeneration":1,"replicas":2,"readyReplicas":2,"updatedReplicas":2,"currentRevision":"db-2","updateRevision":"db-2"}}`)
	p.exit(t, 0, 5*time.Second)
}

func testPod(name string) string {
	return `
apiVersion: v1
kind: Pod
metadata: {name: ` + name + `, labels: {app: web}}
spec: {containers: [{name: web, image: web:1}]}
`
}

func podReady(status string) string {
	now := time.Now().UTC().Format(time.RFC3339)
	return `{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"` + status + `","lastTransitionTime":"` + now + `"}]}}`
}

// Pods by selector: at least min must match, and every one be ready.
func TestKubePodsBySelector(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	kc := k.kubeconfig(t, ns, tokenUser(k.AdminToken))
	a := k.create(t, ns, testPod("a"))
	k.patchStatus(t, a, podReady("True"))
	p := runK8s(t, nil, "--k8s.web.address=po", "--k8s.web.selector=app=web,tier!=canary", "--k8s.web.min=2", "--k8s.web.kubeconfig="+kc, "--k8s.web.interval=10s", "--timeout=60s")
	waitFor(t, p.stderr, "1 pods match app=web,tier!=canary, want at least 2")
	b := k.create(t, ns, testPod("b"))
	k.patchStatus(t, b, podReady("False"))
	waitFor(t, p.stderr, "pod/b: phase Running, condition Ready is False, want True")
	k.patchStatus(t, b, podReady("True"))
	p.exit(t, 0, 5*time.Second)
}

// A Service is ready once its EndpointSlices hold min ready endpoints.
func TestKubeServiceEndpoints(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	kc := k.kubeconfig(t, ns, tokenUser(k.AdminToken))
	k.create(t, ns, `
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {selector: {app: db}, ports: [{port: 5432}]}
`)
	p := runK8s(t, nil, "--k8s.db.address=svc/db", "--k8s.db.min=2", "--k8s.db.kubeconfig="+kc, "--k8s.db.interval=10s", "--timeout=60s")
	waitFor(t, p.stderr, "service/db: 0 ready endpoints, want 2")
	slice := k.create(t, ns, `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-1, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
ports: [{port: 5432}]
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: false}
- addresses: [10.0.0.2]
`)
	waitFor(t, p.stderr, "service/db: 1 ready endpoints, want 2")
	k.patch(t, slice, `{"endpoints":[{"addresses":["10.0.0.1"],"conditions":{"ready":true}},{"addresses":["10.0.0.2"]}]}`)
	p.exit(t, 0, 5*time.Second)
}

// A custom resource is found through discovery once its CRD is installed,
// and is ready on condition Ready=True; a CRD is ready when Established.
func TestKubeCustomResource(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	kc := k.kubeconfig(t, ns, tokenUser(k.AdminToken))
	group := strings.ReplaceAll(ns, "-", "") + ".example.com"
	p := runK8s(t, nil, "--k8s.w.address=widgets."+group+"/w1", "--k8s.w.kubeconfig="+kc, "--k8s.w.interval=200ms", "--timeout=60s")
	waitFor(t, p.stderr, "the API server has no resource widgets."+group+" (is its CRD installed?)")
	k.create(t, "", `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.`+group+`}
spec:
  group: `+group+`
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`)
	crd := runK8s(t, nil, "--k8s.crd.address=crd/widgets."+group, "--k8s.crd.kubeconfig="+kc, "--timeout=30s")
	crd.exit(t, 0, 30*time.Second)
	waitFor(t, p.stderr, "widget/w1: not found yet")
	w := k.create(t, ns, `{"apiVersion":"`+group+`/v1","kind":"Widget","metadata":{"name":"w1","generation":1}}`)
	waitFor(t, p.stderr, "widget/w1: no condition Ready yet (it has no status.conditions; if its kind has none, wait with for=exists or for=field)")
	k.patchStatus(t, w, `{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Done"}]}}`)
	p.exit(t, 0, 5*time.Second)
}

// for=field compares a value at a dot path; for=deleted waits for the
// object to go.
func TestKubeForFieldAndDeleted(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	kc := k.kubeconfig(t, ns, tokenUser(k.AdminToken))
	cm := k.create(t, ns, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"},"data":{"mode":"warming"}}`)
	p := runK8s(t, nil, "--k8s.c.address=cm/cfg", "--k8s.c.for=field=data.mode=serving", "--k8s.c.kubeconfig="+kc, "--k8s.c.interval=10s", "--timeout=60s")
	waitFor(t, p.stderr, `configmap/cfg: data.mode is \"warming\", want serving`)
	k.patch(t, cm, `{"data":{"mode":"serving"}}`)
	p.exit(t, 0, 5*time.Second)

	p = runK8s(t, nil, "--k8s.c.address=configmap/cfg", "--k8s.c.for=deleted", "--k8s.c.kubeconfig="+kc, "--k8s.c.interval=10s", "--timeout=60s")
	waitFor(t, p.stderr, "configmap/cfg: still exists")
	k.delete(t, cm)
	p.exit(t, 0, 5*time.Second)

	p = runK8s(t, nil, "--k8s.c.address=configmap/cfg", "--k8s.c.for=condition=Ready", "--k8s.c.kubeconfig="+kc, "--timeout=1s")
	p.exit(t, 1, 10*time.Second)
}

// Credentials from kubeconfig files: a client certificate, and an exec
// plugin (a shell script), whose token is reused until it expires.
func TestKubeKubeconfigCredentials(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	k.create(t, ns, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"}}`)

	certUser := k.certUser(t, "cert-admin", "system:masters")
	key, _ := os.ReadFile(certUser["client-key"].(string))
	p := runK8s(t, nil, "--k8s.c.address=cm/cfg", "--k8s.c.kubeconfig="+k.kubeconfig(t, ns, certUser), "--timeout=20s")
	p.exit(t, 0, 20*time.Second)

	// The same certificate inline, as -data; and a wrong token refused.
	certPEM, keyPEM := k.clientCert(t, "cert-admin", "system:masters")
	inline := map[string]any{"client-certificate-data": base64.StdEncoding.EncodeToString(certPEM), "client-key-data": base64.StdEncoding.EncodeToString(keyPEM)}
	p = runK8s(t, nil, "--k8s.c.address=cm/cfg", "--k8s.c.kubeconfig="+k.kubeconfig(t, ns, inline), "--timeout=20s")
	p.exit(t, 0, 20*time.Second)
	p.noSecrets(t, string(key), string(keyPEM))

	// The CA inline, a token file, and the name the certificate holds
	// asked for although the server is dialled by address.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "token"), []byte(k.AdminToken+"\n"), 0o600)
	kc := filepath.Join(dir, "inline")
	os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
current-context: inline
clusters:
- name: c
  cluster:
    server: `+k.URL+`
    certificate-authority-data: `+base64.StdEncoding.EncodeToString(k.CAPEM)+`
    tls-server-name: localhost
users:
- name: u
  user: {tokenFile: token}
contexts:
- name: inline
  context: {cluster: c, user: u, namespace: `+ns+`}
`), 0o600)
	p = runK8s(t, nil, "--k8s.c.address=cm/cfg", "--k8s.c.kubeconfig="+kc, "--timeout=20s")
	p.exit(t, 0, 20*time.Second)
	p.noSecrets(t, k.AdminToken)
	os.WriteFile(kc+"-wrong-name", []byte(strings.Replace(mustRead(t, kc), "tls-server-name: localhost", "tls-server-name: elsewhere.example", 1)), 0o600)
	os.Rename(kc+"-wrong-name", kc)
	p = runK8s(t, nil, "--k8s.c.address=cm/cfg", "--k8s.c.kubeconfig="+kc, "--timeout=1s")
	p.exit(t, 1, 10*time.Second)
	if !strings.Contains(p.stderr.String(), "elsewhere.example") {
		t.Errorf("a certificate for another name was accepted, or not named:\n%s", p.stderr.String())
	}

	runs := filepath.Join(dir, "runs")
	script := filepath.Join(dir, "creds.sh")
	os.WriteFile(script, []byte(`#!/bin/sh
echo run >> `+runs+`
[ "$MODE" = broken ] && { echo "leaky-output-`+k.AdminToken+`"; exit 3; }
token=$1
# A token the server refuses the first time: revoked before it expired.
[ "$MODE" = revoked ] && [ "$(wc -l < `+runs+`)" -eq 1 ] && token=revoked-token
cat <<EOF
{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"$token","expirationTimestamp":"2099-01-01T00:00:00Z"}}
EOF
`), 0o755)
	// The first attempt is refused (no such configmap yet); the plugin
	// still runs once.
	p = runK8s(t, nil, "--k8s.c.address=cm/later", "--k8s.c.kubeconfig="+k.kubeconfig(t, ns, execUser(script, k.AdminToken)), "--k8s.c.interval=100ms", "--timeout=30s")
	waitFor(t, p.stderr, "configmap/later: not found yet")
	k.create(t, ns, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"later"}}`)
	p.exit(t, 0, 10*time.Second)
	p.noSecrets(t, k.AdminToken)
	if b, _ := os.ReadFile(runs); strings.Count(string(b), "run") != 1 {
		t.Errorf("the plugin ran %d times, want once (its token had not expired)", strings.Count(string(b), "run"))
	}

	// After a 401 the plugin runs again, and its new token is taken.
	os.Remove(runs)
	user := execUser(script, k.AdminToken)
	user["exec"].(map[string]any)["env"] = []any{map[string]any{"name": "MODE", "value": "revoked"}}
	p = runK8s(t, nil, "--k8s.c.address=cm/cfg", "--k8s.c.kubeconfig="+k.kubeconfig(t, ns, user), "--k8s.c.interval=100ms", "--timeout=20s")
	p.exit(t, 0, 20*time.Second)
	if !strings.Contains(p.stderr.String(), "the API server refused the credentials") {
		t.Errorf("the first token was not refused:\n%s", p.stderr.String())
	}
	if b, _ := os.ReadFile(runs); strings.Count(string(b), "run") != 2 {
		t.Errorf("the plugin ran %d times, want twice (again after the 401)", strings.Count(string(b), "run"))
	}
	p.noSecrets(t, k.AdminToken, "revoked-token")

	user = execUser(script, "unused")
	user["exec"].(map[string]any)["env"] = []any{map[string]any{"name": "MODE", "value": "broken"}}
	p = runK8s(t, nil, "--k8s.c.address=cm/cfg", "--k8s.c.kubeconfig="+k.kubeconfig(t, ns, user), "--timeout=1s")
	p.exit(t, 1, 10*time.Second)
	if !strings.Contains(p.stderr.String(), "the exec plugin "+script+" failed: exit status 3") {
		t.Errorf("stderr:\n%s", p.stderr.String())
	}
	p.noSecrets(t, k.AdminToken)
}

// A user without RBAC grants is told what to grant, and waits until it is.
func TestKubeForbiddenThenGranted(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	k.create(t, ns, testJob)
	job := "/apis/batch/v1/namespaces/" + ns + "/jobs/migrate"
	k.completeJob(t, job)
	kc := k.kubeconfig(t, ns, tokenUser(k.LimitedToken))
	p := runK8s(t, nil, "--k8s.m.address=job/migrate", "--k8s.m.kubeconfig="+kc, "--k8s.m.interval=100ms", "--timeout=60s")
	waitFor(t, p.stderr, `cannot list resource \"jobs\" in API group \"batch\" in the namespace \"`+ns+`\"; needs get, list and watch on jobs.batch in namespace `+ns)
	k.createAll(t, ns, `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: wait-for-jobs}
rules: [{apiGroups: [batch], resources: [jobs], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: wait-for-jobs}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: wait-for-jobs}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: limited}]
`)
	p.exit(t, 0, 10*time.Second)
	p.noSecrets(t, k.LimitedToken)

	p = runK8s(t, nil, "--k8s.m.address=job/migrate", "--k8s.m.kubeconfig="+k.kubeconfig(t, ns, tokenUser("not-a-valid-token")), "--timeout=1s")
	p.exit(t, 1, 10*time.Second)
	if !strings.Contains(p.stderr.String(), "the API server refused the credentials") {
		t.Errorf("stderr:\n%s", p.stderr.String())
	}
	p.noSecrets(t, "not-a-valid-token")
}

// An inverted target is not gone when the API server will not say: a
// user without RBAC grants keeps waiting with the reason to grant, and so
// does one whose token is refused; once granted, the ConfigMap is still
// there, and gone when it is deleted.
func TestKubeInvertForbiddenIsNotGone(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	cm := k.create(t, ns, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"lock"}}`)
	args := []string{"--k8s.m.address=cm/lock", "--k8s.m.for=exists", "--k8s.m.invert", "--k8s.m.interval=100ms"}
	p := runK8s(t, nil, append(args, "--k8s.m.kubeconfig="+k.kubeconfig(t, ns, tokenUser(k.LimitedToken)), "--timeout=60s")...)
	waitFor(t, p.stderr, `cannot list resource \"configmaps\" in API group \"\" in the namespace \"`+ns+`\"; needs get, list and watch on configmaps in namespace `+ns)
	select {
	case <-p.done:
		t.Fatalf("a 403 was taken for gone:\n%s", p.stderr.String())
	case <-time.After(500 * time.Millisecond):
	}
	k.grant(t, ns, "limited", "configmaps")
	waitFor(t, p.stderr, "cm/lock is still ready")
	k.delete(t, cm)
	p.exit(t, 0, 10*time.Second)
	p.noSecrets(t, k.LimitedToken)

	p = runK8s(t, nil, append(args, "--k8s.m.kubeconfig="+k.kubeconfig(t, ns, tokenUser("not-a-valid-token")), "--timeout=1s")...)
	p.exit(t, 1, 10*time.Second)
	if !strings.Contains(p.stderr.String(), `level=ERROR msg="not ready" target=m type=k8s address=cm/lock`) ||
		!strings.Contains(p.stderr.String(), `error="the API server refused the credentials"`) {
		t.Errorf("a 401 was taken for gone, or not given as the reason:\n%s", p.stderr.String())
	}
}

// In a pod: the service account's files at their standard paths (made in
// a mount namespace of the test's own), the token read again for every
// attempt, and the namespace taken from the namespace file.
func TestKubeInCluster(t *testing.T) {
	requireRoot(t)
	requireProgram(t, "unshare")
	k := startKube(t)
	ns := k.namespace(t)
	k.create(t, ns, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"}}`)
	token := k.serviceAccountToken(t, ns, "waiter")
	k.createAll(t, ns, `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-configmaps}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-configmaps}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-configmaps}
subjects: [{kind: ServiceAccount, name: waiter, namespace: `+ns+`}]
`)
	sa := t.TempDir()
	os.WriteFile(filepath.Join(sa, "ca.crt"), k.CAPEM, 0o644)
	os.WriteFile(filepath.Join(sa, "namespace"), []byte(ns), 0o644)
	os.WriteFile(filepath.Join(sa, "token"), []byte("expired-or-rotated"), 0o600)
	// A tmpfs over /run in the new mount namespace only: nothing outside
	// it changes.
	script := `set -e
mount --make-rprivate /
mount -t tmpfs tmpfs /run
mkdir -p ` + serviceAccountDir + `
mount --bind "$SA" ` + serviceAccountDir + `
exec "$PP" "$@"`
	cmd := exec.Command("unshare", "-m", "sh", "-c", script, "sh", "--k8s.c.address=cm/cfg", "--k8s.c.interval=100ms", "--timeout=30s")
	cmd.Env = append(os.Environ(), "SA="+sa, "PP="+ppBinary, "KUBECONFIG=", "HOME="+t.TempDir(),
		"KUBERNETES_SERVICE_HOST="+k.Host, "KUBERNETES_SERVICE_PORT="+k.Port)
	p := startPortpatrol(t, cmd)
	waitFor(t, p.stderr, "the API server refused the credentials")
	// The kubelet rotates the token: the next attempt reads the new one.
	os.WriteFile(filepath.Join(sa, "token.new"), []byte(token), 0o600)
	os.Rename(filepath.Join(sa, "token.new"), filepath.Join(sa, "token"))
	p.exit(t, 0, 10*time.Second)
	p.noSecrets(t, token)
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// verdict is a portpatrol run's outcome as kubectl's compares with it:
// 0 ready, 1 not ready.
func (p *ppProcess) verdict(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("still running after %v; stderr:\n%s", within, p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// The built-in kinds portpatrol knows without asking are the server's: the
// same version, plural, singular, short names and scope as its discovery
// lists.
func TestKubeBuiltinKinds(t *testing.T) {
	k := startKube(t)
	type kind struct{ version, singular, shorts, scope string }
	served := map[string]kind{} // by plural.group
	for _, path := range []string{"/api", "/apis"} {
		status, b, err := k.sendAccept(k.AdminToken, path, aggregatedDiscovery)
		if err != nil || status != http.StatusOK {
			t.Fatalf("%s: %d %v", path, status, err)
		}
		var list struct {
			Items []struct {
				Metadata struct{ Name string }
				Versions []struct {
					Version   string
					Resources []struct {
						Resource, SingularResource, Scope string
						ShortNames                        []string
					}
				}
			}
		}
		if err := json.Unmarshal(b, &list); err != nil {
			t.Fatal(err)
		}
		for _, g := range list.Items {
			for _, v := range g.Versions {
				for _, r := range v.Resources {
					key := r.Resource + "." + g.Metadata.Name
					if _, seen := served[key]; !seen { // the preferred version comes first
						shorts := strings.Join(r.ShortNames, ",")
						if shorts == "" {
							shorts = "-"
						}
						served[key] = kind{v.Version, r.SingularResource, shorts, r.Scope[:1]}
					}
				}
			}
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(k8sBuiltins), "\n") {
		f := strings.Fields(line)
		group, _, _ := strings.Cut(f[0], "/")
		if !strings.Contains(f[0], "/") {
			group = ""
		}
		got, ok := served[f[1]+"."+group]
		want := kind{f[0][strings.LastIndex(f[0], "/")+1:], f[2], f[3], f[4]}
		if !ok || got != want {
			t.Errorf("%s: the server serves %+v (%v), the table says %+v", line, got, ok, want)
		}
	}
}

// sendAccept is a GET with an Accept header of its own.
func (k *kubeCluster) sendAccept(token, path, accept string) (int, []byte, error) {
	req, err := http.NewRequest("GET", k.URL+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", accept)
	resp, err := k.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// Every spelling kubectl takes finds the object, as kubectl finds it: kind,
// singular, plural, short name, RESOURCE.GROUP, RESOURCE.VERSION.GROUP, in
// any case, built in or a CRD's; a name neither knows is not found by
// either.
func TestKubeKindsEverySpelling(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	kc := k.kubeconfig(t, ns, tokenUser(k.AdminToken))
	group := strings.ReplaceAll(ns, "-", "") + ".example.com"
	k.createAll(t, ns, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: api, image: api:1}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: api-1}
spec:
  selector: {matchLabels: {app: api1}}
  template:
    metadata: {labels: {app: api1}}
    spec: {containers: [{name: api, image: api:1}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: n, image: n:1}]}}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: waiter}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.`+group+`}
spec:
  group: `+group+`
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget, shortNames: [gdg]}
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
`)
	runK8s(t, nil, "--k8s.crd.address=crd/gadgets."+group, "--k8s.crd.kubeconfig="+kc, "--timeout=30s").exit(t, 0, 30*time.Second)
	k.create(t, ns, `{"apiVersion":"`+group+`/v1","kind":"Gadget","metadata":{"name":"g1"}}`)
	for _, c := range []struct {
		spellings []string
		name      string
	}{
		{[]string{"deployment.v1.apps", "deployments.apps", "deploy", "Deployment", "DEPLOYMENTS", "deployment.apps"}, "api"},
		{[]string{"rs", "replicaset.v1.apps", "ReplicaSets"}, "api-1"},
		{[]string{"cj", "cronjob", "CronJob", "cronjobs.batch", "cronjob.v1.batch"}, "nightly"},
		{[]string{"sa", "serviceaccount", "ServiceAccounts"}, "waiter"},
		{[]string{"gdg", "gadget", "Gadgets", "Gadget", "gadgets." + group, "gadget.v1." + group}, "g1"},
		{[]string{"gizmos", "deployment.v2.apps"}, "api"}, // unknown to both
	} {
		for _, spelling := range c.spellings {
			want, out := kubectl(t, nil, kc, "get", spelling+"/"+c.name)
			p := runK8s(t, nil, "--k8s.x.address="+spelling+"/"+c.name, "--k8s.x.for=exists", "--k8s.x.kubeconfig="+kc, "--timeout=2s")
			if got := p.verdict(t, 10*time.Second); got != want {
				t.Errorf("%s/%s: portpatrol exit %d, kubectl exit %d:\n%s\nkubectl: %s", spelling, c.name, got, want, p.stderr.String(), out)
			}
		}
	}
	// Short names in capitals, which kubectl refuses, are taken too.
	for _, spelling := range []string{"GDG", "RS"} {
		p := runK8s(t, nil, "--k8s.x.address="+spelling+"/x", "--k8s.x.for=deleted", "--k8s.x.kubeconfig="+kc, "--timeout=2s")
		p.exit(t, 0, 10*time.Second)
	}
	// A name discovery does not know is said to be so.
	p := runK8s(t, nil, "--k8s.x.address=gizmos/api", "--k8s.x.kubeconfig="+kc, "--timeout=1s")
	p.exit(t, 1, 10*time.Second)
	if !strings.Contains(p.stderr.String(), "the API server has no resource gizmos (is its CRD installed?)") {
		t.Errorf("stderr:\n%s", p.stderr.String())
	}
}

// The context's namespace beats the pod's, as client-go has it; without
// one in the context, the pod's is used. kubectl, in the same mount
// namespace with the same kubeconfig, agrees.
func TestKubeNamespaceContextBeatsPod(t *testing.T) {
	requireRoot(t)
	requireProgram(t, "unshare")
	k := startKube(t)
	ctxNS, podNS := k.namespace(t), k.namespace(t)
	k.create(t, ctxNS, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"in-context"}}`)
	k.create(t, podNS, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"in-pod"}}`)
	sa := t.TempDir()
	os.WriteFile(filepath.Join(sa, "ca.crt"), k.CAPEM, 0o644)
	os.WriteFile(filepath.Join(sa, "namespace"), []byte(podNS), 0o644)
	os.WriteFile(filepath.Join(sa, "token"), []byte("unused"), 0o600)
	withNS, withoutNS := k.kubeconfig(t, ctxNS, tokenUser(k.AdminToken)), k.kubeconfig(t, "", tokenUser(k.AdminToken))
	script := `set -e
mount --make-rprivate /
mount -t tmpfs tmpfs /run
mkdir -p ` + serviceAccountDir + `
mount --bind "$SA" ` + serviceAccountDir + `
exec "$@"`
	inPod := func(args ...string) (int, string) {
		cmd := exec.Command("unshare", append([]string{"-m", "sh", "-c", script, "sh"}, args...)...)
		cmd.Env = append(os.Environ(), "SA="+sa, "KUBECONFIG=", "HOME="+t.TempDir(),
			"KUBERNETES_SERVICE_HOST="+k.Host, "KUBERNETES_SERVICE_PORT="+k.Port)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	kubectlBin := filepath.Join(kubeBinDir(), "kubectl")
	if _, err := os.Stat(kubectlBin); err != nil {
		requirePrivilege(t, false, "kubectl is not built in "+kubeBinDir()+" (run scripts/kube/build.sh)")
	}
	for _, c := range []struct {
		kubeconfig, object, namespace string
	}{
		{withNS, "in-context", ctxNS}, {withNS, "in-pod", ctxNS},
		{withoutNS, "in-pod", podNS}, {withoutNS, "in-context", podNS},
	} {
		got, out := inPod(ppBinary, "--k8s.c.address=cm/"+c.object, "--k8s.c.kubeconfig="+c.kubeconfig, "--k8s.c.for=exists", "--timeout=1s")
		want, kout := inPod(kubectlBin, "--kubeconfig="+c.kubeconfig, "get", "cm/"+c.object)
		if got != want {
			t.Errorf("cm/%s: portpatrol exit %d, kubectl exit %d:\n%s\nkubectl: %s", c.object, got, want, out, kout)
		}
		if !strings.Contains(out, "msg=waiting target=c type=k8s address=cm/"+c.object+" interval=2s namespace="+c.namespace+" cluster=test") {
			t.Errorf("cm/%s: the waiting line does not name namespace %s and cluster test:\n%s", c.object, c.namespace, out)
		}
	}
}

// A cluster's proxy-url carries every request through an HTTP CONNECT
// proxy or a SOCKS5 one, kubectl's and portpatrol's alike; each proxy here
// counts its tunnels.
func TestKubeProxyURL(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	k.create(t, ns, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"}}`)
	for _, scheme := range []string{"http", "socks5"} {
		t.Run(scheme, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			var tunnels atomic.Int64
			go serveProxy(l, scheme, k.Host+":"+k.Port, k.Host+":"+k.Port, &tunnels)
			kc := k.kubeconfig(t, ns, tokenUser(k.AdminToken))
			config := strings.Replace(mustRead(t, kc), "server: "+k.URL, "server: "+k.URL+"\n        proxy-url: "+scheme+"://pp:pr0xy-pass@"+l.Addr().String(), 1)
			os.WriteFile(kc, []byte(config), 0o600)
			mustKubectl(t, kc, "get", "cm/cfg")
			if tunnels.Load() == 0 {
				t.Fatalf("kubectl made no tunnel through the proxy:\n%s", config)
			}
			before := tunnels.Load()
			p := runK8s(t, nil, "--k8s.c.address=cm/cfg", "--k8s.c.kubeconfig="+kc, "--timeout=10s")
			p.exit(t, 0, 10*time.Second)
			if tunnels.Load() == before {
				t.Errorf("portpatrol made no tunnel through the proxy:\n%s", p.stderr.String())
			}
			p.noSecrets(t, "pr0xy-pass", k.AdminToken)
		})
	}
	// Without proxy-url, HTTPS_PROXY: loopback is never proxied, so the
	// server is named by a name only the proxy knows.
	t.Run("HTTPS_PROXY", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var tunnels atomic.Int64
		name := "kube.portpatrol.invalid:" + k.Port
		go serveProxy(l, "http", name, k.Host+":"+k.Port, &tunnels)
		kc := k.kubeconfig(t, ns, tokenUser(k.AdminToken))
		config := strings.Replace(mustRead(t, kc), "server: "+k.URL, "server: https://"+name+"\n        tls-server-name: localhost", 1)
		os.WriteFile(kc, []byte(config), 0o600)
		env := []string{"HTTPS_PROXY=http://pp:pr0xy-pass@" + l.Addr().String(), "NO_PROXY="}
		if code, out := kubectl(t, env, kc, "get", "cm/cfg"); code != 0 || tunnels.Load() == 0 {
			t.Fatalf("kubectl through HTTPS_PROXY: exit %d, %d tunnels:\n%s", code, tunnels.Load(), out)
		}
		before := tunnels.Load()
		p := runK8s(t, env, "--k8s.c.address=cm/cfg", "--k8s.c.kubeconfig="+kc, "--timeout=10s")
		p.exit(t, 0, 10*time.Second)
		if tunnels.Load() == before {
			t.Errorf("portpatrol made no tunnel through the proxy:\n%s", p.stderr.String())
		}
	})
}

// serveProxy accepts tunnels to target only, which it reaches at dial, with
// the user pp and the password pr0xy-pass: HTTP CONNECT with
// Proxy-Authorization, or SOCKS5 (RFC 1928) with username/password
// authentication (RFC 1929).
func serveProxy(l net.Listener, scheme, target, dial string, tunnels *atomic.Int64) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			if scheme == "http" {
				req, err := http.ReadRequest(r)
				if err != nil || req.Method != "CONNECT" || req.Host != target || req.Header.Get("Proxy-Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte("pp:pr0xy-pass")) {
					fmt.Fprint(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n")
					return
				}
				fmt.Fprint(c, "HTTP/1.1 200 Connection established\r\n\r\n")
			} else {
				// Greeting: version 5, the methods offered; 2 is user/password.
				head := make([]byte, 2)
				if _, err := io.ReadFull(r, head); err != nil || head[0] != 5 {
					return
				}
				methods := make([]byte, head[1])
				io.ReadFull(r, methods)
				c.Write([]byte{5, 2})
				// Sub-negotiation: version 1, user, password.
				ver, _ := r.ReadByte()
				ulen, _ := r.ReadByte()
				user := make([]byte, ulen)
				io.ReadFull(r, user)
				plen, _ := r.ReadByte()
				pass := make([]byte, plen)
				io.ReadFull(r, pass)
				if ver != 1 || string(user) != "pp" || string(pass) != "pr0xy-pass" {
					c.Write([]byte{1, 1})
					return
				}
				c.Write([]byte{1, 0})
				// Request: 5, CONNECT, 0, the address type and address, the port.
				req := make([]byte, 4)
				if _, err := io.ReadFull(r, req); err != nil || req[1] != 1 {
					return
				}
				var host string
				switch req[3] {
				case 1:
					ip := make([]byte, 4)
					io.ReadFull(r, ip)
					host = net.IP(ip).String()
				case 3:
					n, _ := r.ReadByte()
					name := make([]byte, n)
					io.ReadFull(r, name)
					host = string(name)
				default:
					return
				}
				port := make([]byte, 2)
				io.ReadFull(r, port)
				if net.JoinHostPort(host, strconv.Itoa(int(port[0])<<8|int(port[1]))) != target {
					c.Write([]byte{5, 2, 0, 1, 0, 0, 0, 0, 0, 0}) // not allowed
					return
				}
				c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
			}
			up, err := net.Dial("tcp", dial)
			if err != nil {
				return
			}
			defer up.Close()
			tunnels.Add(1)
			go io.Copy(up, r)
			io.Copy(c, up)
		}()
	}
}

// Impersonation: the admin's token with as: limited has only limited's
// rights, refused until they are granted; as-groups is sent too. kubectl
// agrees at each step.
func TestKubeImpersonation(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	k.create(t, ns, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"}}`)
	user := tokenUser(k.AdminToken)
	user["as"] = "limited"
	kc := k.kubeconfig(t, ns, user)
	if code, out := kubectl(t, nil, kc, "get", "cm/cfg"); code == 0 {
		t.Fatalf("kubectl as limited read the ConfigMap:\n%s", out)
	}
	p := runK8s(t, nil, "--k8s.c.address=cm/cfg", "--k8s.c.kubeconfig="+kc, "--k8s.c.interval=100ms", "--timeout=60s")
	waitFor(t, p.stderr, `User \"limited\" cannot list resource \"configmaps\"`)
	k.grant(t, ns, "limited", "configmaps")
	p.exit(t, 0, 20*time.Second)
	mustKubectl(t, kc, "get", "cm/cfg")

	user["as"], user["as-groups"] = "someone", []string{"system:masters"}
	kc = k.kubeconfig(t, ns, user)
	mustKubectl(t, kc, "get", "cm/cfg")
	runK8s(t, nil, "--k8s.c.address=cm/cfg", "--k8s.c.kubeconfig="+kc, "--timeout=5s").exit(t, 0, 10*time.Second)
}

// A token given inline is used when the tokenFile beside it cannot be
// read, as client-go does; a tokenFile alone that cannot be read is not
// ready with kubectl either.
func TestKubeTokenWithMissingTokenFile(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	k.create(t, ns, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"}}`)
	missing := filepath.Join(t.TempDir(), "no-such-token")
	for _, c := range []struct {
		user map[string]any
		want int
	}{
		{map[string]any{"token": k.AdminToken, "tokenFile": missing}, 0},
		{map[string]any{"tokenFile": missing}, 1},
	} {
		kc := k.kubeconfig(t, ns, c.user)
		want, out := kubectl(t, nil, kc, "get", "cm/cfg")
		p := runK8s(t, nil, "--k8s.c.address=cm/cfg", "--k8s.c.kubeconfig="+kc, "--timeout=1s")
		if got := p.verdict(t, 10*time.Second); got != c.want || want != c.want {
			t.Errorf("%v: portpatrol exit %d, kubectl exit %d, want %d:\n%s\nkubectl: %s", c.user["tokenFile"] != nil, got, want, c.want, p.stderr.String(), out)
		}
		p.noSecrets(t, k.AdminToken)
	}
}

// if-missing=ready: a Job seen running and then deleted did not complete;
// one missing from the start is taken as ready, and the ready line says so.
// kubectl wait on the deleted Job does not succeed either.
func TestKubeJobDeletedWhileRunning(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	kc := k.kubeconfig(t, ns, tokenUser(k.AdminToken))
	job := k.create(t, ns, testJob)
	k.runJob(t, job)
	p := runK8s(t, nil, "--k8s.m.address=job/migrate", "--k8s.m.if-missing=ready", "--k8s.m.kubeconfig="+kc, "--k8s.m.interval=10s", "--timeout=4s")
	waitFor(t, p.stderr, "job/migrate: not complete (active 1, succeeded 0, failed 0)")
	// Without a garbage collector, the default (orphan) would hold the Job
	// with a finalizer: said, then gone.
	k.delete(t, job)
	waitFor(t, p.stderr, "job/migrate, being deleted (finalizers orphan): not complete")
	k.patch(t, job, `{"metadata":{"finalizers":null}}`)
	waitFor(t, p.stderr, "job/migrate: deleted before it completed")
	p.exit(t, 1, 10*time.Second)
	if code, out := kubectl(t, nil, kc, "wait", "--for=condition=Complete", "job/migrate", "--timeout=1s"); code == 0 {
		t.Errorf("kubectl wait took the deleted Job as complete:\n%s", out)
	}

	p = runK8s(t, nil, "--k8s.m.address=job/never", "--k8s.m.if-missing=ready", "--k8s.m.kubeconfig="+kc, "--timeout=4s")
	p.exit(t, 0, 10*time.Second)
	if !strings.Contains(p.stderr.String(), `msg=ready target=m type=k8s address=job/never attempts=1`) ||
		!strings.Contains(p.stderr.String(), `note="job/never is missing, taken as ready (if-missing=ready)"`) {
		t.Errorf("the ready line does not say the Job was missing:\n%s", p.stderr.String())
	}
}

// for=field with >= on a Deployment's readyReplicas, checked against what
// kubectl reads at the same path.
func TestKubeFieldAtLeast(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	kc := k.kubeconfig(t, ns, tokenUser(k.AdminToken))
	d := k.create(t, ns, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 3
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: api, image: api:1}]}
`)
	p := runK8s(t, nil, "--k8s.d.address=deployment.v1.apps/api", "--k8s.d.for=field=status.readyReplicas>=2", "--k8s.d.kubeconfig="+kc, "--k8s.d.interval=10s", "--timeout=60s")
	waitFor(t, p.stderr, `deployment/api: no key \"status.readyReplicas\"`)
	for _, ready := range []int{1, 2} {
		k.patchStatus(t, d, fmt.Sprintf(`{"status":{"observedGeneration":1,"replicas":3,"readyReplicas":%d}}`, ready))
		got := strings.TrimSpace(mustKubectl(t, kc, "get", "deployment.v1.apps/api", "-o", "jsonpath={.status.readyReplicas}"))
		if got != strconv.Itoa(ready) {
			t.Fatalf("kubectl reads readyReplicas %q, want %d", got, ready)
		}
		if ready < 2 {
			waitFor(t, p.stderr, "deployment/api: status.readyReplicas is 1, want a number >= 2")
			continue
		}
		p.exit(t, 0, 5*time.Second)
	}
}

// Sixty targets on one resource in one namespace share one list and one
// watch: the process holds a few connections, not sixty, and the last
// object written is seen at once.
func TestKubeSixtyTargetsShareOneWatch(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	kc := k.kubeconfig(t, ns, tokenUser(k.AdminToken))
	args := []string{"--timeout=60s"}
	for i := range 60 {
		id := "t" + strconv.Itoa(i)
		args = append(args, "--k8s."+id+".address=cm/c"+strconv.Itoa(i), "--k8s."+id+".kubeconfig="+kc, "--k8s."+id+".interval=10s")
	}
	// As the release build (nethttpomithttp2): HTTP/1.1, one request per
	// connection at a time.
	p := runK8s(t, []string{"GODEBUG=http2client=0"}, args...)
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(p.stderr.String(), ": not found yet") < 60 {
		if time.Now().After(deadline) {
			t.Fatalf("not every target said not found:\n%s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // the watch is up
	sockets := func() int {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
		n := 0
		for _, fd := range fds {
			if link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", p.cmd.Process.Pid, fd.Name())); strings.HasPrefix(link, "socket:") {
				n++
			}
		}
		return n
	}
	most := sockets()
	var written time.Time
	for i := range 60 {
		k.create(t, ns, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c`+strconv.Itoa(i)+`"}}`)
		written = time.Now()
		most = max(most, sockets())
	}
	p.exit(t, 0, 10*time.Second)
	if most > 4 {
		t.Errorf("the process held %d sockets, want at most 4", most)
	}
	if took := p.ended.Sub(written); took > 100*time.Millisecond {
		t.Errorf("the last ConfigMap was seen %v after it was written, want within 100ms", took)
	}
	t.Logf("at most %d sockets; the last ConfigMap seen and the process ended %v after it was written", most, p.ended.Sub(written))
}

// A watch the RBAC refuses is said once, at warn level, with the verb to
// grant; changes are then seen at the interval.
func TestKubeWatchRefused(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	k.createAll(t, ns, `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: list-only}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: list-only}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: list-only}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: limited}]
`)
	kc := k.kubeconfig(t, ns, tokenUser(k.LimitedToken))
	p := runK8s(t, nil, "--k8s.c.address=cm/later", "--k8s.c.kubeconfig="+kc, "--k8s.c.interval=1500ms", "--timeout=60s")
	waitFor(t, p.stderr, "configmap/later: not found yet")
	waitFor(t, p.stderr, "grant watch on configmaps in namespace "+ns)
	time.Sleep(3 * time.Second) // two more attempts, and watches
	k.create(t, ns, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"later"}}`)
	p.exit(t, 0, 10*time.Second)
	if n := strings.Count(p.stderr.String(), "msg=\"watch refused"); n != 1 {
		t.Errorf("the refused watch was said %d times, want once:\n%s", n, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), `level=WARN msg="watch refused: changes are seen at the interval" resource=configmaps`) {
		t.Errorf("stderr:\n%s", p.stderr.String())
	}
}

// Reasons that tell the state: a Job that failed under
// for=condition=Complete ends the run, as kubectl wait ends; an object
// held by its finalizers says so.
func TestKubeReasons(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	kc := k.kubeconfig(t, ns, tokenUser(k.AdminToken))
	job := k.create(t, ns, testJob)
	k.failJob(t, job, "BackoffLimitExceeded", "Job has reached the specified backoff limit")
	p := runK8s(t, nil, "--k8s.m.address=job/migrate", "--k8s.m.for=condition=Complete", "--k8s.m.kubeconfig="+kc, "--timeout=30s")
	p.exit(t, 1, 10*time.Second)
	if !strings.Contains(p.stderr.String(), "gave up on k8s target m: job/migrate: failed: BackoffLimitExceeded") {
		t.Errorf("stderr:\n%s", p.stderr.String())
	}
	if code, out := kubectl(t, nil, kc, "wait", "--for=condition=Complete", "job/migrate", "--timeout=1s"); code == 0 {
		t.Errorf("kubectl wait took the failed Job as complete:\n%s", out)
	}

	cm := k.create(t, ns, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"held","finalizers":["example.com/hold"]}}`)
	k.delete(t, cm)
	p = runK8s(t, nil, "--k8s.c.address=cm/held", "--k8s.c.for=deleted", "--k8s.c.kubeconfig="+kc, "--timeout=1s")
	p.exit(t, 1, 10*time.Second)
	if !strings.Contains(p.stderr.String(), "configmap/held: still exists, being deleted (finalizers example.com/hold)") {
		t.Errorf("stderr:\n%s", p.stderr.String())
	}
	if code, out := kubectl(t, nil, kc, "wait", "--for=delete", "cm/held", "--timeout=1s"); code == 0 {
		t.Errorf("kubectl wait took the held ConfigMap as deleted:\n%s", out)
	}
	k.patch(t, cm, `{"metadata":{"finalizers":null}}`)
	runK8s(t, nil, "--k8s.c.address=cm/held", "--k8s.c.for=deleted", "--k8s.c.kubeconfig="+kc, "--timeout=10s").exit(t, 0, 10*time.Second)

	// A 403 names all a Service target reads, at once.
	p = runK8s(t, nil, "--k8s.s.address=svc/db", "--k8s.s.kubeconfig="+k.kubeconfig(t, ns, tokenUser(k.LimitedToken)), "--timeout=1s")
	p.exit(t, 1, 10*time.Second)
	if !strings.Contains(p.stderr.String(), "; needs get, list and watch on services and endpointslices.discovery.k8s.io in namespace "+ns) {
		t.Errorf("stderr:\n%s", p.stderr.String())
	}
}

// A user whose Role grants one Secret by resourceNames may list and watch
// it with a metadata.name field selector, as kubectl wait does, but not
// the namespace's Secrets: portpatrol falls back to that field selector
// for the target, agreeing with kubectl wait, and a Secret created later
// is seen by the watch. With get alone (no list, no watch) kubectl wait
// is refused but kubectl get answers: portpatrol reads the Secret by name
// at the interval and agrees with kubectl get.
func TestKubeResourceNamesFallback(t *testing.T) {
	k := startKube(t)
	ns := k.namespace(t)
	k.createAll(t, ns, `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: one-secret}
rules:
- {apiGroups: [""], resources: [secrets], resourceNames: [app-creds], verbs: [get, list, watch]}
- {apiGroups: [""], resources: [secrets], resourceNames: [get-only], verbs: [get]}
- {apiGroups: [""], resources: [secrets], resourceNames: [no-watch], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: one-secret}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: one-secret}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: limited}]
`)
	k.create(t, ns, `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"other"}}`)
	kc := k.kubeconfig(t, ns, tokenUser(k.LimitedToken))
	deadline := time.Now().Add(10 * time.Second) // the authorizer sees the Role a moment later
	for {
		if code, _ := kubectl(t, nil, kc, "auth", "can-i", "get", "secret/get-only"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the Role was not seen within 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, c := range []struct {
		verb, what string
		can        bool
	}{
		{"list", "secrets", false}, {"watch", "secrets", false},
		{"list", "secret/app-creds", true}, {"watch", "secret/app-creds", true},
		{"list", "secret/get-only", false}, {"watch", "secret/get-only", false},
	} {
		if code, out := kubectl(t, nil, kc, "auth", "can-i", c.verb, c.what); (code == 0) != c.can {
			t.Errorf("kubectl auth can-i %s %s: exit %d, want yes %v: %s", c.verb, c.what, code, c.can, out)
		}
	}
	args := func(name string, timeout string) []string {
		return []string{"--k8s.s.address=secret/" + name, "--k8s.s.kubeconfig=" + kc, "--k8s.s.interval=10s", "--timeout=" + timeout}
	}

	// Before the Secret exists: not ready, as kubectl wait says.
	p := runK8s(t, nil, args("app-creds", "1s")...)
	if got, want := p.verdict(t, 10*time.Second), kubectlVerdict(t, kc, "wait", "--for=create", "secret/app-creds", "--timeout=1s"); got != want || got != 1 {
		t.Errorf("before the Secret: portpatrol exit %d, kubectl wait %d, want both 1:\n%s", got, want, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "secret/app-creds: not found yet") {
		t.Errorf("stderr:\n%s", p.stderr.String())
	}

	// Created while waiting with a 10 s interval: the watch brings it.
	p = runK8s(t, nil, args("app-creds", "30s")...)
	waitFor(t, p.stderr, "secret/app-creds: not found yet")
	k.create(t, ns, `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"app-creds"},"stringData":{"password":"s3cr3t-value"}}`)
	p.exit(t, 0, 5*time.Second)
	if got := kubectlVerdict(t, kc, "wait", "--for=create", "secret/app-creds", "--timeout=5s"); got != 0 {
		t.Errorf("kubectl wait on the created Secret: exit %d, want 0", got)
	}
	if strings.Contains(p.stderr.String(), "refused") || strings.Contains(p.stderr.String(), "forbidden") {
		t.Errorf("the fallback works, yet something was said refused:\n%s", p.stderr.String())
	}
	p.noSecrets(t, k.LimitedToken, "s3cr3t-value")

	// get alone: kubectl wait is refused; kubectl get and portpatrol agree.
	if got := kubectlVerdict(t, kc, "wait", "--for=create", "secret/get-only", "--timeout=1s"); got == 0 {
		t.Error("kubectl wait succeeded without list and watch")
	}
	p = runK8s(t, nil, args("get-only", "1s")...)
	if got, want := p.verdict(t, 10*time.Second), kubectlVerdict(t, kc, "get", "secret/get-only"); got != want || got != 1 {
		t.Errorf("before the Secret: portpatrol exit %d, kubectl get %d, want both 1:\n%s", got, want, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "secret/get-only: not found yet") {
		t.Errorf("stderr:\n%s", p.stderr.String())
	}
	p = runK8s(t, nil, "--k8s.s.address=secret/get-only", "--k8s.s.kubeconfig="+kc, "--k8s.s.interval=500ms", "--timeout=30s")
	waitFor(t, p.stderr, "secret/get-only: not found yet")
	waitFor(t, p.stderr, `level=WARN msg="list refused: read by name at the interval"`)
	k.create(t, ns, `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"get-only"}}`)
	p.exit(t, 0, 5*time.Second)
	if got := kubectlVerdict(t, kc, "get", "secret/get-only"); got != 0 {
		t.Errorf("kubectl get on the created Secret: exit %d, want 0", got)
	}
	if n := strings.Count(p.stderr.String(), "list refused"); n != 1 {
		t.Errorf("the refused list was said %d times, want once:\n%s", n, p.stderr.String())
	}

	// list without watch, of one name: said once, with the name, and
	// seen at the interval.
	p = runK8s(t, nil, "--k8s.s.address=secret/no-watch", "--k8s.s.kubeconfig="+kc, "--k8s.s.interval=500ms", "--timeout=30s")
	waitFor(t, p.stderr, "secret/no-watch: not found yet")
	waitFor(t, p.stderr, `; grant watch on secrets named no-watch in namespace `+ns)
	k.create(t, ns, `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"no-watch"}}`)
	p.exit(t, 0, 5*time.Second)
	if got := kubectlVerdict(t, kc, "get", "secret/no-watch"); got != 0 {
		t.Errorf("kubectl get on the created Secret: exit %d, want 0", got)
	}

	// A Secret the Role does not name is refused, with what to grant.
	p = runK8s(t, nil, args("other", "1s")...)
	if got, want := p.verdict(t, 10*time.Second), kubectlVerdict(t, kc, "get", "secret/other"); got != want || got != 1 {
		t.Errorf("a Secret not granted: portpatrol exit %d, kubectl get %d, want both 1:\n%s", got, want, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), `cannot list resource \"secrets\" in API group \"\" in the namespace \"`+ns+`\"; needs get, list and watch on secrets in namespace `+ns+`, or on secret/other alone (a Role's resourceNames)`) {
		t.Errorf("stderr:\n%s", p.stderr.String())
	}
}

// kubectlVerdict is kubectl's exit code as a verdict: 0 ready, 1 not.
func kubectlVerdict(t *testing.T, kubeconfig string, args ...string) int {
	t.Helper()
	if code, _ := kubectl(t, nil, kubeconfig, args...); code != 0 {
		return 1
	}
	return 0
}
