package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hexFixture reads a byte fixture written as hex pairs, with # comments
// naming each field (testdata/kafka, testdata/mongodb).
func hexFixture(tb testing.TB, path string) []byte {
	tb.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var digits strings.Builder
	for _, line := range strings.Split(string(text), "\n") {
		line, _, _ = strings.Cut(line, "#")
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return b
}

func kafkaFixture(tb testing.TB, name string) []byte {
	return hexFixture(tb, filepath.Join("testdata", "kafka", name+".hex"))
}

// kafkaRequestSeen is one request as the fake broker read it.
type kafkaRequestSeen struct {
	apiKey, version int16
	clientID        string
	body            []byte
}

// kafkaBroker is a fake broker built from the protocol guide: it reads
// size-prefixed requests (header v1) and answers each api key with the body
// of a fixture, framed with the request's correlation id. An api key without
// an answer closes the connection, as a broker does with a request it cannot
// parse. Its answers were checked once against librdkafka's kcat -L.
type kafkaBroker struct {
	mu       sync.Mutex
	answers  map[int16][]byte
	requests []kafkaRequestSeen
}

func (b *kafkaBroker) set(apiKey int16, body []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.answers[apiKey] = body
}

func (b *kafkaBroker) seen() []kafkaRequestSeen {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]kafkaRequestSeen(nil), b.requests...)
}

func startKafkaBroker(t *testing.T, answers map[int16][]byte) (*kafkaBroker, string) {
	b := &kafkaBroker{answers: answers}
	addr := tcpServer(t, func(c net.Conn) {
		for {
			var size [4]byte
			if _, err := io.ReadFull(c, size[:]); err != nil {
				return
			}
			req := make([]byte, binary.BigEndian.Uint32(size[:]))
			if len(req) < 10 {
				return
			}
			if _, err := io.ReadFull(c, req); err != nil {
				return
			}
			seen := kafkaRequestSeen{apiKey: int16(binary.BigEndian.Uint16(req)), version: int16(binary.BigEndian.Uint16(req[2:]))}
			n := int(binary.BigEndian.Uint16(req[8:]))
			if 10+n > len(req) {
				return
			}
			seen.clientID, seen.body = string(req[10:10+n]), req[10+n:]
			b.mu.Lock()
			b.requests = append(b.requests, seen)
			answer, ok := b.answers[seen.apiKey]
			b.mu.Unlock()
			if seen.apiKey == kafkaAPIApiVersions && seen.version != 0 {
				// A version it lacks: UNSUPPORTED_VERSION in the v0 layout,
				// as brokers before Kafka 2.4 answer (KIP-511).
				answer = kafkaFixture(t, "apiversions-v0-unsupported-version")
			}
			if !ok {
				return
			}
			reply := binary.BigEndian.AppendUint32(nil, uint32(4+len(answer)))
			reply = append(reply, req[4:8]...) // correlation_id
			c.Write(append(reply, answer...))
		}
	})
	return b, addr
}

