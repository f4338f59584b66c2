package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The k8s type waits on Kubernetes objects: a Job that completed, a
// Deployment rolled out, a Service with ready endpoints. Readiness follows
// `kubectl rollout status` and `kubectl wait`; the client is in k8sapi.go.

func init() {
	register("k8s", &targetType{
		ready:      "when a Kubernetes object (address KIND/NAME, or KIND with a selector) is ready: a Job complete, a Deployment rolled out, a Service with ready endpoints, ...",
		properties: k8sProperties,
		settings:   func() any { return &k8sSettings{min: 1} },
		finish:     finishK8s,
		build:      buildK8s,
		stop:       stopPlugins,
	})
}

type k8sSettings struct {
	selector       string
	namespace      string
	want           k8sWant
	min            int
	ifMissingReady bool
	kubeconfig     string
	context        string
}

// k8sWant is what the for property asks of each object.
type k8sWant struct {
	what   string // ready, exists, deleted, condition, field
	name   string // the condition's type, or the field's path
	value  string // the condition's status, or the field's value
	config string // as written, for messages
}

func k8sOf(s *targetSpec) *k8sSettings { return s.settings.(*k8sSettings) }

var k8sProperties = []property{
	{name: "selector", arg: "LABELS", help: "with an address of KIND alone: the objects whose labels match, e.g. app=api,tier!=canary",
		set: func(s *targetSpec, v string) error {
			if err := checkLabelSelector(v); err != nil {
				return err
			}
			k8sOf(s).selector = strings.TrimSpace(v)
			return nil
		}},
	{name: "namespace", arg: "NAME", help: "the objects' namespace (default: the pod's own, else the kubeconfig context's, else default)",
		set: func(s *targetSpec, v string) error {
			if !isDNSLabel(v) {
				return errors.New("not a namespace name " + dnsLabelRule)
			}
			k8sOf(s).namespace = v
			return nil
		}},
	{name: "for", arg: "WHAT", def: "ready", help: "ready, exists, deleted, condition=TYPE[=STATUS] or field=PATH=VALUE",
		set: func(s *targetSpec, v string) (err error) { k8sOf(s).want, err = parseK8sWant(v); return }},
	{name: "min", arg: "N", help: "with a selector: how many objects must match at least; for a Service: how many ready endpoints it needs (default 1)",
		set: func(s *targetSpec, v string) (err error) { k8sOf(s).min, err = parseCount(v, 1); return }},
	{name: "if-missing", arg: "WHAT", def: "wait", help: "wait (an object not there yet is not ready) or ready (a Job cleaned up by its TTL completed)",
		set: func(s *targetSpec, v string) error {
			switch v {
			case "wait", "ready":
				k8sOf(s).ifMissingReady = v == "ready"
				return nil
			}
			return errors.New("want wait or ready")
		}},
	{name: "kubeconfig", arg: "PATH", help: "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else the pod's service account)",
		set: func(s *targetSpec, v string) error { k8sOf(s).kubeconfig = v; return nonEmpty(v) }},
	{name: "context", arg: "NAME", help: "kubeconfig context (default: its current-context)",
		set: func(s *targetSpec, v string) error { k8sOf(s).context = v; return nonEmpty(v) }},
	func() property {
		p := timeoutProperty("how long one attempt's requests may take")
		p.def = "5s"
		return p
	}(),
}

func parseK8sWant(v string) (k8sWant, error) {
	w := k8sWant{what: v, config: v}
	what, rest, _ := strings.Cut(v, "=")
	switch what {
	case "ready", "exists", "deleted":
		if rest != "" || strings.Contains(v, "=") {
			return w, errorf("%s takes no value", what)
		}
		return w, nil
	case "condition":
		typ, status, hasStatus := strings.Cut(rest, "=")
		if typ == "" {
			return w, errors.New("condition needs a type, e.g. condition=Available or condition=Ready=False")
		}
		if !hasStatus {
			status = "True"
		}
		if status == "" {
			return w, errors.New("condition=TYPE= needs a status after =, e.g. True, False or Unknown")
		}
		return k8sWant{what: "condition", name: typ, value: status, config: v}, nil
	case "field":
		path, value, ok := strings.Cut(rest, "=")
		if !ok || path == "" {
			return w, errors.New("field needs a path and a value, e.g. field=status.phase=Succeeded")
		}
		for _, seg := range strings.Split(path, ".") {
			if seg == "" {
				return w, errorf("the path %q has an empty segment", path)
			}
		}
		return k8sWant{what: "field", name: path, value: value, config: v}, nil
	}
	return w, errors.New("want ready, exists, deleted, condition=TYPE[=STATUS] or field=PATH=VALUE")
}

