package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
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
		prepare:    func(log *logger) error { k8sLog = log; return nil },
		build:      buildK8s,
		stop:       stopChildren,
	})
}

// k8sLog is the run's logger, for what a shared watch has to say once.
var k8sLog *logger

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
	name   string // the condition's type
	value  string // the condition's status
	field  jsonExpectation
	config string // as written, for messages
}

func k8sOf(s *targetSpec) *k8sSettings { return s.settings.(*k8sSettings) }

var k8sProperties = []property{
	{name: "selector", arg: "LABELS", aliases: []string{"labels", "label", "l"}, help: "with an address of KIND alone: the objects whose labels match, e.g. app=api,tier!=canary",
		set: func(s *targetSpec, v string) error {
			if err := checkLabelSelector(v); err != nil {
				return err
			}
			k8sOf(s).selector = strings.TrimSpace(v)
			return nil
		}},
	{name: "namespace", arg: "NAME", aliases: []string{"ns", "n"}, help: "the objects' namespace (default: the kubeconfig context's, else the pod's own, else default)",
		set: func(s *targetSpec, v string) error {
			if !isDNSLabel(v) {
				return errors.New("not a namespace name " + dnsLabelRule)
			}
			k8sOf(s).namespace = v
			return nil
		}},
	{name: "for", arg: "WHAT", def: "ready", help: "ready, exists, deleted, condition=TYPE[=STATUS] or field=PATH=VALUE (also PATH!=VALUE, PATH>=N, >, <=, <, as http's json)",
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
		if strings.HasPrefix(rest, "{") || strings.HasPrefix(rest, ".") {
			return w, errorf("%s is a kubectl jsonpath; write it as a dot path: field=%s", quoteValue(rest), dotPath(rest))
		}
		e, err := parseJSONExpectation(rest)
		if err != nil {
			return w, errorf("field: %v", err)
		}
		return k8sWant{what: "field", field: e, config: v}, nil
	case "jsonpath":
		return w, errorf("kubectl's jsonpath is written as a dot path here: field=%s", dotPath(rest))
	}
	return w, errors.New("want ready, exists, deleted, condition=TYPE[=STATUS] or field=PATH=VALUE")
}

// dotPath turns kubectl's {.status.succeeded}=1 into status.succeeded=1.
func dotPath(jsonpath string) string {
	path, value, hasValue := strings.Cut(jsonpath, "=")
	path = strings.TrimPrefix(strings.TrimSuffix(strings.TrimPrefix(path, "{"), "}"), ".")
	if hasValue {
		path += "=" + value
	}
	return path
}

func finishK8s(s *targetSpec) []error {
	var problems []error
	if s.isGiven("min") && k8sOf(s).want.what == "deleted" {
		problems = append(problems, errorf("%s does not go with %s=deleted: deleted means no object is left", s.flag("min"), s.flag("for")))
	}
	if s.invert && k8sOf(s).want.what == "deleted" {
		problems = append(problems, errorf("%s=deleted does not go with %s: to wait until the object exists, use %s=exists", s.flag("for"), s.flag("invert"), s.flag("for")))
	}
	// if-missing=ready takes a missing object as ready: with for=exists or
	// invert, the target could not mean anything.
	if k8sOf(s).ifMissingReady {
		switch {
		case k8sOf(s).want.what == "exists":
			problems = append(problems, errorf("%s=ready does not go with %s=exists: a missing object would count as there", s.flag("if-missing"), s.flag("for")))
		case s.invert:
			problems = append(problems, errorf("%s=ready does not go with %s: a missing object would count as still there", s.flag("if-missing"), s.flag("invert")))
		}
	}
	return problems
}

// k8sResource is one kind of object and how to reach its collection.
type k8sResource struct {
	group, version, resource string
	singular                 string // shown in reasons: job/migrate
	namespaced               bool
	ready                    string // which readiness rule; "" is condition Ready=True
}

