package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"
)

// The Kafka protocol guide (kafka.apache.org/protocol) is the reference for
// the names below: every request and response is a size-prefixed message
// (int32, big-endian) with a header, then the body of one API at one version.
const (
	kafkaAPIMetadata    = 3
	kafkaAPIApiVersions = 18
	kafkaClientID       = "portpatrol"
	// maxKafkaReply bounds one response. A Metadata reply without topics
	// lists every broker (a node id, a host name, a port and a rack each):
	// thousands of brokers fit.
	maxKafkaReply = 256 << 10
)

func init() {
	register("kafka", &targetType{
		ready: "when a bootstrap server answers ApiVersions without error and Metadata with a broker and a controller (and the topics asked for, each partition with a leader)",
		properties: []property{timeoutProperty("how long one attempt at a server may take, both requests included"), {name: "topics", arg: "NAME,...", help: "also require these topics, every partition with a leader",
			set: func(s *targetSpec, v string) error {
				var topics []string
				for _, t := range strings.Split(v, ",") {
					t = strings.TrimSpace(t)
					// Kafka's own rule for a topic name (Topic.validate).
					if t == "" || len(t) > 249 || strings.Trim(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
						return errors.New("want topic names of 1 to 249 letters, digits, '.', '_' and '-', separated by commas")
					}
					topics = append(topics, t)
				}
				s.settings = topics
				return nil
			}}},
		build: buildKafka,
	})
}

func buildKafka(s *targetSpec, address string) (built, []error) {
	servers, err := parseKafkaAddress(address)
	if err != nil {
		return built{}, []error{addressError{err}}
	}
	pieces := []string{address}
	for _, srv := range servers {
		host, _, _ := net.SplitHostPort(srv)
		pieces = append(pieces, srv, host)
	}
	shown := strings.Join(servers, ",")
	topics, _ := s.settings.([]string)
	return built{checker: kafkaCheck{servers: servers, timeout: s.timeout, topics: topics}, address: shown, pieces: append(pieces, shown)}, nil
}

// parseKafkaAddress accepts host, host:port and a comma-separated list of
// them (the bootstrap servers), with port 9092 by default.
func parseKafkaAddress(s string) ([]string, error) {
	if strings.Contains(s, "://") {
		return nil, errors.New("want host:port or a comma-separated list of them (no scheme)")
	}
	var servers []string
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, errors.New("empty entry in the list of bootstrap servers (want host:port,host:port)")
		}
		addr, err := withDefaultPort(item, "9092")
		if err != nil {
			return nil, errorf("bootstrap server %d: %v", len(servers)+1, err)
		}
		servers = append(servers, addr)
	}
	return servers, nil
}

// kafkaCheck is ready when one bootstrap server answers ApiVersions with
// error code 0 and then Metadata with at least one broker and a controller.
type kafkaCheck struct {
	servers []string // host:port
	timeout time.Duration
	topics  []string
}

func (c kafkaCheck) check(ctx context.Context) error {
	return anyServer(ctx, c.servers, func(ctx context.Context, server string) error {
		return exchange(ctx, "tcp", server, c.timeout, nil, func(conn net.Conn) error { return kafkaTalk(conn, c.topics) })
	})
}

// kafkaTalk asks which API versions the broker speaks, then for the cluster
// metadata with the topics asked for, or none.
func kafkaTalk(conn net.Conn, topics []string) error {
	// ApiVersions v0 has an empty body.
	if _, err := conn.Write(kafkaRequest(kafkaAPIApiVersions, 0, 1, nil)); err != nil {
		return err
	}
	reply, err := readKafkaReply(conn, 1)
	if err != nil {
		return err
	}
	version, err := parseApiVersions(reply, len(topics) > 0)
	if err != nil {
		return err
	}
	// Metadata v1 and later: an empty topics array asks for no topic (a
	// null one, length -1, would ask for all of them). v4 adds
	// allow_auto_topic_creation, false here.
	body := binary.BigEndian.AppendUint32(nil, uint32(len(topics)))
	for _, t := range topics {
		body = append(binary.BigEndian.AppendUint16(body, uint16(len(t))), t...)
	}
	if version == 4 {
		body = append(body, 0)
	}
	if _, err := conn.Write(kafkaRequest(kafkaAPIMetadata, version, 2, body)); err != nil {
		return err
	}
	if reply, err = readKafkaReply(conn, 2); err != nil {
		return err
	}
	return parseMetadata(reply, version, topics)
}