func finishK8s(s *targetSpec) []error {
	if s.isGiven("min") && k8sOf(s).want.what == "deleted" {
		return []error{errorf("%s does not go with %s=deleted: deleted means no object is left", s.flag("min"), s.flag("for"))}
	}
	return nil
}

// k8sResource is one kind of object and how to reach its collection.
type k8sResource struct {
	group, version, resource string
	singular                 string // shown in reasons: job/migrate
	namespaced               bool
	ready                    string // which readiness rule; "" is condition Ready=True
}

// k8sKinds are the built-in kinds by every name kubectl accepts for them.
// Other kinds are found through discovery, as RESOURCE.GROUP.
var k8sKinds = func() map[string]k8sResource {
	m := map[string]k8sResource{}
	for _, k := range []struct {
		names string
		r     k8sResource
	}{
		{"job jobs", k8sResource{"batch", "v1", "jobs", "job", true, "job"}},
		{"deployment deployments deploy", k8sResource{"apps", "v1", "deployments", "deployment", true, "deployment"}},
		{"statefulset statefulsets sts", k8sResource{"apps", "v1", "statefulsets", "statefulset", true, "statefulset"}},
		{"daemonset daemonsets ds", k8sResource{"apps", "v1", "daemonsets", "daemonset", true, "daemonset"}},
		{"pod pods po", k8sResource{"", "v1", "pods", "pod", true, "pod"}},
		{"service services svc", k8sResource{"", "v1", "services", "service", true, "service"}},
		{"persistentvolumeclaim persistentvolumeclaims pvc", k8sResource{"", "v1", "persistentvolumeclaims", "persistentvolumeclaim", true, "pvc"}},
		{"customresourcedefinition customresourcedefinitions crd crds", k8sResource{"apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition", false, "crd"}},
		{"node nodes no", k8sResource{"", "v1", "nodes", "node", false, "node"}},
		{"namespace namespaces ns", k8sResource{"", "v1", "namespaces", "namespace", false, "namespace"}},
		{"configmap configmaps cm", k8sResource{"", "v1", "configmaps", "configmap", true, "exists"}},
		{"secret secrets", k8sResource{"", "v1", "secrets", "secret", true, "exists"}},
	} {
		for _, n := range strings.Fields(k.names) {
			m[n] = k.r
		}
	}
	return m
}()

// endpointSlices is where a Service's endpoints are.
var endpointSlices = k8sResource{"discovery.k8s.io", "v1", "endpointslices", "endpointslice", true, ""}

// collection is the path of the resource's objects in namespace ns.
func (r k8sResource) collection(ns string) string {
	p := "/api/" + r.version
	if r.group != "" {
		p = "/apis/" + r.group + "/" + r.version
	}
	if r.namespaced {
		p += "/namespaces/" + ns
	}
	return p + "/" + r.resource
}

// rbacName is the resource as a Role names it: jobs.batch, pods.
func (r k8sResource) rbacName() string {
	if r.group == "" {
		return r.resource
	}
	return r.resource + "." + r.group
}

