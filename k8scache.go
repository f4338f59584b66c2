package main

// What a cluster's targets share, as client-go's informers share it: the
// kinds aggregated discovery names, fetched once, and each collection (a
// resource in a namespace) listed once and followed by one watch, its
// objects dispatched to the targets by name or selector. The requests are
// k8sapi.go's.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// aggregatedDiscovery asks /api and /apis for every group's versions and
// resources in one reply each (apidiscovery.k8s.io/v2, Kubernetes 1.30).
const aggregatedDiscovery = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"

// rediscoverAfter is how soon a kind discovery did not know may send
// discovery again: a CRD is often applied alongside its first object.
const rediscoverAfter = 5 * time.Second

// findKind resolves a kind that is not built in (a custom resource's kind,
// plural, singular or short name, RESOURCE.GROUP, RESOURCE.VERSION.GROUP)
// through discovery, fetched once for every target of the API server.
func (a *kubeAPI) findKind(ctx context.Context, name string) (*k8sResource, error) {
	select {
	case a.discovery <- struct{}{}:
	case <-ctx.Done():
		return nil, errNoAnswer
	}
	defer func() { <-a.discovery }()
	if r, ok := a.kinds[name]; ok {
		return &r, nil
	}
	missing := errorf("the API server has no resource %s (is its CRD installed?)", name)
	if a.kinds != nil && time.Since(a.discovered) < rediscoverAfter {
		return nil, missing
	}
	kinds := map[string]k8sResource{}
	for _, path := range []string{"/api", "/apis"} {
		doc, err := a.get(ctx, path, aggregatedDiscovery)
		if err != nil {
			return nil, err
		}
		if jsonString(jsonAt(doc, "kind")) != "APIGroupDiscoveryList" {
			return nil, errorf("the API server %s offers no aggregated discovery (Kubernetes 1.30 and later do)", a.shown)
		}
		for _, g := range jsonList(jsonAt(doc, "items")) {
			group := jsonString(jsonAt(g, "metadata", "name"))
			for _, v := range jsonList(jsonAt(g, "versions")) { // the preferred first
				version := jsonString(jsonAt(v, "version"))
				for _, r := range jsonList(jsonAt(v, "resources")) {
					plural := jsonString(jsonAt(r, "resource"))
					kind := strings.ToLower(jsonString(jsonAt(r, "responseKind", "kind")))
					singular := jsonString(jsonAt(r, "singularResource"))
					if singular == "" {
						singular = kind
					}
					res := k8sResource{group, version, plural, singular, jsonString(jsonAt(r, "scope")) == "Namespaced", ""}
					key := plural + "." + group
					if group == "" {
						key = plural
					}
					if b, ok := k8sKinds()[key]; ok && b.group == group {
						res.ready = b.ready // a built-in kind at another version keeps its rule
					}
					names := []string{plural, singular, kind}
					for _, n := range jsonList(jsonAt(r, "shortNames")) {
						names = append(names, strings.ToLower(jsonString(n)))
					}
					addKind(kinds, res, names)
				}
			}
		}
	}
	a.kinds, a.discovered = kinds, time.Now()
	if r, ok := kinds[name]; ok {
		return &r, nil
	}
	return nil, missing
}

// kubeCollection is one resource in one namespace as this process sees it:
// listed once, then followed by one watch, and shared by every target that
// reads it, as client-go's informers are. While the watch runs, targets
// read the objects it keeps; when it breaks, the next target to read lists
// again (one list at a time) and the watch starts from that list.
type kubeCollection struct {
	api     *kubeAPI
	res     k8sResource
	ns      string
	name    string        // "": the whole resource; else only this object's (metadata.name field selector)
	path    string        // with the field selector, if any
	timeout time.Duration // for a watch's answer

	mu      sync.Mutex
	synced  bool           // objects are current: the watch follows them
	objects map[string]any // by name
	rv      string         // of the list, then of the last event
	listing chan struct{}  // closed when the list in flight ends
	listErr error          // of the last list
	fresh   chan struct{}  // a list made the objects current again
	subs    []kubeSub
	refused bool // a watch was refused, and said so
	// following: a target asked to be woken, so a watch follows the
	// collection. Without one (a --probe), every read lists anew.
	following bool
}

// kubeSub is a target's interest in the objects of a collection that have
// name, or whose labels match selector.
type kubeSub struct {
	name, selector string
	wake           func()
}

func (s kubeSub) matches(object any) bool {
	if s.name != "" {
		return jsonString(jsonAt(object, "metadata", "name")) == s.name
	}
	return matchSelector(s.selector, jsonAt(object, "metadata", "labels"))
}

