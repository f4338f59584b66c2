package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// probeCommand checks a shipped health check's command: /portpatrol with
// --probe and no command after --, every attempt's timeout below --timeout,
// and --timeout below the orchestrator's own limit, so that portpatrol
// reports a slow target with its reason before it is killed without one.
// Then it runs the arguments, pointed at real servers, as the orchestrator
// would: silent exit 0 when healthy, one line and exit 1 when not.
func probeCommand(t *testing.T, where string, command []string, limit time.Duration) {
	t.Helper()
	if len(command) < 2 || command[0] != "/portpatrol" {
		t.Fatalf("%s: command %q does not run /portpatrol", where, command)
	}
	args := command[1:]
	opts, err := parseArgs(args)
	if err != nil {
		t.Fatalf("%s: arguments do not parse: %v", where, err)
	}
	if !opts.probe || len(opts.command) > 0 {
		t.Fatalf("%s: want --probe and no command: %q", where, args)
	}
	if opts.timeout == 0 || opts.timeout >= limit {
		t.Errorf("%s: --timeout=%v, want more than 0 and less than the orchestrator's %v", where, opts.timeout, limit)
	}
	for _, s := range opts.targets {
		if s.timeout == 0 || s.timeout >= opts.timeout {
			t.Errorf("%s: %s=%v, want less than --timeout=%v", where, s.flag("timeout"), s.timeout, opts.timeout)
		}
	}

	for _, status := range []int{http.StatusOK, http.StatusServiceUnavailable} {
		url, requests := countingHTTP(t, status)
		var run []string
		for _, a := range args {
			// The app's own endpoint, here a server on a free port.
			run = append(run, regexp.MustCompile(`http://127\.0\.0\.1:8080/[a-z]*`).ReplaceAllString(a, url))
		}
		o := runPortpatrol(t, nil, run...)
		if status == http.StatusOK {
			o.mustExit(t, 0)
			if o.stderr != "" || o.stdout != "" {
				t.Errorf("%s: a healthy probe printed %q %q", where, o.stdout, o.stderr)
			}
		} else {
			o.mustExit(t, 1)
			if n := len(lines(o.stderr)); n != 1 {
				t.Errorf("%s: an unhealthy probe printed %d lines, want 1:\n%s", where, n, o.stderr)
			}
		}
		wantCount(t, where+": the app", requests, 1)
	}
}