func buildK8s(s *targetSpec, address string) (built, []error) {
	k := k8sOf(s)
	var problems []error
	kind, name, named := strings.Cut(address, "/")
	c := &k8sCheck{name: name, selector: k.selector, want: k.want, min: k.min, ifMissingReady: k.ifMissingReady, timeout: s.timeout}
	lower := strings.ToLower(kind)
	if r, ok := k8sKinds[lower]; ok {
		c.res = &r
	} else if res, group, ok := strings.Cut(lower, "."); ok && isDNSLabel(res) && isDNSSubdomain(group) {
		c.discover = [2]string{res, group}
	} else {
		problems = append(problems, addressError{errorf("unknown kind %q: want a kind such as job, deployment, sts, svc, pvc, crd, or RESOURCE.GROUP (certificates.cert-manager.io) for others", kind)})
	}
	switch {
	case named && (name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/ \t\n?#%")):
		problems = append(problems, addressError{errors.New("want KIND/NAME with a name of letters, digits, -, . and :")})
	case named && k.selector != "":
		problems = append(problems, errorf("%s goes with an address of KIND alone, not KIND/NAME", s.flag("selector")))
	case !named && !s.isGiven("selector"):
		problems = append(problems, addressError{errorf("want KIND/NAME, or KIND alone with %s", s.flag("selector"))})
	case named:
		if err := c.nameError(); err != nil {
			problems = append(problems, addressError{err})
		}
	}
	// min with a name means a Service's endpoints (deleted is refused in
	// finishK8s already).
	service := c.res != nil && c.res.ready == "service"
	switch {
	case !named || !s.isGiven("min") || k.want.what == "deleted":
	case !service:
		problems = append(problems, addressError{errorf("%s does not go with a name: it counts the objects %s matches, or a Service's ready endpoints", s.flag("min"), s.flag("selector"))})
	case k.want.what != "ready":
		problems = append(problems, errorf("%s counts a Service's ready endpoints, which only %s=ready looks at, not %s=%s", s.flag("min"), s.flag("for"), s.flag("for"), k.want.config))
	}
	api, err := newKubeAPI(s, k.kubeconfig, k.context)
	if err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return built{}, problems
	}
	c.api = api
	c.namespace = k.namespace
	if c.namespace == "" {
		c.namespace = podNamespace()
	}
	if c.namespace == "" && api.namespace != "" {
		if !isDNSLabel(api.namespace) {
			return built{}, []error{errorf("%s: its namespace %q is not a namespace name %s", api.where, api.namespace, dnsLabelRule)}
		}
		c.namespace = api.namespace
	}
	if c.namespace == "" {
		c.namespace = "default"
	}
	return built{checker: c, address: address, secrets: api.secrets}, nil
}

// The API's rules for names, as messages state them.
const (
	dnsSubdomainRule = "(lower-case letters, digits, - and ., at most 253, starting and ending with a letter or digit)"
	dnsLabelRule     = "(lower-case letters, digits and -, at most 63, starting and ending with a letter or digit)"
	dns1035LabelRule = "(lower-case letters, digits and -, at most 63, starting with a letter and ending with a letter or digit)"
)

// nameError says why the target's name cannot name an object of its kind:
// the API wants an RFC 1123 subdomain for most kinds (custom resources
// included), a label for a Namespace and an RFC 1035 label for a Service.
// Kubernetes' own groups, reached as RESOURCE.GROUP, have kinds with other
// names (clusterroles.rbac.authorization.k8s.io/system:aggregate-to-view):
// for them, only what cannot be in a path is refused, by the caller.
func (c *k8sCheck) nameError() error {
	kind, rule, ok := "", dnsSubdomainRule, isDNSSubdomain(c.name)
	switch {
	case c.res != nil:
		kind = c.res.singular
		switch c.res.resource {
		case "namespaces":
			rule, ok = dnsLabelRule, isDNSLabel(c.name)
		case "services":
			rule, ok = dns1035LabelRule, isDNSLabel(c.name) && 'a' <= c.name[0] && c.name[0] <= 'z'
		}
	case c.discover[1] != "":
		group := c.discover[1]
		if !strings.Contains(group, ".") || group == "k8s.io" || strings.HasSuffix(group, ".k8s.io") {
			return nil
		}
		kind = c.discover[0] + "." + group
	default:
		return nil // the kind is unknown, and said so
	}
	if ok {
		return nil
	}
	return errorf("%q is not a valid %s name %s", c.name, kind, rule)
}