// k8sBuiltins are the kinds of a plain cluster, as its discovery lists
// them (TestKubeBuiltinKinds holds this table to a real API server's):
// GROUP/VERSION, plural, singular, kubectl's short names (- for none),
// N(amespaced) or C(luster), and the readiness rule of objectReady. A kind
// listed twice (events) is found by a bare name in the core group first,
// as kubectl finds it.
const k8sBuiltins = `
v1 pods pod po N pod
v1 services service svc N service
v1 configmaps configmap cm N exists
v1 secrets secret - N exists
v1 serviceaccounts serviceaccount sa N exists
v1 endpoints endpoints ep N exists
v1 events event ev N exists
v1 limitranges limitrange limits N exists
v1 resourcequotas resourcequota quota N exists
v1 podtemplates podtemplate - N exists
v1 replicationcontrollers replicationcontroller rc N replicas
v1 persistentvolumeclaims persistentvolumeclaim pvc N pvc
v1 persistentvolumes persistentvolume pv C pv
v1 nodes node no C node
v1 namespaces namespace ns C namespace
v1 componentstatuses componentstatus cs C exists
apps/v1 deployments deployment deploy N deployment
apps/v1 statefulsets statefulset sts N statefulset
apps/v1 daemonsets daemonset ds N daemonset
apps/v1 replicasets replicaset rs N replicas
apps/v1 controllerrevisions controllerrevision - N exists
batch/v1 jobs job - N job
batch/v1 cronjobs cronjob cj N exists
autoscaling/v2 horizontalpodautoscalers horizontalpodautoscaler hpa N exists
networking.k8s.io/v1 ingresses ingress ing N exists
networking.k8s.io/v1 ingressclasses ingressclass - C exists
networking.k8s.io/v1 networkpolicies networkpolicy netpol N exists
networking.k8s.io/v1 ipaddresses ipaddress ip C exists
networking.k8s.io/v1 servicecidrs servicecidr - C exists
discovery.k8s.io/v1 endpointslices endpointslice - N exists
policy/v1 poddisruptionbudgets poddisruptionbudget pdb N exists
rbac.authorization.k8s.io/v1 roles role - N exists
rbac.authorization.k8s.io/v1 rolebindings rolebinding - N exists
rbac.authorization.k8s.io/v1 clusterroles clusterrole - C exists
rbac.authorization.k8s.io/v1 clusterrolebindings clusterrolebinding - C exists
storage.k8s.io/v1 storageclasses storageclass sc C exists
storage.k8s.io/v1 csidrivers csidriver - C exists
storage.k8s.io/v1 csinodes csinode - C exists
storage.k8s.io/v1 csistoragecapacities csistoragecapacity - N exists
storage.k8s.io/v1 volumeattachments volumeattachment - C exists
storage.k8s.io/v1 volumeattributesclasses volumeattributesclass vac C exists
scheduling.k8s.io/v1 priorityclasses priorityclass pc C exists
node.k8s.io/v1 runtimeclasses runtimeclass - C exists
coordination.k8s.io/v1 leases lease - N exists
certificates.k8s.io/v1 certificatesigningrequests certificatesigningrequest csr C exists
admissionregistration.k8s.io/v1 mutatingwebhookconfigurations mutatingwebhookconfiguration - C exists
admissionregistration.k8s.io/v1 validatingwebhookconfigurations validatingwebhookconfiguration - C exists
admissionregistration.k8s.io/v1 validatingadmissionpolicies validatingadmissionpolicy - C exists
admissionregistration.k8s.io/v1 validatingadmissionpolicybindings validatingadmissionpolicybinding - C exists
apiextensions.k8s.io/v1 customresourcedefinitions customresourcedefinition crd,crds C crd
apiregistration.k8s.io/v1 apiservices apiservice - C apiservice
flowcontrol.apiserver.k8s.io/v1 flowschemas flowschema - C exists
flowcontrol.apiserver.k8s.io/v1 prioritylevelconfigurations prioritylevelconfiguration - C exists
resource.k8s.io/v1 deviceclasses deviceclass - C exists
resource.k8s.io/v1 resourceclaims resourceclaim - N exists
resource.k8s.io/v1 resourceclaimtemplates resourceclaimtemplate - N exists
resource.k8s.io/v1 resourceslices resourceslice - C exists
events.k8s.io/v1 events event ev N exists
`

// k8sKinds are the built-in kinds by every name kubectl takes for them:
// plural, singular (the kind in lower case), short, each also as
// NAME.GROUP and NAME.VERSION.GROUP (deployment.v1.apps). Built on first
// use: its 100 KB of heap are for runs with a k8s target only.
var k8sKinds = sync.OnceValue(func() map[string]k8sResource {
	m := map[string]k8sResource{}
	for _, line := range strings.Split(strings.TrimSpace(k8sBuiltins), "\n") {
		f := strings.Fields(line)
		group, version, ok := strings.Cut(f[0], "/")
		if !ok {
			group, version = "", f[0]
		}
		names := []string{f[1], f[2]}
		if f[3] != "-" {
			names = append(names, strings.Split(f[3], ",")...)
		}
		addKind(m, k8sResource{group, version, f[1], f[2], f[4] == "N", f[5]}, names)
	}
	return m
})