// dockerfileInstructions joins continued lines and returns the instructions.
func dockerfileInstructions(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for l := range strings.SplitSeq(strings.ReplaceAll(string(data), "\\\n", " "), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// The Dockerfile copies the binary from where ko puts it (/ko-app/ and the
// last element of the import path; scripts/image-test.sh checks the real
// image's entrypoint is there) into the path its HEALTHCHECK runs.
func TestHealthcheckDockerfile(t *testing.T) {
	t.Parallel()
	gomod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	module := regexp.MustCompile(`(?m)^module (\S+)$`).FindSubmatch(gomod)
	koPath := "/ko-app/" + path.Base(string(module[1]))

	var stage, copied string
	var healthcheck []string
	for _, in := range dockerfileInstructions(t, "examples/healthcheck/Dockerfile") {
		f := strings.Fields(in)
		switch strings.ToUpper(f[0]) {
		case "FROM":
			if len(f) == 4 && strings.EqualFold(f[2], "AS") && strings.Contains(f[1], "/portpatrol:") {
				stage = f[3]
			}
		case "COPY":
			if len(f) == 4 && f[1] == "--from="+stage && stage != "" {
				if f[2] != koPath {
					t.Errorf("COPY %s: ko puts the binary at %s", f[2], koPath)
				}
				copied = f[3]
			}
		case "HEALTHCHECK":
			healthcheck = f
		}
	}
	if stage == "" || copied != "/portpatrol" {
		t.Fatalf("want a FROM …/portpatrol:… AS stage and COPY --from=stage %s /portpatrol; got stage %q, copied to %q", koPath, stage, copied)
	}
	if healthcheck == nil {
		t.Fatal("no HEALTHCHECK")
	}
	cmd := slices.Index(healthcheck, "CMD")
	options := map[string]string{}
	for _, o := range healthcheck[1:max(cmd, 1)] {
		name, value, _ := strings.Cut(o, "=")
		options[name] = value
	}
	for _, name := range []string{"--interval", "--timeout", "--start-period", "--retries"} {
		if options[name] == "" {
			t.Errorf("HEALTHCHECK lacks %s", name)
		}
	}
	limit, err := time.ParseDuration(options["--timeout"])
	if err != nil {
		t.Fatalf("HEALTHCHECK --timeout: %v", err)
	}
	// The exec form: a shell form would need the shell the image lacks.
	var command []string
	if cmd < 0 || json.Unmarshal([]byte(strings.Join(healthcheck[cmd+1:], " ")), &command) != nil {
		t.Fatalf("HEALTHCHECK is not CMD [JSON array]: %q", healthcheck)
	}
	probeCommand(t, "Dockerfile HEALTHCHECK", command, limit)
}

// composeCheck is the compose specification's own loader, built by
// scripts/compose/build.sh.
func composeCheck(t *testing.T) string {
	dir := os.Getenv("PORTPATROL_COMPOSE_BIN")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(cache, "portpatrol-compose")
	}
	bin := filepath.Join(dir, "compose-check")
	if _, err := os.Stat(bin); err != nil {
		msg := bin + " is not built (run scripts/compose/build.sh; PORTPATROL_COMPOSE_BIN names another directory)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// The compose example is valid compose, as the specification's loader reads
// it; its health check probes the image of the Dockerfile alike, and another
// service waits until it passes.
func TestHealthcheckCompose(t *testing.T) {
	t.Parallel()
	bin := composeCheck(t)
	out, err := exec.Command(bin, "examples/healthcheck/compose.yaml").Output()
	if err != nil {
		t.Fatalf("compose-check: %v\n%s", err, out)
	}
	var project struct {
		Services map[string]struct {
			Healthcheck *struct {
				Test    []string `json:"test"`
				Timeout string   `json:"timeout"`
			} `json:"healthcheck"`
			DependsOn map[string]struct {
				Condition string `json:"condition"`
			} `json:"depends_on"`
		} `json:"services"`
	}
	if err := json.Unmarshal(out, &project); err != nil {
		t.Fatal(err)
	}
	probed := map[string]bool{}
	for name, s := range project.Services {
		if h := s.Healthcheck; h != nil {
			if len(h.Test) == 0 || h.Test[0] != "CMD" {
				t.Fatalf("%s: healthcheck test %q: want the exec form, CMD", name, h.Test)
			}
			limit, err := time.ParseDuration(h.Timeout)
			if err != nil {
				t.Fatalf("%s: healthcheck timeout %q: %v", name, h.Timeout, err)
			}
			probeCommand(t, "compose service "+name, h.Test[1:], limit)
			probed[name] = true
		}
	}
	waits := false
	for _, s := range project.Services {
		for dep, d := range s.DependsOn {
			waits = waits || probed[dep] && d.Condition == "service_healthy"
		}
	}
	if len(probed) == 0 || !waits {
		t.Errorf("want a service probed by portpatrol and another that depends on it with condition service_healthy: %s", out)
	}

	// The loader is a judge that can say no: a misspelt key is refused.
	data, err := os.ReadFile("examples/healthcheck/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "compose.yaml")
	os.WriteFile(bad, []byte(strings.Replace(string(data), "start_period:", "start_periods:", 1)), 0o644)
	if out, err := exec.Command(bin, bad).CombinedOutput(); err == nil || !strings.Contains(string(out), "start_periods") {
		t.Errorf("compose-check accepted a misspelt key: %v\n%s", err, out)
	}
}

// The Kubernetes probes exec the copied binary (the API server's strict
// dry-run of every example is TestKubernetesExamplesApplyStrictly).
func TestHealthcheckKubernetesProbes(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("examples/kubernetes/probes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type probe struct {
		Exec struct {
			Command []string `yaml:"command"`
		} `yaml:"exec"`
		TimeoutSeconds int `yaml:"timeoutSeconds"`
	}
	var pod struct {
		Spec struct {
			Containers []struct {
				Startup   *probe `yaml:"startupProbe"`
				Liveness  *probe `yaml:"livenessProbe"`
				Readiness *probe `yaml:"readinessProbe"`
			} `yaml:"containers"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(data, &pod); err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.Containers) == 0 {
		t.Fatal("probes.yaml has no containers")
	}
	for _, c := range pod.Spec.Containers {
		for kind, p := range map[string]*probe{"startupProbe": c.Startup, "livenessProbe": c.Liveness, "readinessProbe": c.Readiness} {
			if p == nil {
				t.Errorf("probes.yaml: a container has no %s", kind)
				continue
			}
			// The kubelet's default timeoutSeconds is 1.
			limit := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
			probeCommand(t, kind, p.Exec.Command, limit)
		}
	}
}