// k8sCheck is ready when the named object, or every object matching the
// selector, meets what for asks.
type k8sCheck struct {
	api            *kubeAPI
	res            *k8sResource // nil until discovery found it
	discover       [2]string    // resource and group to find
	name           string       // "" with a selector
	selector       string
	namespace      string
	want           k8sWant
	min            int
	ifMissingReady bool
	timeout        time.Duration

	mu      sync.Mutex
	wake    chan struct{} // nil until changes is called
	watches map[string]*k8sWatch
}

// k8sObject holds the fields readiness reads, of every kind at once.
type k8sObject struct {
	Metadata struct {
		Name       string
		Generation int64
	}
	Spec struct {
		Replicas       *int64
		UpdateStrategy string
	}
	Status struct {
		ObservedGeneration     int64
		Conditions             []k8sCondition
		Phase                  string
		Replicas               int64
		UpdatedReplicas        int64
		ReadyReplicas          int64
		AvailableReplicas      int64
		CurrentRevision        string
		UpdateRevision         string
		DesiredNumberScheduled int64
		UpdatedNumberScheduled int64
		NumberAvailable        int64
		Active                 int64
		Succeeded              int64
		Failed                 int64
	}
}

type k8sCondition struct {
	Type, Status, Reason, Message string
	ObservedGeneration            int64
}

// k8sObjectOf reads an object as the API sends it; a field of another
// shape than expected reads as absent (a custom resource's status.phase
// may be an object).
func k8sObjectOf(v any) k8sObject {
	var o k8sObject
	meta, spec, status := jsonAt(v, "metadata"), jsonAt(v, "spec"), jsonAt(v, "status")
	o.Metadata.Name = jsonString(jsonAt(meta, "name"))
	o.Metadata.Generation = jsonInt(jsonAt(meta, "generation"))
	if n, ok := jsonAt(spec, "replicas").(jsonNumber); ok {
		r := jsonInt(n)
		o.Spec.Replicas = &r
	}
	o.Spec.UpdateStrategy = jsonString(jsonAt(spec, "updateStrategy", "type"))
	st := &o.Status
	for _, c := range jsonList(jsonAt(status, "conditions")) {
		st.Conditions = append(st.Conditions, k8sCondition{
			jsonString(jsonAt(c, "type")), jsonString(jsonAt(c, "status")),
			jsonString(jsonAt(c, "reason")), jsonString(jsonAt(c, "message")),
			jsonInt(jsonAt(c, "observedGeneration")),
		})
	}
	st.ObservedGeneration = jsonInt(jsonAt(status, "observedGeneration"))
	st.Phase = jsonString(jsonAt(status, "phase"))
	st.CurrentRevision = jsonString(jsonAt(status, "currentRevision"))
	st.UpdateRevision = jsonString(jsonAt(status, "updateRevision"))
	st.Replicas = jsonInt(jsonAt(status, "replicas"))
	st.UpdatedReplicas = jsonInt(jsonAt(status, "updatedReplicas"))
	st.ReadyReplicas = jsonInt(jsonAt(status, "readyReplicas"))
	st.AvailableReplicas = jsonInt(jsonAt(status, "availableReplicas"))
	st.DesiredNumberScheduled = jsonInt(jsonAt(status, "desiredNumberScheduled"))
	st.UpdatedNumberScheduled = jsonInt(jsonAt(status, "updatedNumberScheduled"))
	st.NumberAvailable = jsonInt(jsonAt(status, "numberAvailable"))
	st.Active = jsonInt(jsonAt(status, "active"))
	st.Succeeded = jsonInt(jsonAt(status, "succeeded"))
	st.Failed = jsonInt(jsonAt(status, "failed"))
	return o
}

