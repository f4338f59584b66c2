package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// jsonServer answers every request with whatever body holds.
func jsonServer(t *testing.T) (*httptest.Server, *atomic.Value) {
	t.Helper()
	var body atomic.Value
	body.Store("{}")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body.Load().(string))
	}))
	t.Cleanup(srv.Close)
	return srv, &body
}

func TestHTTPJSONExpectations(t *testing.T) {
	srv, body := jsonServer(t)
	const cluster = `{"cluster_name":"es","status":"green","number_of_nodes":3,"ratio":3.0,"big":12345678901234567890,` +
		`"timed_out":false,"health":"true","up":true,"leader":null,"checks":[{"name":"db","status":"UP"},{"name":"disk","status":"DOWN"}],` +
		`"labels":{"app.kubernetes.io/name":"web","a=b":"eq","back\\slash":"bs"},"nested":{"deep":{"er":[[1,2],[3]]}},"empty":""}`
	for _, tc := range []struct {
		body         string
		expectations []string
		want         string // "" for ready
	}{
		{cluster, []string{"status=green|yellow"}, ""},
		{strings.Replace(cluster, "green", "red", 1), []string{"status=green|yellow"}, `status is "red", want green or yellow`},
		{cluster, []string{"status!=red"}, ""},
		{strings.Replace(cluster, "green", "red", 1), []string{"status!=red"}, `status is "red", want anything but red`},
		{cluster, []string{"number_of_nodes=3"}, ""},
		{cluster, []string{"number_of_nodes=3.0"}, `number_of_nodes is 3, want 3.0`},
		// Numeric comparisons, the same grammar as a k8s target's for=field.
		{cluster, []string{"number_of_nodes>=3", "number_of_nodes>2", "number_of_nodes<=3", "number_of_nodes<3.5", "ratio>=3"}, ""},
		{cluster, []string{"number_of_nodes>=4"}, `number_of_nodes is 3, want a number >= 4`},
		{cluster, []string{"number_of_nodes<3"}, `number_of_nodes is 3, want a number < 3`},
		{cluster, []string{"status>=1"}, `status is "green", want a number >= 1`},
		{`{"a<b":1}`, []string{`a\<b<=1`}, ""},
		// Numbers as written: 3.0 is not 3, a big integer is exact.
		{cluster, []string{"ratio=3.0"}, ""},
		{cluster, []string{"ratio=3"}, `ratio is 3.0, want 3`},
		{cluster, []string{"big=12345678901234567890"}, ""},
		{cluster, []string{"big=12345678901234567000"}, `big is 12345678901234567890, want 12345678901234567000`},
		// true holds for the boolean and for etcd's string.
		{cluster, []string{"health=true", "up=true", "timed_out=false"}, ""},
		{cluster, []string{"up=false"}, `up is true, want false`},
		{cluster, []string{"leader=null"}, ""},
		{cluster, []string{"leader"}, `leader is null, want a value`},
		{cluster, []string{"cluster_name", "checks", "empty"}, ""},
		{cluster, []string{"empty="}, ""},
		{cluster, []string{"missing"}, `no key "missing"`},
		{cluster, []string{"missing!=x"}, `no key "missing"`},
		// Arrays by index, nesting.
		{cluster, []string{"checks.0.status=UP"}, ""},
		{cluster, []string{"checks.1.status=UP"}, `checks.1.status is "DOWN", want UP`},
		{cluster, []string{"checks.2.status=UP"}, `"checks.2": index 2 is out of range (the array ends at index 1)`},
		{cluster, []string{"checks.first=UP"}, `"checks.first": "checks" is an array, index it with a number, not "first"`},
		{cluster, []string{"nested.deep.er.0.1=2", "nested.deep.er.1.0=3"}, ""},
		{cluster, []string{"status.x"}, `"status.x": "status" is a single value, it has no key "x"`},
		// An object or an array never equals a value, and so is never a
		// value not to be.
		{cluster, []string{"checks=UP"}, `checks is an array, want UP`},
		{cluster, []string{"nested=x"}, `nested is an object, want x`},
		{cluster, []string{"nested!=x"}, ""},
		{`{"list":[],"obj":{}}`, []string{"list=[]"}, `list is an array, want []`},
		{`{"list":[],"obj":{}}`, []string{"obj={}"}, `obj is an object, want {}`},
		// Keys holding a dot, an = or a backslash are escaped.
		{cluster, []string{`labels.app\.kubernetes\.io/name=web`}, ""},
		{cluster, []string{`labels.app.kubernetes.io/name=web`}, `no key "labels.app"`},
		{cluster, []string{`labels.a\=b=eq`}, ""},
		{cluster, []string{`labels.back\\slash=bs`}, ""},
		{`{"a\\":1,"b!":2}`, []string{`a\\!=2`, `b\!=2`}, ""},
		{`{"a\\":1,"b!":2}`, []string{`a\\!=1`}, `"a\\\\" is 1, want anything but 1`},
		// Every expectation must hold; each that fails is named.
		{cluster, []string{"status=green", "number_of_nodes=5", "up=false"}, `number_of_nodes is 3, want 5; up is true, want false`},
		{`[{"id":1}]`, []string{"0.id=1"}, ""},
		// The top level is named as such, not as an empty path.
		{`"green"`, []string{"status=green"}, `the top level is a single value, it has no key "status"`},
		{`[1,2]`, []string{"first=1"}, `the top level is an array, index it with a number, not "first"`},
		{`[1,2]`, []string{"5=1"}, `index 5 is out of range (the top-level array ends at index 1)`},
		{`[]`, []string{"0"}, `index 0 is out of range (the top-level array is empty)`},
		{`[[]]`, []string{"0.0"}, `"0.0": index 0 is out of range (the array is empty)`},
		// Not JSON, or not one value: named as such, never quoted.
		{`<html>Bad Gateway</html>`, []string{"status=green"}, `the body is not valid JSON: syntax error at byte 1 (line 1)`},
		{`{"status":"green"`, []string{"status=green"}, `the body is not valid JSON: the body ends inside a value`},
		{``, []string{"status=green"}, `the body is not valid JSON: the body holds no value`},
		{`{"status":"green"} {"status":"red"}`, []string{"status=green"}, `the body is not valid JSON: more than one value in the body`},
		// A long value is cut in the reason.
		{`{"status":"` + strings.Repeat("y", 100) + `"}`, []string{"status=green"}, `status is "` + strings.Repeat("y", 64) + `"…, want green`},
		{`{"status":"` + strings.Repeat("é", 40) + `"}`, []string{"status=green"}, `status is "` + strings.Repeat("é", 32) + `"…, want green`},
	} {
		body.Store(tc.body)
		args := []string{"--http.j.address=" + srv.URL}
		for _, e := range tc.expectations {
			args = append(args, "--http.j.json="+e)
		}
		err := attempt(httpCheckFor(t, args...))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%q on %.60q:\ngot  %s\nwant %s", tc.expectations, tc.body, got, tc.want)
		}
	}
}