func TestParseKafkaAddress(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{"kafka", []string{"kafka:9092"}, ""},
		{"kafka:19092", []string{"kafka:19092"}, ""},
		{"k1:9092, k2 ,[::1]:9093", []string{"k1:9092", "k2:9092", "[::1]:9093"}, ""},
		{"k1,,k2", nil, "empty entry in the list of bootstrap servers"},
		{"k1,k2:0", nil, "bootstrap server 2: the port must be a number from 1 to 65535"},
		{"kafka://k1:9092", nil, "no scheme"},
		{"k1:", nil, "bootstrap server 1: the port must be"},
	} {
		got, err := parseKafkaAddress(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseKafkaAddress(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("parseKafkaAddress(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestKafkaCheck(t *testing.T) {
	apiVersions := kafkaFixture(t, "apiversions-v0")
	for _, tc := range []struct {
		name        string
		apiVersions []byte
		metadata    []byte
		err         string // "" means ready
		metaVersion int16  // the Metadata version the check must ask with
		metaBody    string // and its body, in hex
	}{
		{"ready", apiVersions, kafkaFixture(t, "metadata-v1-ready"), "", 1, "00000000"},
		{"ready with Metadata v4", kafkaFixture(t, "apiversions-v0-metadata-from-v4"), kafkaFixture(t, "metadata-v4-ready"), "", 4, "0000000000"},
		{"no controller", apiVersions, kafkaFixture(t, "metadata-v1-no-controller"),
			"Metadata lists 1 broker(s) but no controller (controller id -1): the cluster is not formed yet", 1, "00000000"},
		{"no brokers", apiVersions, kafkaFixture(t, "metadata-v1-no-brokers"), "Metadata lists no broker", 1, "00000000"},
		{"unsupported version", kafkaFixture(t, "apiversions-v0-unsupported-version"), nil,
			"ApiVersions answered error code 35 UNSUPPORTED_VERSION (ApiVersions v0 is the oldest version: a broker should always take it)", -1, ""},
		{"only flexible Metadata", kafkaFixture(t, "apiversions-v0-metadata-from-v9"), nil,
			"the broker speaks Metadata versions 9 to 13, portpatrol speaks 1 and 4", -1, ""},
		{"no Metadata API", []byte{0, 0, 0, 0, 0, 0}, nil, "the broker does not offer the Metadata API", -1, ""},
		{"authorization", []byte{0, 31, 0, 0, 0, 0}, nil, "ApiVersions answered error code 31 CLUSTER_AUTHORIZATION_FAILED", -1, ""},
		{"unnamed error", []byte{0, 99, 0, 0, 0, 0}, nil, "ApiVersions answered error code 99", -1, ""},
		{"truncated ApiVersions", apiVersions[:9], nil, "malformed Kafka response (truncated)", -1, ""},
		{"truncated Metadata", apiVersions, kafkaFixture(t, "metadata-v1-ready")[:12], "malformed Kafka response (truncated)", 1, "00000000"},
		{"Metadata closes", apiVersions, nil, "the server closed the connection before it answered", 1, "00000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answers := map[int16][]byte{kafkaAPIApiVersions: tc.apiVersions}
			if tc.metadata != nil {
				answers[kafkaAPIMetadata] = tc.metadata
			}
			broker, addr := startKafkaBroker(t, answers)
			err := kafkaCheck{servers: []string{addr}, timeout: 5 * time.Second}.check(context.Background())
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || err.Error() != tc.err) {
				t.Fatalf("check = %v, want %q", err, tc.err)
			}
			seen := broker.seen()
			if len(seen) == 0 || seen[0].apiKey != 18 || seen[0].version != 0 || seen[0].clientID != "portpatrol" || len(seen[0].body) != 0 {
				t.Fatalf("first request %+v, want ApiVersions v0 from portpatrol with an empty body", seen)
			}
			if tc.metaVersion < 0 {
				if len(seen) != 1 {
					t.Errorf("requests %+v, want ApiVersions alone", seen)
				}
				return
			}
			if len(seen) != 2 || seen[1].apiKey != 3 || seen[1].version != tc.metaVersion || hex.EncodeToString(seen[1].body) != tc.metaBody {
				t.Errorf("requests %+v, want Metadata v%d with body %s (an empty topics array: no topic)", seen, tc.metaVersion, tc.metaBody)
			}
		})
	}
}

// Peers that are not Kafka brokers: reasons, never a hang or a large
// allocation.
func TestKafkaCheckHostilePeers(t *testing.T) {
	endless := make([]byte, 1<<16)
	for _, tc := range []struct {
		name  string
		serve func(net.Conn)
		err   string
	}{
		{"http", func(c net.Conn) { c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) }, "not a Kafka response (declared size 1213486160)"},
		{"huge size", func(c net.Conn) { c.Write([]byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1}) }, "not a Kafka response (declared size 2147483647)"},
		{"negative size", func(c net.Conn) { c.Write([]byte{0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 1}) }, "not a Kafka response (declared size -2)"},
		{"wrong correlation id", func(c net.Conn) { c.Write([]byte{0, 0, 0, 10, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0}) }, "not a Kafka response (correlation id 7, want 1)"},
		{"closes", readRequest, "the server closed the connection before it answered"},
		{"silent", func(c net.Conn) { io.Copy(io.Discard, c) }, "no answer within 300ms"},
		{"short body", func(c net.Conn) { c.Write([]byte{0, 0, 1, 0, 0, 0, 0, 1, 0}); io.Copy(io.Discard, c) }, "no answer within 300ms"},
		{"endless", func(c net.Conn) {
			c.Write([]byte{0, 1, 0, 0, 0, 0, 0, 1})
			for {
				if _, err := c.Write(endless); err != nil {
					return
				}
			}
		}, "the broker does not offer the Metadata API"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tcpServer(t, tc.serve)
			start := time.Now()
			err := kafkaCheck{servers: []string{addr}, timeout: 300 * time.Millisecond}.check(context.Background())
			if err == nil || err.Error() != tc.err {
				t.Errorf("check = %v, want %q", err, tc.err)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
}

func TestKafkaBootstrapList(t *testing.T) {
	_, ready := startKafkaBroker(t, map[int16][]byte{18: kafkaFixture(t, "apiversions-v0"), 3: kafkaFixture(t, "metadata-v1-ready")})
	_, forming := startKafkaBroker(t, map[int16][]byte{18: kafkaFixture(t, "apiversions-v0"), 3: kafkaFixture(t, "metadata-v1-no-controller")})
	dead := closedPort(t)
	check := func(servers ...string) error {
		return kafkaCheck{servers: servers, timeout: 5 * time.Second}.check(context.Background())
	}
	if err := check(dead, ready); err != nil {
		t.Errorf("one ready bootstrap server of two: %v", err)
	}
	if err := check(silentServer(t), ready); err != nil {
		t.Errorf("a silent server must not hold up a ready one: %v", err)
	}
	want := dead + ": connection refused; " + forming + ": Metadata lists 1 broker(s) but no controller (controller id -1): the cluster is not formed yet"
	if err := check(dead, forming); err == nil || err.Error() != want {
		t.Errorf("no ready server: %v, want %q", err, want)
	}
}

// End to end: the broker forms its cluster after a few attempts.
func TestKafkaBecomesReady(t *testing.T) {
	t.Parallel()
	broker, addr := startKafkaBroker(t, map[int16][]byte{18: kafkaFixture(t, "apiversions-v0"), 3: kafkaFixture(t, "metadata-v1-no-controller")})
	var asked atomic.Int32
	go func() {
		for asked.Load() == 0 {
			if len(broker.seen()) >= 6 {
				broker.set(3, kafkaFixture(t, "metadata-v1-ready"))
				asked.Store(1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { asked.Store(1) })
	o := runPortpatrol(t, nil, "--kafka.events.address=127.0.0.1:1,"+addr, "--kafka.events.interval=50ms", "--timeout=30s", "--log-level=debug")
	o.mustExit(t, 0)
	if !strings.Contains(o.stderr, "no controller (controller id -1)") {
		t.Errorf("the log does not show the reason it waited:\n%s", o.stderr)
	}

	o = runPortpatrol(t, nil, "--kafka.x.address="+closedPort(t), "--timeout=1s")
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, "connection refused") {
		t.Errorf("stderr does not give the reason:\n%s", o.stderr)
	}
	o = runPortpatrol(t, nil, "--kafka.x.address=k1,,k2")
	o.mustExit(t, 2)
	if !strings.Contains(o.stderr, "--kafka.x.address=k1,,k2: empty entry in the list of bootstrap servers") {
		t.Errorf("start-up error:\n%s", o.stderr)
	}
}

// FuzzKafkaReply feeds arbitrary bytes to the framing reader and both body
// parsers: they may refuse, never panic or allocate past the limit.
func FuzzKafkaReply(f *testing.F) {
	for _, name := range []string{"apiversions-v0", "apiversions-v0-metadata-from-v4", "metadata-v1-ready", "metadata-v1-no-controller", "metadata-v4-ready",
		"metadata-v4-topics", "metadata-v1-topics", "metadata-v4-topic-missing", "metadata-v4-no-leader"} {
		body := kafkaFixture(f, name)
		f.Add(append([]byte{0, 0, 0, byte(4 + len(body)), 0, 0, 0, 1}, body...))
	}
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		body, err := readKafkaReply(bytes.NewReader(b), 1)
		if err != nil {
			return
		}
		if len(body) > maxKafkaReply {
			t.Fatalf("body of %d bytes passed the limit", len(body))
		}
		parseApiVersions(body, false)
		parseApiVersions(body, true)
		parseMetadata(body, 1, nil)
		parseMetadata(body, 4, nil)
		parseMetadata(body, 1, []string{"orders", "mails"})
		parseMetadata(body, 4, []string{"orders", "mails"})
	})
}

// The fake broker checked against a real client: librdkafka's kcat reads
// its fixtures as the cluster they describe. librdkafka also asks for the
// brokers alone with the same Metadata body as portpatrol: an empty topics
// array.
func TestKafkaFakeAgainstKcat(t *testing.T) {
	kcat := requireProgram(t, "kcat", "kafkacat")
	for _, tc := range []struct {
		metadataVersion byte
		metadata, want  string
	}{
		{1, "metadata-v1-ready", "1 brokers:\n  broker 1 at localhost:9092 (controller)\n 0 topics:"},
		{4, "metadata-v4-ready", "2 brokers:\n  broker 1 at kafka:9092\n  broker 2 at kafka2:9092 (controller)\n 0 topics:"},
	} {
		// Metadata offered at this one version only, so that kcat uses it.
		apiVersions := []byte{0, 0, 0, 0, 0, 2, 0, 3, 0, tc.metadataVersion, 0, tc.metadataVersion, 0, 18, 0, 0, 0, 0}
		broker, addr := startKafkaBroker(t, map[int16][]byte{18: apiVersions, 3: kafkaFixture(t, tc.metadata)})
		out, err := exec.Command(kcat, "-L", "-b", addr, "-m", "10").CombinedOutput()
		if err != nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("kcat -L on %s: %v\n%s\nwant %q", tc.metadata, err, out, tc.want)
		}
		brokersOnly := false
		for _, r := range broker.seen() {
			if r.apiKey == 3 && r.version == int16(tc.metadataVersion) && bytes.HasPrefix(r.body, []byte{0, 0, 0, 0}) {
				brokersOnly = true
			}
		}
		if !brokersOnly {
			t.Errorf("kcat never asked Metadata v%d with an empty topics array: %+v", tc.metadataVersion, broker.seen())
		}
	}
}