func (c *k8sCheck) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := c.resource(ctx)
	if err != nil {
		return c.explain(ctx, err, k8sResource{})
	}
	query := "labelSelector=" + url.QueryEscape(c.selector)
	if c.name != "" {
		query = "fieldSelector=" + url.QueryEscape("metadata.name="+c.name)
	}
	path := res.collection(c.namespace) + "?" + query
	list, err := c.api.get(ctx, path)
	if err != nil {
		return c.explain(ctx, err, *res)
	}
	c.listed(path, jsonString(jsonAt(list, "metadata", "resourceVersion")))
	items := jsonList(jsonAt(list, "items"))
	what := res.singular
	if c.name != "" {
		what += "/" + c.name
	}
	if c.want.what == "deleted" {
		switch {
		case len(items) == 0:
			return nil
		case c.name != "":
			return errorf("%s: still exists", what)
		}
		return errorf("%d %s match %s, want none", len(items), res.resource, c.selector)
	}
	if len(items) == 0 && c.ifMissingReady {
		return nil
	}
	if c.name != "" && len(items) == 0 {
		return errorf("%s: not found yet", what)
	}
	if c.name == "" && len(items) < c.min {
		return errorf("%d %s match %s, want at least %d", len(items), res.resource, c.selector, c.min)
	}
	for _, item := range items {
		if err := c.objectReady(ctx, *res, item); err != nil {
			return err
		}
	}
	return nil
}

// objectReady decides one object.
func (c *k8sCheck) objectReady(ctx context.Context, res k8sResource, item any) error {
	o := k8sObjectOf(item)
	what := res.singular + "/" + o.Metadata.Name
	var err error
	switch c.want.what {
	case "exists":
	case "condition":
		err = wantCondition(&o, c.want.name, c.want.value)
	case "field":
		err = wantField(item, c.want.name, c.want.value, res.resource == "secrets")
	default:
		if res.ready == "service" {
			err = c.endpointsReady(ctx, o.Metadata.Name)
		} else {
			err = objectReady(res.ready, &o)
		}
	}
	if err == nil {
		return nil
	}
	return errorf("%s: %w", what, err) // still a finalError, or unseen
}

// objectReady applies the readiness rule of a kind (see the README).
func objectReady(rule string, o *k8sObject) error {
	st := &o.Status
	current := st.ObservedGeneration >= o.Metadata.Generation
	replicas := int64(1) // spec.replicas defaults to 1
	if o.Spec.Replicas != nil {
		replicas = *o.Spec.Replicas
	}
	switch rule {
	case "exists":
		return nil
	case "job":
		if c := condition(o, "Failed"); c != nil && c.Status == "True" {
			return finalError{errorf("failed: %s", conditionText(c))}
		}
		if c := condition(o, "Complete"); c != nil && c.Status == "True" {
			return nil
		}
		return errorf("not complete (active %d, succeeded %d, failed %d)", st.Active, st.Succeeded, st.Failed)
	case "deployment":
		// The rules of kubectl rollout status.
		if !current {
			return errors.New("waiting for the new spec to be observed")
		}
		if c := condition(o, "Progressing"); c != nil && c.Reason == "ProgressDeadlineExceeded" {
			return finalError{errorf("rollout exceeded its progress deadline: %s", conditionText(c))}
		}
		switch {
		case st.UpdatedReplicas < replicas:
			return errorf("%d of %d replicas updated", st.UpdatedReplicas, replicas)
		case st.Replicas > st.UpdatedReplicas:
			return errorf("%d old replicas are pending termination", st.Replicas-st.UpdatedReplicas)
		case st.AvailableReplicas < st.UpdatedReplicas:
			return errorf("%d of %d updated replicas available", st.AvailableReplicas, st.UpdatedReplicas)
		}
		return nil
	case "statefulset":
		switch {
		case !current:
			return errors.New("waiting for the new spec to be observed")
		case st.ReadyReplicas < replicas:
			return errorf("%d of %d replicas ready", st.ReadyReplicas, replicas)
		case st.UpdatedReplicas < replicas:
			return errorf("%d of %d replicas updated", st.UpdatedReplicas, replicas)
		case o.Spec.UpdateStrategy != "OnDelete" && st.CurrentRevision != st.UpdateRevision:
			return errorf("rolling update from revision %s to %s not finished", st.CurrentRevision, st.UpdateRevision)
		}
		return nil
	case "daemonset":
		switch {
		case !current:
			return errors.New("waiting for the new spec to be observed")
		case st.UpdatedNumberScheduled < st.DesiredNumberScheduled:
			return errorf("%d of %d pods updated", st.UpdatedNumberScheduled, st.DesiredNumberScheduled)
		case st.NumberAvailable < st.DesiredNumberScheduled:
			return errorf("%d of %d pods available", st.NumberAvailable, st.DesiredNumberScheduled)
		}
		return nil
	case "pod":
		if st.Phase == "Succeeded" {
			return nil // a completed pod does not block
		}
		if err := wantCondition(o, "Ready", "True"); err != nil {
			return errorf("phase %s, %v", orNone(st.Phase), err)
		}
		return nil
	case "pvc":
		return wantPhase(st.Phase, "Bound")
	case "namespace":
		return wantPhase(st.Phase, "Active")
	case "crd":
		return wantCondition(o, "Established", "True")
	}
	return wantCondition(o, "Ready", "True") // nodes, and the convention of most operators
}

