package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"

	"gopkg.in/yaml.v3"
)

// The Kubernetes examples must stay valid: parseable manifests, portpatrol
// arguments that parse, and the hardened security context the README promises.
func TestKubernetesExamples(t *testing.T) {
	files, _ := filepath.Glob("examples/kubernetes/*.yaml")
	if len(files) < 2 {
		t.Fatalf("found %d examples", len(files))
	}
	kinds := map[string]bool{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc map[string]any
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			for _, c := range portpatrolContainers(doc) {
				var args []string
				for _, a := range c["args"].([]any) {
					args = append(args, a.(string))
				}
				opts, err := parseArgs(args)
				if err != nil {
					t.Errorf("%s: args do not parse: %v", file, err)
					continue
				}
				for _, s := range opts.targets {
					kinds[s.kind] = true
				}
				sc, _ := c["securityContext"].(map[string]any)
				if sc["readOnlyRootFilesystem"] != true || sc["runAsNonRoot"] != true || sc["allowPrivilegeEscalation"] != false {
					t.Errorf("%s: securityContext %v is not hardened", file, sc)
				}
				caps, _ := sc["capabilities"].(map[string]any)
				if _, added := caps["add"]; added || !slices.Contains(caps["drop"].([]any), any("ALL")) {
					t.Errorf("%s: capabilities %v: want ALL dropped and none added", file, caps)
				}
			}
		}
	}
	for _, kind := range []string{"tcp", "http", "icmp", "postgres", "redis"} {
		if !kinds[kind] {
			t.Errorf("no example waits for a %s target", kind)
		}
	}
}

// portpatrolContainers finds the containers running the portpatrol image in
// a Pod or a workload's pod template.
func portpatrolContainers(doc map[string]any) []map[string]any {
	spec, _ := doc["spec"].(map[string]any)
	if tmpl, ok := spec["template"].(map[string]any); ok {
		spec, _ = tmpl["spec"].(map[string]any)
	}
	var found []map[string]any
	for _, key := range []string{"initContainers", "containers"} {
		list, _ := spec[key].([]any)
		for _, c := range list {
			c := c.(map[string]any)
			if strings.Contains(c["image"].(string), "portpatrol") {
				found = append(found, c)
			}
		}
	}
	return found
}

// koVersion is ko.yaml's version: VERSION if set, else "dev", which lets
// --version report what Go stamps from git (the tag or a pseudo-version).
const koVersion = `{{ or (index .Env "VERSION") "dev" }}`

// The README, the Dockerfile and ko.yaml must build with the same flags.
func TestReleaseCommandInLockstep(t *testing.T) {
	readme, _ := os.ReadFile("README.md")
	release := regexp.MustCompile(`(?m)^CGO_ENABLED=0 go build (.*) -o portpatrol \.$`).FindSubmatch(readme)
	if release == nil {
		t.Fatal("README.md lacks the release command")
	}
	want := strings.Replace(string(release[1]), "v1.2.3", "VERSION", 1)
	// -buildvcs=auto: without a VERSION, --version falls back to what Go
	// stamps from git, also where GOFLAGS would turn stamping off.
	if want != `-trimpath -buildvcs=auto -tags nethttpomithttp2 -gcflags=crypto/tls=-l -gcflags=crypto/x509=-l -gcflags=math/big=-l -gcflags=regexp/syntax=-l -gcflags=gopkg.in/yaml.v3=-l -ldflags="-s -w -X main.version=VERSION"` {
		t.Errorf("release flags = %s", want)
	}

	dockerfile, _ := os.ReadFile("Dockerfile")
	run := regexp.MustCompile(`(?m)^RUN CGO_ENABLED=0 GOOS=\$TARGETOS GOARCH=\$TARGETARCH go build (.*) -o portpatrol \.$`).FindSubmatch(dockerfile)
	if run == nil || strings.Replace(string(run[1]), "${VERSION}", "VERSION", 1) != want {
		t.Errorf("Dockerfile build flags %q differ from the release command's %q", run, want)
	}

	var ko struct {
		DefaultPlatforms []string `yaml:"defaultPlatforms"`
		Builds           []struct {
			Env     []string `yaml:"env"`
			Flags   []string `yaml:"flags"`
			Ldflags []string `yaml:"ldflags"`
		} `yaml:"builds"`
	}
	data, _ := os.ReadFile("ko.yaml")
	if err := yaml.Unmarshal(data, &ko); err != nil || len(ko.Builds) != 1 {
		t.Fatalf("ko.yaml: %v", err)
	}
	b := ko.Builds[0]
	got := strings.Join(b.Flags, " ") + ` -ldflags="` + strings.Join(b.Ldflags, " ") + `"`
	got = strings.Replace(strings.Replace(got, "-tags=", "-tags ", 1), koVersion, "VERSION", 1)
	if got != want || !slices.Contains(b.Env, "CGO_ENABLED=0") {
		t.Errorf("ko.yaml builds with %q (env %v), want %q", got, b.Env, want)
	}
	// ko fails on a missing key in .Env; VERSION is optional.
	for env, version := range map[string]string{"": "dev", "v1.2.3": "v1.2.3"} {
		data := map[string]any{"Env": map[string]string{}}
		if env != "" {
			data["Env"] = map[string]string{"VERSION": env}
		}
		var out strings.Builder
		tmpl, err := template.New("argsTmpl").Option("missingkey=error").Parse(koVersion)
		if err == nil {
			err = tmpl.Execute(&out, data)
		}
		if err != nil || out.String() != version {
			t.Errorf("ko.yaml's version with VERSION=%q: %q, %v; want %q", env, out.String(), err, version)
		}
	}
	if !slices.Equal(ko.DefaultPlatforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("ko.yaml platforms = %v", ko.DefaultPlatforms)
	}
	if target, err := os.Readlink(".ko.yaml"); err != nil || target != "ko.yaml" {
		t.Errorf(".ko.yaml should link to ko.yaml: %q, %v", target, err)
	}
}