// addKind adds r to m by each of its names, alone and with its group and
// version; a name already there keeps its first kind.
func addKind(m map[string]k8sResource, r k8sResource, names []string) {
	for _, n := range names {
		if n == "" {
			continue
		}
		keys := []string{n}
		if r.group != "" {
			keys = append(keys, n+"."+r.group, n+"."+r.version+"."+r.group)
		}
		for _, k := range keys {
			if _, taken := m[k]; !taken {
				m[k] = r
			}
		}
	}
}

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
	c := &k8sCheck{id: s.id, name: name, selector: k.selector, want: k.want, min: k.min, ifMissingReady: k.ifMissingReady, timeout: s.timeout}
	lower := strings.ToLower(kind)
	if r, ok := k8sKinds()[lower]; ok {
		c.res = &r
	} else if isDNSSubdomain(lower) {
		c.discover = lower // a custom resource's name, or R.G, R.V.G
	} else {
		problems = append(problems, addressError{errorf("unknown kind %q: want a kind, plural, short name (job, deployments, sts), RESOURCE.GROUP (certificates.cert-manager.io) or RESOURCE.VERSION.GROUP (deployment.v1.apps)", kind)})
	}
	switch {
	case named && (name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/ \t\n?#%")):
		//lint:ignore ST1005 the message ends by naming the colon as a character a name may hold
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
	// As client-go: the property, the context's, the pod's, default.
	c.namespace = k.namespace
	if c.namespace == "" && api.namespace != "" {
		if !isDNSLabel(api.namespace) {
			return built{}, []error{errorf("%s: its namespace %q is not a namespace name %s", api.where, api.namespace, dnsLabelRule)}
		}
		c.namespace = api.namespace
	}
	if c.namespace == "" {
		c.namespace = podNamespace()
	}
	if c.namespace == "" {
		c.namespace = "default"
	}
	var where []any
	if c.res == nil || c.res.namespaced {
		where = append(where, "namespace", c.namespace)
	}
	return built{checker: c, address: address, secrets: api.secrets, where: append(where, "cluster", api.cluster)}, nil
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
	case c.res != nil && c.res.group == "rbac.authorization.k8s.io":
		return nil // system:aggregate-to-view: refused by the caller only if it cannot be in a path
	case c.res != nil:
		kind = c.res.singular
		switch c.res.resource {
		case "namespaces":
			rule, ok = dnsLabelRule, isDNSLabel(c.name)
		case "services":
			rule, ok = dns1035LabelRule, isDNSLabel(c.name) && 'a' <= c.name[0] && c.name[0] <= 'z'
		}
	case c.discover != "":
		_, group, _ := strings.Cut(c.discover, ".")
		if !strings.Contains(group, ".") || group == "k8s.io" || strings.HasSuffix(group, ".k8s.io") {
			return nil
		}
		kind = c.discover
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
	id             string // the target's, for what it says once
	api            *kubeAPI
	res            *k8sResource // nil until discovery found it
	discover       string       // the kind as written, in lower case, to find through discovery
	name           string       // "" with a selector
	selector       string
	namespace      string
	want           k8sWant
	min            int
	ifMissingReady bool
	timeout        time.Duration

	seenUnfinished bool // an object was seen not ready in this run
	read           int  // readShared, readSelected or readGet: how the named object is read

	mu         sync.Mutex
	wake       chan struct{}   // nil until changes is called
	subscribed map[string]bool // the collections (and names, selectors) it is woken by
}

// k8sObject holds the fields readiness reads, of every kind at once.
type k8sObject struct {
	Metadata struct {
		Name              string
		Generation        int64
		DeletionTimestamp string
		Finalizers        []string
	}
	Spec struct {
		Replicas       *int64
		UpdateStrategy string
		Suspend        bool
		Type           string // a Service's
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
		Waiting                []string // a pod's containers waiting: "web: CrashLoopBackOff: ..."
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
	o.Metadata.DeletionTimestamp = jsonString(jsonAt(meta, "deletionTimestamp"))
	for _, f := range jsonList(jsonAt(meta, "finalizers")) {
		o.Metadata.Finalizers = append(o.Metadata.Finalizers, jsonString(f))
	}
	o.Spec.UpdateStrategy = jsonString(jsonAt(spec, "updateStrategy", "type"))
	o.Spec.Suspend = jsonAt(spec, "suspend") == true
	o.Spec.Type = jsonString(jsonAt(spec, "type"))
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
	for _, list := range []string{"initContainerStatuses", "containerStatuses"} {
		for _, cs := range jsonList(jsonAt(status, list)) {
			w := jsonAt(cs, "state", "waiting")
			if reason := jsonString(jsonAt(w, "reason")); reason != "" {
				text := jsonString(jsonAt(cs, "name")) + " waiting: " + reason
				if m := jsonString(jsonAt(w, "message")); m != "" {
					text += ": " + m
				}
				st.Waiting = append(st.Waiting, serverText(text, 300))
			}
		}
	}
	return o
}

func (c *k8sCheck) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := c.resource(ctx)
	if err != nil {
		return c.explain(ctx, err, nil)
	}
	items, err := c.objects(ctx, *res, c.name, c.selector)
	if err != nil {
		return c.explain(ctx, err, res)
	}
	what := res.singular
	if c.name != "" {
		what += "/" + c.name
	}
	if c.want.what == "deleted" {
		switch {
		case len(items) == 0:
			return nil
		case c.name != "":
			return errorf("%s: still exists%s", what, beingDeleted(k8sObjectOf(items[0])))
		}
		return errorf("%d %s match %s, want none", len(items), res.resource, c.selector)
	}
	if len(items) == 0 && c.ifMissingReady {
		if c.seenUnfinished {
			done := "it was ready"
			if res.ready == "job" {
				done = "it completed"
			}
			return errorf("%s: deleted before %s", what, done)
		}
		if c.name == "" {
			return noted{"no " + res.resource + " match " + c.selector + ", taken as ready (if-missing=ready)"}
		}
		return noted{what + " is missing, taken as ready (if-missing=ready)"}
	}
	if c.name != "" && len(items) == 0 {
		return errorf("%s: not found yet", what)
	}
	if c.name == "" && len(items) < c.min {
		return errorf("%d %s match %s, want at least %d", len(items), res.resource, c.selector, c.min)
	}
	for _, item := range items {
		if err := c.objectReady(ctx, *res, item); err != nil {
			c.seenUnfinished = true
			return err
		}
	}
	return nil
}

// beingDeleted says that an object is held by its finalizers.
func beingDeleted(o k8sObject) string {
	if o.Metadata.DeletionTimestamp == "" {
		return ""
	}
	if len(o.Metadata.Finalizers) == 0 {
		return ", being deleted"
	}
	return ", being deleted (finalizers " + serverText(strings.Join(o.Metadata.Finalizers, ", "), 300) + ")"
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
		// A Job that failed will never complete: said, and the end.
		if f := condition(&o, "Failed"); err != nil && res.ready == "job" && strings.EqualFold(c.want.name, "Complete") &&
			strings.EqualFold(c.want.value, "True") && f != nil && f.Status == "True" {
			err = finalError{errorf("failed: %s", conditionText(f))}
		}
	case "field":
		err = wantField(item, c.want.field, res.resource == "secrets")
	default:
		switch {
		case res.ready == "service" && o.Spec.Type == "ExternalName": // a DNS name: no endpoints to wait for
		case res.ready == "service":
			err = c.endpointsReady(ctx, o.Metadata.Name)
		default:
			err = objectReady(res.ready, &o)
		}
	}
	if err == nil {
		return nil
	}
	if d := beingDeleted(o); d != "" {
		return errorf("%s%s: %w", what, d, err)
	}
	return errorf("%s: %w", what, err) // still a finalError, or unseen
}