func wantPhase(phase, want string) error {
	if phase == want {
		return nil
	}
	return errorf("phase %s, want %s", orNone(phase), want)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// condition finds a condition by type, ignoring one written for an older
// generation of the object (stale).
func condition(o *k8sObject, typ string) *k8sCondition {
	for i, c := range o.Status.Conditions {
		if strings.EqualFold(c.Type, typ) {
			if c.ObservedGeneration != 0 && c.ObservedGeneration < o.Metadata.Generation {
				return nil
			}
			return &o.Status.Conditions[i]
		}
	}
	return nil
}

func conditionText(c *k8sCondition) string {
	s := orNone(c.Reason)
	if c.Message != "" {
		s += ": " + serverText(c.Message, 300)
	}
	return s
}

func wantCondition(o *k8sObject, typ, status string) error {
	c := condition(o, typ)
	switch {
	case c == nil:
		return errorf("no current condition %s yet", typ)
	case strings.EqualFold(c.Status, status):
		return nil
	}
	return errorf("condition %s is %s, want %s (%s)", c.Type, c.Status, status, conditionText(c))
}

// wantField compares the text at a dot path with value, as the json:
// resolver reads it. A Secret's values are never quoted.
func wantField(object any, path, value string, secret bool) error {
	got, err := lookupPath(object, path)
	switch {
	case err != nil && secret:
		return errorf("%s: not found", path)
	case err != nil:
		return err
	case got == value:
		return nil
	case secret:
		return errorf("%s differs from the value wanted", path)
	}
	return errorf("%s is %s, want %s", path, serverText(got, 200), value)
}

// endpointsReady counts the ready endpoints in a Service's EndpointSlices.
func (c *k8sCheck) endpointsReady(ctx context.Context, service string) error {
	path := endpointSlices.collection(c.namespace) + "?labelSelector=" + url.QueryEscape("kubernetes.io/service-name="+service)
	slices, err := c.api.get(ctx, path)
	if err != nil {
		return c.explain(ctx, err, endpointSlices)
	}
	c.listed(path, jsonString(jsonAt(slices, "metadata", "resourceVersion")))
	want := c.min
	if c.name == "" {
		want = 1 // with a selector, min counts Services
	}
	ready := 0
	for _, s := range jsonList(jsonAt(slices, "items")) {
		for _, e := range jsonList(jsonAt(s, "endpoints")) {
			// An absent ready condition means ready, as the API defines.
			if r := jsonAt(e, "conditions", "ready"); r == nil || r == true {
				ready++
			}
		}
	}
	if ready < want {
		return errorf("%d ready endpoints, want %d", ready, want)
	}
	return nil
}

// resource is the target's kind, found through discovery once for a
// RESOURCE.GROUP: /apis/GROUP names the preferred version, whose resource
// list holds the resource.
func (c *k8sCheck) resource(ctx context.Context) (*k8sResource, error) {
	c.mu.Lock()
	res := c.res
	c.mu.Unlock()
	if res != nil {
		return res, nil
	}
	name, group := c.discover[0], c.discover[1]
	missing := errorf("the API server has no resource %s.%s (is its CRD installed?)", name, group)
	g, err := c.api.get(ctx, "/apis/"+url.PathEscape(group))
	if err != nil {
		if st, ok := errors.AsType[*apiStatus](err); ok && st.code == http.StatusNotFound {
			return nil, missing
		}
		return nil, err
	}
	v := jsonString(jsonAt(g, "preferredVersion", "version"))
	list, err := c.api.get(ctx, "/apis/"+url.PathEscape(group)+"/"+url.PathEscape(v))
	if err != nil {
		return nil, err
	}
	for _, r := range jsonList(jsonAt(list, "resources")) {
		plural, singular := jsonString(jsonAt(r, "name")), jsonString(jsonAt(r, "singularName"))
		if strings.Contains(plural, "/") { // a subresource, such as jobs/status
			continue
		}
		names := []string{plural, singular}
		for _, n := range jsonList(jsonAt(r, "shortNames")) {
			names = append(names, jsonString(n))
		}
		for _, n := range names {
			if n != "" && strings.EqualFold(n, name) {
				if singular == "" {
					singular = plural
				}
				res = &k8sResource{group, v, plural, singular, jsonAt(r, "namespaced") == true, ""}
				if found, ok := k8sKinds[plural]; ok && found.group == group {
					res = &found // jobs.batch is a job
				}
				c.mu.Lock()
				c.res = res
				c.mu.Unlock()
				return res, nil
			}
		}
	}
	return nil, missing
}

// explain turns a refused request into a reason that says what to do. A
// refusal (401, 403) is unseen: no sign that the object is gone.
func (c *k8sCheck) explain(ctx context.Context, err error, res k8sResource) error {
	st, ok := errors.AsType[*apiStatus](err)
	if !ok {
		if errors.Is(err, errNoAnswer) || ctx.Err() != nil && strings.HasPrefix(err.Error(), "API server ") {
			return errorf("no answer from the API server %s within %v", c.api.shown, c.timeout)
		}
		if errors.Is(err, errUnauthorized) {
			return unseen{err}
		}
		return err
	}
	if st.code == http.StatusForbidden {
		where := "in namespace " + c.namespace
		if !res.namespaced {
			where = "cluster-wide"
		}
		if res.resource == "" { // discovery
			return unseen{errorf("%s; needs get on the API's discovery (the system:discovery ClusterRole)", serverText(st.message, 300))}
		}
		return unseen{errorf("%s; needs get, list and watch on %s %s", serverText(st.message, 300), res.rbacName(), where)}
	}
	return err
}

// k8sWatch follows one collection the target reads, from the
// resourceVersion of its last list.
type k8sWatch struct {
	path  string
	mu    sync.Mutex
	rv    string
	fresh chan struct{} // a list gave a new resourceVersion
}

// changes starts a watch on each collection as soon as an attempt lists
// it; an event cuts the pause short.
func (c *k8sCheck) changes() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wake = make(chan struct{}, 1)
	c.watches = map[string]*k8sWatch{}
	return c.wake
}