// kafkaRequest frames a request: size, then request header v1 (api_key,
// api_version, correlation_id, client_id as a nullable string), then body.
func kafkaRequest(apiKey, version int16, correlationID int32, body []byte) []byte {
	b := make([]byte, 4, 4+10+len(kafkaClientID)+len(body))
	b = binary.BigEndian.AppendUint16(b, uint16(apiKey))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(correlationID))
	b = binary.BigEndian.AppendUint16(b, uint16(len(kafkaClientID)))
	b = append(b, kafkaClientID...)
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// readKafkaReply reads one response and returns its body, after checking
// that response header v0 (the correlation_id) answers our request.
func readKafkaReply(r io.Reader, correlationID int32) ([]byte, error) {
	var head [8]byte // size, correlation_id
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(head[:4]))
	if size < 4 || size > maxKafkaReply {
		return nil, errorf("not a Kafka response (declared size %d)", size)
	}
	if got := int32(binary.BigEndian.Uint32(head[4:])); got != correlationID {
		return nil, errorf("not a Kafka response (correlation id %d, want %d)", got, correlationID)
	}
	body := make([]byte, size-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return body, nil
}

// parseApiVersions reads an ApiVersions v0 response body (error_code, then
// [api_key min_version max_version]) and picks the Metadata version to ask
// with: 1, or 4 for brokers that no longer speak 1. Asking for topics, 4
// first: before it, a broker with auto.create.topics.enable creates the
// topics a Metadata request names.
func parseApiVersions(b []byte, topics bool) (int16, error) {
	r := kafkaReader{b: b}
	if code := r.int16(); code != 0 {
		if r.err != nil {
			return 0, r.err
		}
		return 0, errorf("ApiVersions answered %s", kafkaErrorName(code, "ApiVersions v0 is the oldest version: a broker should always take it"))
	}
	n := r.int32()
	for i := int32(0); i < n && r.err == nil; i++ {
		key, lo, hi := r.int16(), r.int16(), r.int16()
		if key != kafkaAPIMetadata || r.err != nil {
			continue
		}
		versions := []int16{1, 4}
		if topics {
			versions = []int16{4, 1}
		}
		for _, v := range versions {
			if lo <= v && v <= hi {
				return v, nil
			}
		}
		return 0, errorf("the broker speaks Metadata versions %d to %d, portpatrol speaks 1 and 4", lo, hi)
	}
	if r.err != nil {
		return 0, r.err
	}
	return 0, errors.New("the broker does not offer the Metadata API")
}

// parseMetadata reads a Metadata v1 or v4 response body: [throttle_time_ms
// (v4)] [brokers: node_id host port rack] [cluster_id (v4)] controller_id,
// then the topics asked for.
func parseMetadata(b []byte, version int16, topics []string) error {
	r := kafkaReader{b: b}
	if version >= 3 {
		r.int32() // throttle_time_ms
	}
	brokers := r.int32()
	for i := int32(0); i < brokers && r.err == nil; i++ {
		r.int32()  // node_id
		r.string() // host
		r.int32()  // port
		r.string() // rack, nullable
	}
	if version >= 2 {
		r.string() // cluster_id, nullable
	}
	controller := r.int32()
	switch {
	case r.err != nil:
		return r.err
	case brokers <= 0:
		//lint:ignore ST1005 Metadata is the name of the Kafka request
		return errors.New("Metadata lists no broker")
	case controller < 0:
		return errorf("Metadata lists %d broker(s) but no controller (controller id %d): the cluster is not formed yet", brokers, controller)
	case len(topics) == 0:
		return nil
	}
	return metadataTopics(&r, topics)
}