// objectReady applies the readiness rule of a kind (see the README).
func objectReady(rule string, o *k8sObject) error {
	st := &o.Status
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
		if o.Spec.Suspend {
			return errorf("suspended (spec.suspend is true; active %d, succeeded %d, failed %d)", st.Active, st.Succeeded, st.Failed)
		}
		return errorf("not complete (active %d, succeeded %d, failed %d)", st.Active, st.Succeeded, st.Failed)
	case "deployment", "statefulset", "daemonset", "replicas":
		return rolledOut(rule, o)
	case "pod":
		if st.Phase == "Succeeded" {
			return nil // a completed pod does not block
		}
		if err := wantCondition(o, "Ready", "True"); err != nil {
			if len(st.Waiting) > 0 { // CrashLoopBackOff, ImagePullBackOff: the cause
				return errorf("phase %s, container %s", orNone(st.Phase), strings.Join(st.Waiting, "; container "))
			}
			return errorf("phase %s, %v", orNone(st.Phase), err)
		}
		return nil
	case "pv":
		if st.Phase == "Available" || st.Phase == "Bound" {
			return nil
		}
		return errorf("phase %s, want Available or Bound", orNone(st.Phase))
	case "apiservice":
		return wantCondition(o, "Available", "True")
	case "pvc":
		return wantPhase(st.Phase, "Bound")
	case "namespace":
		return wantPhase(st.Phase, "Active")
	case "crd":
		return wantCondition(o, "Established", "True")
	}
	if len(o.Status.Conditions) == 0 {
		// Nothing may ever write one: say what else to wait for.
		return errors.New("no condition Ready yet (it has no status.conditions; if its kind has none, wait with for=exists or for=field)")
	}
	return wantCondition(o, "Ready", "True") // nodes, and the convention of most operators
}