func (c *k8sCheck) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// listed records a list's resourceVersion for the watch of that path,
// starting the watch the first time.
func (c *k8sCheck) listed(path, rv string) {
	c.mu.Lock()
	if c.watches == nil || rv == "" {
		c.mu.Unlock()
		return
	}
	w := c.watches[path]
	if w == nil {
		w = &k8sWatch{path: path, fresh: make(chan struct{}, 1)}
		c.watches[path] = w
		go c.follow(w)
	}
	c.mu.Unlock()
	w.mu.Lock()
	w.rv = rv
	w.mu.Unlock()
	select {
	case w.fresh <- struct{}{}:
	default:
	}
}

// follow watches w's collection for as long as the process runs. When the
// server ends a watch, or reports 410 Gone, the target is woken for a fresh
// list and the watch starts again from it; after any other failure (or a
// watch that ends at once) it waits for the next attempt's list, so the
// interval stays the fallback. Watches start at most once a second, so one
// that keeps failing is not a busy loop.
func (c *k8sCheck) follow(w *k8sWatch) {
	var started time.Time
	for {
		<-w.fresh
		w.mu.Lock()
		rv := w.rv
		w.mu.Unlock()
		time.Sleep(time.Until(started.Add(time.Second)))
		started = time.Now()
		err := c.api.watch(context.Background(), w.path, rv, c.timeout, c.signal)
		if err == nil && time.Since(started) >= time.Second || errors.Is(err, errGone) {
			c.signal()
			continue
		}
		select { // a list made before this failure is no fresh start
		case <-w.fresh:
		default:
		}
	}
}