func TestDockerfileCopyExample(t *testing.T) {
	data, _ := os.ReadFile("examples/Dockerfile.copy")
	m := regexp.MustCompile(`(?s)ENTRYPOINT (\[.*?\])`).FindSubmatch(bytes.ReplaceAll(data, []byte("\\\n"), nil))
	var entry []string
	if m == nil || json.Unmarshal(m[1], &entry) != nil {
		t.Fatalf("no JSON ENTRYPOINT in examples/Dockerfile.copy")
	}
	opts, err := parseArgs(entry[1:])
	if err != nil {
		t.Fatalf("entrypoint arguments: %v", err)
	}
	if len(opts.command) == 0 {
		t.Error("the example should exec a program after --")
	}
}

// The shell example tells a timeout from success by the exit code.
func TestShellExample(t *testing.T) {
	t.Parallel()
	script, _ := filepath.Abs("examples/wait-then-migrate.sh")
	dir := t.TempDir()
	if err := os.Symlink(ppBinary, filepath.Join(dir, "portpatrol")); err != nil {
		t.Fatal(err)
	}
	migrate := "#!/bin/sh\necho migrated\n"
	if err := os.WriteFile(filepath.Join(dir, "migrate"), []byte(migrate), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(addr string) outcome {
		cmd := exec.Command("sh", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "DATABASE_ADDR="+addr, "WAIT_TIMEOUT=300ms")
		return runCommand(t, cmd)
	}
	down := run(closedPort(t))
	down.mustExit(t, 1)
	if !strings.Contains(down.stderr, "did not accept connections within 300ms") {
		t.Errorf("stderr:\n%s", down.stderr)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	up := run(l.Addr().String())
	up.mustExit(t, 0)
	if up.stdout != "migrated\n" {
		t.Errorf("stdout = %q", up.stdout)
	}
	run("not-an-address").mustExit(t, 2)
}

// The manual's log sample shows the fields in the order the text handler
// writes them, time first.
func TestReadmeLogSample(t *testing.T) {
	t.Parallel()
	readme, _ := os.ReadFile("docs/logs.md")
	block := regexp.MustCompile("(?s)^# Logs\n.*?\n```\n(.*?)```").FindSubmatch(readme)
	if block == nil {
		t.Fatal("docs/logs.md lacks the log sample")
	}
	quoted := regexp.MustCompile(`"[^"]*"`)
	keys := func(line string) string {
		var ks []string
		for _, m := range regexp.MustCompile(`(?:^| )([a-z_]+)=`).FindAllStringSubmatch(quoted.ReplaceAllString(line, `""`), -1) {
			ks = append(ks, m[1])
		}
		return strings.Join(ks, " ")
	}
	o := runPortpatrol(t, nil, "--tcp.db.address="+closedPort(t), "--timeout=300ms", "--default-interval=100ms")
	real := map[string]string{}
	for _, line := range strings.Split(o.stderr, "\n") {
		if m := regexp.MustCompile(` msg=("[^"]*"|\S+)`).FindStringSubmatch(line); m != nil && real[m[1]] == "" {
			real[m[1]] = keys(line)
		}
	}
	for _, msg := range []string{"waiting", `"not ready"`} {
		found := false
		for _, line := range strings.Split(string(block[1]), "\n") {
			if strings.Contains(line, " msg="+msg+" ") {
				found = true
				if got := keys(line); got != real[msg] {
					t.Errorf("docs/logs.md: msg=%s has fields %q, the program writes %q", msg, got, real[msg])
				}
			}
		}
		if !found {
			t.Errorf("the log sample in docs/logs.md has no msg=%s line", msg)
		}
	}
}
