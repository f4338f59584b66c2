package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// kafkaAPIVersionsMetadata offers Metadata at versions lo to hi alone.
func kafkaAPIVersionsMetadata(lo, hi byte) []byte {
	return []byte{0, 0, 0, 0, 0, 2, 0, 3, 0, lo, 0, hi, 0, 18, 0, 0, 0, 0}
}

// topics=: each topic listed without error, every partition with a leader;
// the request names the topics, and Metadata v4 is preferred, whose
// allow_auto_topic_creation (false) keeps the check from creating them.
func TestKafkaTopics(t *testing.T) {
	const v4Body = "00000002" + "00066f7264657273" + "00056d61696c73" + "00" // orders, mails, no auto-creation
	missing := kafkaFixture(t, "metadata-v4-topic-missing")
	forbidden := bytes.Replace(missing, []byte("\x00\x03\x00\x05mails"), []byte("\x00\x1d\x00\x05mails"), 1)
	for _, tc := range []struct {
		name        string
		apiVersions []byte
		metadata    []byte
		err         string // "" means ready
		unseen      bool
		metaVersion int16
		metaBody    string
	}{
		{"ready", kafkaFixture(t, "apiversions-v0"), kafkaFixture(t, "metadata-v4-topics"), "", false, 4, v4Body},
		{"ready at Metadata v1", kafkaAPIVersionsMetadata(0, 3), kafkaFixture(t, "metadata-v1-topics"), "", false, 1, strings.TrimSuffix(v4Body, "00")},
		{"a topic is missing", kafkaFixture(t, "apiversions-v0"), missing, "no topic mails", false, 4, v4Body},
		{"a partition has no leader", kafkaFixture(t, "apiversions-v0"), kafkaFixture(t, "metadata-v4-no-leader"), "partition 1 of topic orders has no leader", false, 4, v4Body},
		{"not listed", kafkaFixture(t, "apiversions-v0"), kafkaFixture(t, "metadata-v4-ready"), "Metadata does not list topic orders", false, 4, v4Body},
		{"not authorized", kafkaFixture(t, "apiversions-v0"), forbidden, "topic mails: error code 29 TOPIC_AUTHORIZATION_FAILED", true, 4, v4Body},
		{"truncated", kafkaFixture(t, "apiversions-v0"), kafkaFixture(t, "metadata-v4-topics")[:80], "malformed Kafka response (truncated)", false, 4, v4Body},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broker, addr := startKafkaBroker(t, map[int16][]byte{kafkaAPIApiVersions: tc.apiVersions, kafkaAPIMetadata: tc.metadata})
			err := kafkaCheck{servers: []string{addr}, timeout: 5 * time.Second, topics: []string{"orders", "mails"}}.check(context.Background())
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || err.Error() != tc.err) {
				t.Fatalf("check = %v, want %q", err, tc.err)
			}
			if _, ok := errors.AsType[unseen](err); ok != tc.unseen {
				t.Errorf("unseen %v, want %v", ok, tc.unseen)
			}
			seen := broker.seen()
			if len(seen) != 2 || seen[1].apiKey != 3 || seen[1].version != tc.metaVersion || hex.EncodeToString(seen[1].body) != tc.metaBody {
				t.Errorf("requests %+v, want Metadata v%d with body %s", seen, tc.metaVersion, tc.metaBody)
			}
		})
	}
}

// A topic that a setup job creates later: not ready, then ready, through
// the binary.
func TestKafkaTopicsBecomeReady(t *testing.T) {
	t.Parallel()
	broker, addr := startKafkaBroker(t, map[int16][]byte{kafkaAPIApiVersions: kafkaFixture(t, "apiversions-v0"), kafkaAPIMetadata: kafkaFixture(t, "metadata-v4-topic-missing")})
	p := startPortpatrol(t, exec.Command(ppBinary, "--kafka.k.address="+addr, "--kafka.k.topics=orders,mails", "--kafka.k.interval=50ms", "--timeout=20s"))
	waitFor(t, p.stderr, `error="no topic mails"`)
	broker.set(kafkaAPIMetadata, kafkaFixture(t, "metadata-v4-topics"))
	p.exit(t, 0, 10*time.Second)
}

func TestKafkaTopicsStartupErrors(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"orders,,mails", "orders/eu", strings.Repeat("t", 250), "ordres mails"} {
		o := runPortpatrol(t, nil, "--kafka.k.address=kafka", "--kafka.k.topics="+v)
		o.mustExit(t, 2)
		if !strings.Contains(o.stderr, "--kafka.k.topics=") || !strings.Contains(o.stderr, ": want topic names of 1 to 249 letters, digits, '.', '_' and '-', separated by commas") {
			t.Errorf("%q:\n%s", v, o.stderr)
		}
	}
}

// The topic fixtures checked against a real client: kcat -L -t reads them
// as the topics, partitions and leaders they describe.
func TestKafkaTopicsFakeAgainstKcat(t *testing.T) {
	kcat := requireProgram(t, "kcat", "kafkacat")
	for _, tc := range []struct {
		metadataVersion byte
		metadata, topic string
		want            []string
	}{
		{4, "metadata-v4-topics", "orders", []string{"topic \"orders\" with 2 partitions:", "partition 0, leader 1, replicas: 1, isrs: 1", "partition 1, leader 1, replicas: 1, isrs: 1",
			"topic \"mails\" with 1 partitions:"}},
		{1, "metadata-v1-topics", "orders", []string{"topic \"mails\" with 1 partitions:", "topic \"orders\" with 1 partitions:", "partition 0, leader 1, replicas: 1, isrs: 1"}},
		{4, "metadata-v4-topic-missing", "mails", []string{"topic \"mails\" with 0 partitions: Broker: Unknown topic or partition", "topic \"orders\" with 1 partitions:"}},
		{4, "metadata-v4-no-leader", "orders", []string{"partition 1, leader -1, replicas: 2, isrs: , Broker: Leader not available"}},
	} {
		broker, addr := startKafkaBroker(t, map[int16][]byte{18: kafkaAPIVersionsMetadata(tc.metadataVersion, tc.metadataVersion), 3: kafkaFixture(t, tc.metadata)})
		out, _ := exec.Command(kcat, "-L", "-b", addr, "-t", tc.topic, "-m", "10").CombinedOutput()
		for _, w := range tc.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("kcat -L -t %s on %s:\n%s\nwant %q", tc.topic, tc.metadata, out, w)
			}
		}
		asked := false
		for _, r := range broker.seen() {
			if r.apiKey == 3 && r.version == int16(tc.metadataVersion) && bytes.Contains(r.body, append([]byte{0, byte(len(tc.topic))}, tc.topic...)) {
				asked = true
			}
		}
		if !asked {
			t.Errorf("kcat never asked Metadata v%d for topic %s: %+v", tc.metadataVersion, tc.topic, broker.seen())
		}
	}
}