// checkLabelSelector accepts the API's label selector syntax: requirements
// separated by commas, each key, !key, key=value, key==value, key!=value,
// key in (v1,v2) or key notin (v1,v2).
func checkLabelSelector(sel string) error {
	sel = strings.TrimSpace(sel)
	if sel == "" {
		return errors.New("must not be empty; e.g. app=api,tier!=canary")
	}
	depth, start := 0, 0
	for i := 0; i <= len(sel); i++ {
		switch {
		case i < len(sel) && sel[i] == '(':
			depth++
		case i < len(sel) && sel[i] == ')':
			depth--
		case i == len(sel) || sel[i] == ',' && depth == 0:
			if err := checkRequirement(strings.TrimSpace(sel[start:i])); err != nil {
				return errorf("%v; want requirements such as app=api,tier!=canary,env in (a,b)", err)
			}
			start = i + 1
		}
	}
	return nil
}

func checkRequirement(req string) error {
	if req == "" {
		return errors.New("an empty requirement")
	}
	if key, ok := strings.CutPrefix(req, "!"); ok {
		return checkLabelKey(strings.TrimSpace(key))
	}
	for _, op := range []string{" notin ", " in "} {
		if key, set, ok := strings.Cut(req, op); ok {
			set = strings.TrimSpace(set)
			if !strings.HasPrefix(set, "(") || !strings.HasSuffix(set, ")") {
				return errorf("%q needs its values in parentheses", strings.TrimSpace(op))
			}
			for _, v := range strings.Split(set[1:len(set)-1], ",") {
				if err := checkLabelValue(strings.TrimSpace(v)); err != nil {
					return err
				}
			}
			return checkLabelKey(strings.TrimSpace(key))
		}
	}
	i := strings.IndexAny(req, "=!<>")
	if i < 0 {
		return checkLabelKey(req)
	}
	key, rest := strings.TrimSpace(req[:i]), req[i:]
	var value string
	switch {
	case strings.HasPrefix(rest, "=="), strings.HasPrefix(rest, "!="):
		value = rest[2:]
	case rest[0] == '=', rest[0] == '<', rest[0] == '>':
		value = rest[1:]
	default:
		return errorf("%q is not a requirement", req)
	}
	if err := checkLabelKey(key); err != nil {
		return err
	}
	return checkLabelValue(strings.TrimSpace(value))
}

func checkLabelKey(key string) error {
	prefix, name, hasPrefix := strings.Cut(key, "/")
	if !hasPrefix {
		name = key
	}
	if hasPrefix && !isDNSSubdomain(prefix) || !isLabelName(name) || name == "" {
		return errorf("%q is not a label key", key)
	}
	return nil
}

func checkLabelValue(v string) error {
	if !isLabelName(v) {
		return errorf("%q is not a label value (at most 63 letters, digits, -, _ and ., starting and ending with a letter or digit)", v)
	}
	return nil
}

// isLabelName: at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends; ""
// is allowed (an empty value).
func isLabelName(s string) bool {
	if len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		alnum := '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
		if !alnum && ((i == 0 || i == len(s)-1) || b != '-' && b != '_' && b != '.') {
			return false
		}
	}
	return true
}

// isDNSLabel is RFC 1123's label, as namespaces are named.
func isDNSLabel(s string) bool {
	return len(s) <= 63 && isAlnumDashes(s)
}

// isDNSSubdomain is the API's DNS-1123 subdomain: such labels joined by
// dots, at most 253 in all; the API does not limit one label to 63.
func isDNSSubdomain(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !isAlnumDashes(l) {
			return false
		}
	}
	return true
}

// isAlnumDashes: lower-case letters, digits and -, a letter or digit at
// both ends.
func isAlnumDashes(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; !('a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-') {
			return false
		}
	}
	return true
}