// metadataTopics reads the topics of a Metadata v1 or v4 response:
// [error_code name is_internal [partitions]], each partition error_code
// partition_index leader_id [replica_nodes] [isr_nodes]. It is ready when
// every topic asked for is listed without error, and each of its
// partitions has a leader; otherwise the reason is the first problem.
func metadataTopics(r *kafkaReader, want []string) error {
	listed := make([]bool, len(want))
	var problem error
	for n := r.int32(); n > 0 && r.err == nil; n-- {
		code, name := r.int16(), r.string()
		r.take(1) // is_internal
		partitions := r.int32()
		if i := slices.Index(want, name); i < 0 {
			name = "" // not asked for: read past it
		} else {
			listed[i] = true
		}
		for ; partitions > 0 && r.err == nil; partitions-- {
			partitionCode, index, leader := r.int16(), r.int32(), r.int32()
			r.take(4 * int(r.int32())) // replica_nodes
			r.take(4 * int(r.int32())) // isr_nodes
			if (leader < 0 || partitionCode == 5) && code == 0 && problem == nil && name != "" {
				problem = errorf("partition %d of topic %s has no leader", index, name)
			}
		}
		switch {
		case name == "" || problem != nil:
		case code == 3:
			problem = errorf("no topic %s", name)
		case code == 29:
			problem = unseen{errorf("topic %s: error code 29 TOPIC_AUTHORIZATION_FAILED", name)}
		case code != 0:
			problem = errorf("topic %s: %s", name, kafkaErrorName(code, ""))
		}
	}
	if r.err != nil {
		return r.err
	}
	if i := slices.Index(listed, false); i >= 0 && problem == nil {
		return errorf("Metadata does not list topic %s", want[i])
	}
	return problem
}

// kafkaReader reads the protocol's big-endian primitives from one response,
// bounds-checked; the first short read sticks as err.
type kafkaReader struct {
	b   []byte
	err error
}

// take is kept out of line: inlined into every int16 and int32 read, it
// cost the binary 6 KB.
//
//go:noinline
func (r *kafkaReader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		if r.err == nil {
			r.err = errors.New("malformed Kafka response (truncated)")
		}
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *kafkaReader) int16() int16 {
	if p := r.take(2); p != nil {
		return int16(binary.BigEndian.Uint16(p))
	}
	return 0
}

func (r *kafkaReader) int32() int32 {
	if p := r.take(4); p != nil {
		return int32(binary.BigEndian.Uint32(p))
	}
	return 0
}

// string reads a STRING or NULLABLE_STRING: int16 length (-1: null), bytes.
func (r *kafkaReader) string() string {
	if n := r.int16(); n > 0 {
		return string(r.take(int(n)))
	} else if n < -1 {
		r.take(-1) // a negative length other than null is malformed
	}
	return ""
}

// kafkaErrors names the error codes a broker may answer these two requests
// with (the protocol guide's table of error codes).
var kafkaErrors = map[int16]string{
	-1: "UNKNOWN_SERVER_ERROR",
	3:  "UNKNOWN_TOPIC_OR_PARTITION",
	5:  "LEADER_NOT_AVAILABLE",
	17: "INVALID_TOPIC_EXCEPTION",
	7:  "REQUEST_TIMED_OUT",
	8:  "BROKER_NOT_AVAILABLE",
	31: "CLUSTER_AUTHORIZATION_FAILED",
	35: "UNSUPPORTED_VERSION",
	42: "INVALID_REQUEST",
	58: "SASL_AUTHENTICATION_FAILED",
}

func kafkaErrorName(code int16, unsupported string) string {
	name, ok := kafkaErrors[code]
	if !ok {
		return fmt.Sprintf("error code %d", code)
	}
	s := fmt.Sprintf("error code %d %s", code, name)
	if code == 35 {
		s += " (" + unsupported + ")"
	}
	return s
}