// The status comes first; the body regex and the expectations read the
// same body, once.
func TestHTTPJSONWithStatusAndRegex(t *testing.T) {
	var code atomic.Int32
	code.Store(503)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(code.Load()))
		io.WriteString(w, `{"status":"UP","version":"1.2"}`)
	}))
	defer srv.Close()
	c := httpCheckFor(t, "--http.j.address="+srv.URL, "--http.j.json=status=UP", "--http.j.expected-body-regex=version")
	if err := attempt(c); err == nil || err.Error() != "status 503, want 200" {
		t.Errorf("503: %v", err)
	}
	code.Store(200)
	if err := attempt(c); err != nil {
		t.Errorf("200: %v", err)
	}
	c = httpCheckFor(t, "--http.j.address="+srv.URL, "--http.j.json=status=UP", "--http.j.expected-body-regex=release")
	if err := attempt(c); err == nil || err.Error() != "status 200, but the body does not match release" {
		t.Errorf("regex: %v", err)
	}
}

// A body over the limit is not read to its end: endless or merely large,
// it is not ready, with a reason that says why.
func TestHTTPJSONHugeBody(t *testing.T) {
	endless := httptest.NewServer(endlessBody(`{"status":"green","pad":"`))
	defer endless.Close()
	large, body := jsonServer(t)
	body.Store(`{"status":"green","pad":"` + strings.Repeat("x", maxBodyRead) + `"}`)
	fits, fitting := jsonServer(t)
	fitting.Store(`{"status":"green","pad":"` + strings.Repeat("x", maxBodyRead-40) + `"}`)
	for _, url := range []string{endless.URL, large.URL} {
		err := attempt(httpCheckFor(t, "--http.j.address="+url, "--http.j.json=status=green", "--http.j.timeout=10s"))
		if err == nil || err.Error() != "status 200, but the body is longer than 1 MiB, more than is read for json" {
			t.Errorf("%s: %v", url, err)
		}
	}
	if err := attempt(httpCheckFor(t, "--http.j.address="+fits.URL, "--http.j.json=status=green")); err != nil {
		t.Errorf("a body just under the limit: %v", err)
	}
}

func TestHTTPJSONStartupErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--http.j.json=a..b=1"}, `--http.j.json=a..b=1: path "a..b" has an empty segment after "a"`},
		{[]string{"--http.j.json=.a"}, `--http.j.json=.a: path ".a" has an empty segment at its start`},
		{[]string{"--http.j.json==green"}, `--http.j.json==green: no path: want PATH=VALUE, PATH!=VALUE or PATH, e.g. status=green|yellow`},
		{[]string{"--http.j.json=!=green"}, `no path: want PATH=VALUE`},
		{[]string{`--http.j.json=a\`}, `path "a\\" ends in a lone backslash`},
		{[]string{"--http.j.json=nodes>=three"}, `--http.j.json=nodes>=three: nodes>= needs a number after it, e.g. nodes>=2`},
		{[]string{"--http.j.json=status=green||yellow"}, `--http.j.json=status=green||yellow: green||yellow has an empty alternative (separate values with |, e.g. green|yellow)`},
		{[]string{"--http.j.json=status=green", "--http.j.method=HEAD"}, `--http.j.json with --http.j.method=HEAD can never hold: a response to HEAD has no body`},
	} {
		o := runPortpatrol(t, nil, append([]string{"--http.j.address=http://127.0.0.1:1", "--timeout=1s"}, tc.args...)...)
		o.mustExit(t, 2)
		if !strings.Contains(o.stderr, tc.want) {
			t.Errorf("%q: stderr lacks %q:\n%s", tc.args, tc.want, o.stderr)
		}
	}
}

// A value found in the body that was read through a reference (here a
// token the server echoes) is hidden, also when it would be cut.
func TestHTTPJSONSecretsStayHidden(t *testing.T) {
	const token = "S3cretT0kenValue"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		fmt.Fprintf(w, `{"auth":%q,"long":%q}`, auth, strings.Repeat("z", 55)+" "+auth)
	}))
	defer srv.Close()
	o := runPortpatrol(t, []string{"TOKEN=" + token}, "--http.j.address="+srv.URL, "--http.j.header=Authorization=env:TOKEN",
		"--http.j.json=auth=x", "--http.j.json=long=x", "--timeout=1s")
	o.mustExit(t, 1)
	if strings.Contains(o.stderr, "S3cret") || strings.Contains(o.stderr, "T0ken") {
		t.Errorf("the token shows:\n%s", o.stderr)
	}
	if !strings.Contains(o.stderr, `auth is \"[hidden]\", want x; long is \"`+strings.Repeat("z", 55)+` [hidden]\", want x`) {
		t.Errorf("the reason does not name what was found:\n%s", o.stderr)
	}
}

// The real etcd from Debian: /health answers {"health":"true"}, a string,
// which health=true accepts.
func TestHTTPJSONRealEtcd(t *testing.T) {
	t.Parallel()
	addr := startEtcd(t, "", "")
	o := runPortpatrol(t, nil, "--http.etcd.address=http://"+addr+"/health", "--http.etcd.json=health=true", "--timeout=60s")
	o.mustExit(t, 0)
	o = runPortpatrol(t, nil, "--http.etcd.address=http://"+addr+"/health", "--http.etcd.json=health=false", "--timeout=1s")
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, `error="health is \"true\", want false"`) {
		t.Errorf("stderr:\n%s", o.stderr)
	}
}