// rolledOut applies the rules of kubectl rollout status to a controller of
// replicas: a Deployment, StatefulSet, DaemonSet, ReplicaSet or
// ReplicationController.
func rolledOut(rule string, o *k8sObject) error {
	st := &o.Status
	current := st.ObservedGeneration >= o.Metadata.Generation
	replicas := int64(1) // spec.replicas defaults to 1
	if o.Spec.Replicas != nil {
		replicas = *o.Spec.Replicas
	}
	switch rule {
	case "deployment":
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
	case "replicas": // ReplicaSet, ReplicationController
		switch {
		case !current:
			return errors.New("waiting for the new spec to be observed")
		case st.ReadyReplicas < replicas:
			return errorf("%d of %d replicas ready", st.ReadyReplicas, replicas)
		case st.AvailableReplicas < replicas:
			return errorf("%d of %d replicas available", st.AvailableReplicas, replicas)
		}
		return nil
	}
	return nil
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
	switch {
	case c.Message == "":
		return orNone(c.Reason)
	case c.Reason == "":
		return serverText(c.Message, 300)
	}
	return c.Reason + ": " + serverText(c.Message, 300)
}

func wantCondition(o *k8sObject, typ, status string) error {
	c := condition(o, typ)
	switch {
	case c == nil:
		return errorf("no current condition %s yet", typ)
	case strings.EqualFold(c.Status, status):
		return nil
	}
	if c.Reason == "" && c.Message == "" {
		return errorf("condition %s is %s, want %s", c.Type, c.Status, status)
	}
	return errorf("condition %s is %s, want %s (%s)", c.Type, c.Status, status, conditionText(c))
}

// wantField checks the for=field expectation, as an http target's json
// property checks a body. A Secret's values are never quoted.
func wantField(object any, e jsonExpectation, secret bool) error {
	err := e.check(object, nil)
	if err != nil && secret {
		if _, werr := walkPath(object, e.keys); werr != nil {
			return errorf("%s: not found", e.path)
		}
		return errorf("%s differs from the value wanted", e.path)
	}
	return err
}