// collection is the shared collection of res in ns; with a name, the
// collection of that one object, selected by a metadata.name field
// selector, which a Role's resourceNames allows to list and watch (as
// kubectl wait reads one object) where it does not allow the whole.
func (a *kubeAPI) collection(res k8sResource, ns, name string, timeout time.Duration) *kubeCollection {
	path := res.collection(ns)
	if name != "" {
		path += "?fieldSelector=" + url.QueryEscape("metadata.name="+name)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.collections[path]
	if c == nil {
		c = &kubeCollection{api: a, res: res, ns: ns, name: name, path: path, timeout: timeout, fresh: make(chan struct{}, 1)}
		a.collections[path] = c
	}
	return c
}

// subscribe wakes the target when an object it reads changes; the first
// subscriber starts the watch, from the next list.
func (c *kubeCollection) subscribe(s kubeSub) {
	c.mu.Lock()
	c.subs = append(c.subs, s)
	if !c.following {
		c.following, c.synced = true, false
		go c.follow()
	}
	c.mu.Unlock()
}

// match returns the objects with name, or those selector matches, in the
// order of their names, listing the collection if it is not current.
func (c *kubeCollection) match(ctx context.Context, name, selector string) ([]any, error) {
	c.mu.Lock()
	for !c.synced {
		if wait := c.listing; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
			case <-ctx.Done():
				return nil, errNoAnswer
			}
			c.mu.Lock()
			if !c.synced && c.listErr != nil {
				err := c.listErr
				c.mu.Unlock()
				return nil, err
			}
			continue
		}
		c.listing = make(chan struct{})
		c.mu.Unlock()
		objects, rv, err := c.list(ctx)
		c.mu.Lock()
		close(c.listing)
		c.listing, c.listErr = nil, err
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		c.objects, c.rv, c.synced = objects, rv, c.following
		if !c.following {
			break // no watch keeps them current: this read's own list
		}
		select {
		case c.fresh <- struct{}{}:
		default:
		}
	}
	var names []string
	s := kubeSub{name: name, selector: selector}
	for n, o := range c.objects {
		if s.matches(o) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	items := make([]any, len(names))
	for i, n := range names {
		items[i] = c.objects[n]
	}
	c.mu.Unlock()
	return items, nil
}

// k8sListPage is how many objects one list request asks for: a namespace
// of thousands of pods comes in pages, none near k8sMaxBody.
const k8sListPage = 500

// list reads the whole collection, page by page (one snapshot: the pages
// share the first one's resourceVersion).
func (c *kubeCollection) list(ctx context.Context) (map[string]any, string, error) {
	objects := map[string]any{}
	var rv, next string
	for {
		sep := "?"
		if c.name != "" {
			sep = "&" // after the field selector
		}
		path := c.path + sep + "limit=" + strconv.Itoa(k8sListPage)
		if next != "" {
			path += "&continue=" + url.QueryEscape(next)
		}
		list, err := c.api.get(ctx, path, "application/json")
		if err != nil {
			return nil, "", err
		}
		if rv == "" {
			rv = jsonString(jsonAt(list, "metadata", "resourceVersion"))
		}
		for _, item := range jsonList(jsonAt(list, "items")) {
			objects[jsonString(jsonAt(item, "metadata", "name"))] = item
		}
		if next = jsonString(jsonAt(list, "metadata", "continue")); next == "" {
			return objects, rv, nil
		}
	}
}

// event applies one watch event and wakes the targets whose objects it
// touched.
func (c *kubeCollection) event(typ string, object any) {
	name := jsonString(jsonAt(object, "metadata", "name"))
	c.mu.Lock()
	if rv := jsonString(jsonAt(object, "metadata", "resourceVersion")); rv != "" {
		c.rv = rv
	}
	if typ == "BOOKMARK" || c.objects == nil {
		c.mu.Unlock()
		return
	}
	old, had := c.objects[name]
	if typ == "DELETED" {
		delete(c.objects, name)
	} else {
		c.objects[name] = object
	}
	var wake []func()
	for _, s := range c.subs {
		if s.matches(object) || had && s.matches(old) {
			wake = append(wake, s.wake)
		}
	}
	c.mu.Unlock()
	for _, w := range wake {
		w()
	}
}

// follow watches the collection for as long as the process runs, from each
// list that made it current. A watch the server ends resumes from the last
// event; one whose resourceVersion expired (410 Gone) wakes every target
// for a fresh list; after any other failure the objects are no longer
// current, and the next attempt lists them, so the interval stays the
// fallback. Watches start at most once a second, so one that keeps failing
// is not a busy loop.
func (c *kubeCollection) follow() {
	var started time.Time
	for {
		<-c.fresh
		for {
			c.mu.Lock()
			rv := c.rv
			c.mu.Unlock()
			time.Sleep(time.Until(started.Add(time.Second)))
			started = time.Now()
			err := c.api.watch(context.Background(), c.path, rv, c.timeout, c.event)
			if err == nil && time.Since(started) >= time.Second {
				continue // ended by the server: resume
			}
			c.mu.Lock()
			c.synced, c.objects = false, nil
			subs := c.subs
			c.mu.Unlock()
			if errors.Is(err, errGone) {
				for _, s := range subs {
					s.wake()
				}
			}
			if st, ok := errors.AsType[*apiStatus](err); ok && st.code == http.StatusForbidden && !c.refused && k8sLog != nil {
				c.refused = true
				what := c.res.rbacName()
				if c.name != "" {
					what += " named " + c.name
				}
				where := "in namespace " + c.ns
				if !c.res.namespaced {
					where = "cluster-wide"
				}
				k8sLog.Warn("watch refused: changes are seen at the interval", "resource", c.res.rbacName(), "error",
					serverText(st.message, 300)+"; grant watch on "+what+" "+where)
			}
			break
		}
	}
}