// FuzzJSONExpectation: whatever the expectation and the body, a check ends
// in ready or a reason, never a panic, and a reason never holds more of a
// found value than the limit.
func FuzzJSONExpectation(f *testing.F) {
	f.Add("status=green|yellow", []byte(`{"status":"green"}`))
	f.Add(`a\.b.0!=x`, []byte(`{"a.b":[1,{"c":null}]}`))
	f.Add("n=1e3", []byte(`{"n":1e3}`))
	f.Add("n>=2.5", []byte(`{"n":3}`))
	f.Add("x", []byte(`[`))
	f.Fuzz(func(t *testing.T, expectation string, body []byte) {
		e, err := parseJSONExpectation(expectation)
		if err != nil {
			return
		}
		if err := checkJSONBody(body, []jsonExpectation{e}, nil); err != nil && len(err.Error()) > 12*len(expectation)+2*maxFoundShown+200 {
			t.Errorf("reason of %d bytes for %q", len(err.Error()), expectation)
		}
	})
}

// The json: and yaml: references address keys holding a dot the same way.
func TestReferenceEscapedKeys(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"a.json": `{"labels":{"app.kubernetes.io/name":"web","a\\b":"bs"}}`, "a.yaml": "labels:\n  app.kubernetes.io/name: web\n"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for ref, want := range map[string]string{
		"json:" + dir + `/a.json//labels.app\.kubernetes\.io/name`: "web",
		"json:" + dir + `/a.json//labels.a\\b`:                     "bs",
		"yaml:" + dir + `/a.yaml//labels.app\.kubernetes\.io/name`: "web",
	} {
		if got, err := resolve(ref); got != want || err != nil {
			t.Errorf("%s: %q, %v; want %q", ref, got, err, want)
		}
	}
	if _, err := resolve("json:" + dir + `/a.json//labels.app.kubernetes.io/name`); err == nil || err.Error() != "json:"+dir+`/a.json: no key "labels.app"` {
		t.Errorf("unescaped: %v", err)
	}
}

// An echo endpoint (httpbin's /anything) answers with the request it got:
// every credential portpatrol sent, written or read through a reference,
// reads [hidden] where a found value quotes it, and the rest of the value
// stays readable.
func TestHTTPJSONEchoedRequestStaysHidden(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		args, headers := map[string]string{}, map[string]string{}
		for k, v := range r.URL.Query() {
			args[k] = strings.Join(v, ",")
		}
		for k, v := range r.Header {
			headers[k] = strings.Join(v, ",")
		}
		data, _ := io.ReadAll(r.Body)
		// A token introspection endpoint names the bearer token alone.
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		json.NewEncoder(w).Encode(map[string]any{"args": args, "headers": headers, "data": string(data),
			"url": "http://" + r.Host + r.URL.RequestURI(), "token": token})
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	basic := base64.StdEncoding.EncodeToString([]byte("user:pw-SECRET-1"))
	o := runPortpatrol(t, []string{"PP_REF=ref-SECRET-4"}, "--log-level=debug", "--default-interval=100ms", "--timeout=1s",
		"--http.e.address=http://user:pw-SECRET-1@"+host+"/anything?token=tok-SECRET-5&api_key=k%2BSECRET-6&page=2",
		"--http.e.header=X-Api-Key=key-SECRET-2", "--http.e.header=X-Ref=env:PP_REF",
		"--http.e.method=POST", "--http.e.body=body-SECRET-7",
		"--http.e.json=headers.Authorization=x", "--http.e.json=headers.X-Api-Key=x", "--http.e.json=headers.X-Ref=x",
		"--http.e.json=args.token=x", "--http.e.json=args.api_key=x", "--http.e.json=args.page=1",
		"--http.e.json=url=x", "--http.e.json=data=x",
		"--http.b.address="+srv.URL, "--http.b.header=Authorization=Bearer tok-SECRET-8", "--http.b.json=token=x")
	o.mustExit(t, 1)
	if all := o.stdout + o.stderr; strings.Contains(all, "SECRET") || strings.Contains(all, basic) {
		t.Errorf("a credential leaked:\n%s", all)
	}
	for _, want := range []string{
		`headers.Authorization is \"[hidden]\", want x`,
		`headers.X-Api-Key is \"[hidden]\", want x`,
		`headers.X-Ref is \"[hidden]\", want x`,
		`args.token is \"[hidden]\", want x`,
		`args.api_key is \"[hidden]\", want x`,
		`args.page is \"2\", want 1`,
		`url is \"http://` + host + `/anything?token=[hidden]&api_key=[hidden]`,
		`data is \"[hidden]\", want x`,
		`token is \"[hidden]\", want x`,
	} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("the reason lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", o.stderr)
	}
}