// endpointsReady counts the ready endpoints in a Service's EndpointSlices.
func (c *k8sCheck) endpointsReady(ctx context.Context, service string) error {
	slices, err := c.objects(ctx, endpointSlices, "", "kubernetes.io/service-name="+service)
	if err != nil {
		return c.explain(ctx, err, &endpointSlices)
	}
	want := c.min
	if c.name == "" {
		want = 1 // with a selector, min counts Services
	}
	ready := 0
	for _, s := range slices {
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

// How a named target reads its object when the RBAC refuses the list of
// its whole resource in the namespace, as a Role's resourceNames does.
const (
	readShared   = iota // the collection every target of the resource there shares
	readSelected        // its own collection, by a metadata.name field selector
	readGet             // a GET by name at each attempt: no list, no watch
)

// objects reads the objects of res in the target's namespace with name, or
// matching selector, from the collection every target of res there
// shares, and asks to be woken when one of them changes. When that list is
// refused (403) and the target names its object, it reads that object
// alone: listed and watched with a field selector, as kubectl wait does,
// else got by name at each attempt. A fallback that works is kept; when
// every way is refused, the shared list's refusal is the reason, and the
// next attempt starts from the shared list again.
func (c *k8sCheck) objects(ctx context.Context, res k8sResource, name, selector string) ([]any, error) {
	if name == "" || c.read == readShared {
		items, err := c.follow(ctx, c.api.collection(res, c.namespace, "", c.timeout), name, selector)
		if name == "" || !isForbidden(err) {
			return items, err
		}
		refused := err
		items, err = c.follow(ctx, c.api.collection(res, c.namespace, name, c.timeout), name, "")
		if !isForbidden(err) {
			c.read = readSelected
			return items, err
		}
		if items, err = c.getByName(ctx, res, name); isForbidden(err) {
			return nil, refused
		}
		c.read = readGet
		if k8sLog != nil {
			k8sLog.Warn("list refused: read by name at the interval", "target", c.id, "type", "k8s", "object", res.singular+"/"+name,
				"reason", "list and watch on "+res.rbacName()+" are refused, even of "+name+" alone; grant them (resourceNames may name it) for changes to be seen at once")
		}
		return items, err
	}
	if c.read == readSelected {
		items, err := c.follow(ctx, c.api.collection(res, c.namespace, name, c.timeout), name, "")
		if !isForbidden(err) {
			return items, err
		}
		c.read = readGet
	}
	items, err := c.getByName(ctx, res, name)
	if isForbidden(err) {
		c.read = readShared
	}
	return items, err
}

// follow reads the objects of a collection, subscribing the target to it.
func (c *k8sCheck) follow(ctx context.Context, coll *kubeCollection, name, selector string) ([]any, error) {
	c.mu.Lock()
	key := coll.path + "\x00" + name + "\x00" + selector
	if c.subscribed == nil {
		c.subscribed = map[string]bool{}
	}
	if !c.subscribed[key] && c.wake != nil { // a probe asks once: no watch
		c.subscribed[key] = true
		coll.subscribe(kubeSub{name, selector, c.signal})
	}
	c.mu.Unlock()
	return coll.match(ctx, name, selector)
}

// getByName reads one object; a 404 is no object.
func (c *k8sCheck) getByName(ctx context.Context, res k8sResource, name string) ([]any, error) {
	o, err := c.api.get(ctx, res.collection(c.namespace)+"/"+name, "application/json")
	if st, ok := errors.AsType[*apiStatus](err); ok && st.code == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []any{o}, nil
}

func isForbidden(err error) bool {
	st, ok := errors.AsType[*apiStatus](err)
	return ok && st.code == http.StatusForbidden
}

// resource is the target's kind, found through discovery when it is not
// built in.
func (c *k8sCheck) resource(ctx context.Context) (*k8sResource, error) {
	if c.res != nil {
		return c.res, nil
	}
	res, err := c.api.findKind(ctx, c.discover)
	if err == nil {
		c.res = res
	}
	return res, err
}

// explain turns a refused request into a reason that says what to do. A
// refusal (401, 403) is unseen: no sign that the object is gone.
func (c *k8sCheck) explain(ctx context.Context, err error, res *k8sResource) error {
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
	if st.code != http.StatusForbidden {
		return err
	}
	if res == nil { // discovery
		return unseen{errorf("%s; needs get on the API's discovery (the system:discovery ClusterRole)", serverText(st.message, 300))}
	}
	// Everything the target reads, at once.
	needs := c.res.rbacName()
	if c.res.ready == "service" && c.want.what == "ready" {
		needs += " and " + endpointSlices.rbacName()
	}
	where := "in namespace " + c.namespace
	if !c.res.namespaced {
		where = "cluster-wide"
	}
	alone := "" // a Service's endpoint slices are read by selector: not by name
	if c.name != "" && needs == c.res.rbacName() {
		alone = ", or on " + c.res.singular + "/" + c.name + " alone (a Role's resourceNames)"
	}
	return unseen{errorf("%s; needs get, list and watch on %s %s%s", serverText(st.message, 300), needs, where, alone)}
}

// changes makes the channel the collections' watches wake the target on.
func (c *k8sCheck) changes() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wake = make(chan struct{}, 1)
	return c.wake
}

func (c *k8sCheck) signal() {
	c.mu.Lock()
	wake := c.wake
	c.mu.Unlock()
	select {
	case wake <- struct{}{}:
	default:
	}
}

// labelRequirement is one requirement of a label selector.
type labelRequirement struct {
	key    string
	op     string // exists, !, =, !=, in, notin, <, >
	values []string
}

// checkLabelSelector accepts the API's label selector syntax: requirements
// separated by commas, each key, !key, key=value, key==value, key!=value,
// key in (v1,v2), key notin (v1,v2), key>N or key<N.
func checkLabelSelector(sel string) error {
	_, err := parseLabelSelector(sel)
	return err
}

func parseLabelSelector(sel string) ([]labelRequirement, error) {
	sel = strings.TrimSpace(sel)
	if sel == "" {
		return nil, errors.New("must not be empty; e.g. app=api,tier!=canary")
	}
	var reqs []labelRequirement
	depth, start := 0, 0
	for i := 0; i <= len(sel); i++ {
		switch {
		case i < len(sel) && sel[i] == '(':
			depth++
		case i < len(sel) && sel[i] == ')':
			depth--
		case i == len(sel) || sel[i] == ',' && depth == 0:
			r, err := parseRequirement(strings.TrimSpace(sel[start:i]))
			if err != nil {
				return nil, errorf("%v; want requirements such as app=api,tier!=canary,env in (a,b)", err)
			}
			reqs = append(reqs, r)
			start = i + 1
		}
	}
	return reqs, nil
}

func parseRequirement(req string) (labelRequirement, error) {
	r := labelRequirement{op: "exists", key: req}
	if req == "" {
		return r, errors.New("an empty requirement")
	}
	if key, ok := strings.CutPrefix(req, "!"); ok {
		r.key, r.op = strings.TrimSpace(key), "!"
		return r, checkLabelKey(r.key)
	}
	for _, op := range []string{" notin ", " in "} {
		if key, set, ok := strings.Cut(req, op); ok {
			set = strings.TrimSpace(set)
			r.key, r.op = strings.TrimSpace(key), strings.TrimSpace(op)
			if !strings.HasPrefix(set, "(") || !strings.HasSuffix(set, ")") {
				return r, errorf("%q needs its values in parentheses", r.op)
			}
			for _, v := range strings.Split(set[1:len(set)-1], ",") {
				v = strings.TrimSpace(v)
				if err := checkLabelValue(v); err != nil {
					return r, err
				}
				r.values = append(r.values, v)
			}
			return r, checkLabelKey(r.key)
		}
	}
	i := strings.IndexAny(req, "=!<>")
	if i < 0 {
		return r, checkLabelKey(req)
	}
	r.key = strings.TrimSpace(req[:i])
	rest := req[i:]
	var value string
	switch {
	case strings.HasPrefix(rest, "=="), strings.HasPrefix(rest, "!="):
		r.op, value = rest[:1], rest[2:]
		if r.op == "!" {
			r.op = "!="
		}
	case rest[0] == '=', rest[0] == '<', rest[0] == '>':
		r.op, value = rest[:1], rest[1:]
	default:
		return r, errorf("%q is not a requirement", req)
	}
	if err := checkLabelKey(r.key); err != nil {
		return r, err
	}
	value = strings.TrimSpace(value)
	r.values = []string{value}
	if _, err := strconv.ParseInt(value, 10, 64); err != nil && (r.op == "<" || r.op == ">") {
		return r, errorf("%q compares with %s, which needs an integer", req, r.op)
	}
	return r, checkLabelValue(value)
}

// matchSelector applies a label selector to an object's labels, as the API
// server does.
func matchSelector(sel string, labels any) bool {
	reqs, err := parseLabelSelector(sel)
	if err != nil {
		return false
	}
	m, _ := labels.(map[string]any)
	for _, r := range reqs {
		v, has := m[r.key]
		text := jsonString(v)
		var ok bool
		switch r.op {
		case "exists":
			ok = has
		case "!":
			ok = !has
		case "=", "in":
			ok = has && slices.Contains(r.values, text)
		case "!=", "notin":
			ok = !has || !slices.Contains(r.values, text)
		default: // < and >
			got, err := strconv.ParseInt(text, 10, 64)
			bound, _ := strconv.ParseInt(r.values[0], 10, 64)
			ok = has && err == nil && (r.op == "<" && got < bound || r.op == ">" && got > bound)
		}
		if !ok {
			return false
		}
	}
	return true
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
