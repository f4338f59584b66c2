package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rabbitStart is the Connection.Start frame a real RabbitMQ 3.10.8 (Debian
// 12) sent to the protocol header, captured from the broker this file's
// TestAMQPRealRabbitMQ starts; the fake broker replays it.
func rabbitStart(tb testing.TB) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", "amqp", "connection-start-rabbitmq-3.10.8.bin"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// amqpBroker is a fake broker: it reads the 8-byte protocol header, answers
// with reply and closes.
func amqpBroker(t *testing.T, reply []byte) string {
	return tcpServer(t, func(c net.Conn) {
		header := make([]byte, 8)
		if _, err := io.ReadFull(c, header); err != nil || !bytes.Equal(header, amqpHeader) {
			return
		}
		c.Write(reply)
	})
}

func TestParseAMQPAddress(t *testing.T) {
	for _, tc := range []struct {
		in, hostport string
		tls          bool
		password     string
		err          string
	}{
		{in: "mq", hostport: "mq:5672"},
		{in: "mq:5673", hostport: "mq:5673"},
		{in: "::1", hostport: "[::1]:5672"},
		{in: "amqp://mq", hostport: "mq:5672"},
		{in: "amqp://guest:s%2Fcret@mq:5673/%2F", hostport: "mq:5673", password: "s/cret"},
		{in: "amqps://u:pw@mq/vhost", hostport: "mq:5671", tls: true, password: "pw"},
		{in: "amqps://[::1]:5000", hostport: "[::1]:5000", tls: true},
		{in: "amqp://u@mq", hostport: "mq:5672"},
		{in: "http://mq", err: "want host[:port], amqp://host[:port][/vhost] or amqps://"},
		{in: "amqp:///vhost", err: "the URL has no host"},
		{in: "amqp://mq:0", err: "the port must be a number from 1 to 65535"},
		{in: "mq:99999", err: "the port must be a number from 1 to 65535"},
		{in: "amqp://u:p%zz@mq", err: "not a valid URL"},
	} {
		hostport, useTLS, password, err := parseAMQPAddress(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseAMQPAddress(%q): %v, want error %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || hostport != tc.hostport || useTLS != tc.tls || password != tc.password {
			t.Errorf("parseAMQPAddress(%q) = %q, %v, %q, %v; want %q, %v, %q", tc.in, hostport, useTLS, password, err, tc.hostport, tc.tls, tc.password)
		}
	}
}

func TestAMQPCheck(t *testing.T) {
	start := rabbitStart(t)
	frame := func(typ byte, channel uint16, payload []byte, end byte) []byte {
		b := []byte{typ, byte(channel >> 8), byte(channel)}
		b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
		return append(append(b, payload...), end)
	}
	withPayload := func(edit func(p []byte)) []byte {
		b := bytes.Clone(start)
		edit(b[7 : len(b)-1])
		return b
	}
	for _, tc := range []struct {
		name  string
		reply []byte
		err   string // "" means ready
	}{
		{"RabbitMQ", start, ""},
		{"smallest Connection.Start", frame(1, 0, []byte{0, 10, 0, 10, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0xCE), ""},
		{"AMQP 0-10", []byte("AMQP\x01\x01\x00\x0a"), "the broker does not speak AMQP 0-9-1: it offered the protocol header AMQP 1 1 0 10 (AMQP 0-10)"},
		{"AMQP 1.0", []byte("AMQP\x00\x01\x00\x00"), "the broker does not speak AMQP 0-9-1: it offered the protocol header AMQP 0 1 0 0 (AMQP 1.0)"},
		{"AMQP 1.0 SASL", []byte("AMQP\x03\x01\x00\x00"), "the broker does not speak AMQP 0-9-1: it offered the protocol header AMQP 3 1 0 0 (AMQP 1.0)"},
		{"another header", []byte("AMQP\x00\x00\x0a\x00"), "the broker does not speak AMQP 0-9-1: it offered the protocol header AMQP 0 0 10 0"},
		{"AMQP 0-8", []byte("AMQP\x01\x01\x08\x00"), "the broker does not speak AMQP 0-9-1: it offered the protocol header AMQP 1 1 8 0 (AMQP 0-8)"},
		{"header cut short", []byte("AMQP\x00\x00\x09"), "the server closed the connection before it answered"},
		{"http", []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), "not an AMQP broker (first frame type 72 on channel 21588, want a method frame on channel 0)"},
		{"heartbeat frame", frame(8, 0, nil, 0xCE), "not an AMQP broker (first frame type 8 on channel 0, want a method frame on channel 0)"},
		{"huge frame size", []byte{1, 0, 0, 0x7f, 0xff, 0xff, 0xff}, "not an AMQP broker (frame size 2147483647)"},
		{"frame too small", frame(1, 0, []byte{0, 10, 0, 10}, 0xCE), "not an AMQP broker (frame size 4)"},
		{"frame cut short", start[:len(start)-1], "the server closed the connection before it answered"},
		{"wrong frame end", append(bytes.Clone(start[:len(start)-1]), 0), "not an AMQP broker (frame end 0x00, want 0xCE)"},
		{"Connection.Close", withPayload(func(p []byte) { p[3] = 50 }), "the broker's first method is 10.50, want Connection.Start (10.10)"},
		{"version 0-8", withPayload(func(p []byte) { p[5] = 8 }), "Connection.Start offers version 0-8, want 0-9"},
		{"closes", nil, "the server closed the connection before it answered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := amqpBroker(t, tc.reply)
			err := amqpCheck{address: addr, timeout: 5 * time.Second}.check(context.Background())
			if tc.err == "" && !isReady(err) || tc.err != "" && (isReady(err) || err.Error() != tc.err) {
				t.Errorf("check = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestAMQPHostilePeers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(net.Conn)
		err   string
	}{
		{"silent", func(c net.Conn) { io.Copy(io.Discard, c) }, "no answer within 300ms"},
		{"frame never ends", func(c net.Conn) { c.Write([]byte{1, 0, 0, 0, 0, 1, 0, 0, 10}); io.Copy(io.Discard, c) }, "no answer within 300ms"},
		{"reset", func(c net.Conn) {
			c.Read(make([]byte, 8))
			c.(*net.TCPConn).SetLinger(0)
		}, "connection reset by peer"},
		{"endless", func(c net.Conn) {
			c.Write([]byte{1, 0, 0, 0, 1, 0, 0}) // a 64 KiB frame, then zeros for ever
			for {
				if _, err := c.Write(make([]byte, 4096)); err != nil {
					return
				}
			}
		}, "not an AMQP broker (frame end 0x00, want 0xCE)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tcpServer(t, tc.serve)
			start := time.Now()
			err := amqpCheck{address: addr, timeout: 300 * time.Millisecond}.check(context.Background())
			if err == nil || err.Error() != tc.err {
				t.Errorf("check = %v, want %q", err, tc.err)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
}

// amqps://: the TLS properties apply, the certificate checked against the
// host of the URL.
func TestAMQPS(t *testing.T) {
	pki := newTestPKI(t)
	start := rabbitStart(t)
	addr := tcpServer(t, func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{pki.server}})
		if _, err := io.ReadFull(tc, make([]byte, 8)); err == nil {
			tc.Write(start)
		}
	})
	_, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--amqp.q.address=amqps://localhost:" + port, "--amqp.q.ca-file=" + pki.caFile}, ""},
		{[]string{"--amqp.q.address=amqps://localhost:" + port}, "certificate signed by unknown authority"},
		{[]string{"--amqp.q.address=amqps://localhost:" + port, "--amqp.q.skip-tls-verify"}, ""},
		{[]string{"--amqp.q.address=amqp://localhost:" + port}, "the server closed the connection before it answered"}, // the TLS server drops it
	} {
		err := checkerFor(t, tc.args...).check(context.Background())
		if tc.err == "" && !isReady(err) || tc.err != "" && (isReady(err) || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: check = %v, want %q", tc.args, err, tc.err)
		}
	}
	const password = "Pl4ntedAmqpSecret"
	for _, args := range [][]string{
		{"--amqp.q.address=amqp://guest:" + password + "@mq:0", "--log-level=debug"},
		{"--amqp.q.address=amqps://guest:" + password + "@" + addr, "--log-level=debug", "--timeout=1s"},
		{"--amqp.q.address=amqp://guest:" + password + "@" + closedPort(t), "--log-level=debug", "--timeout=1s"},
	} {
		o := runPortpatrol(t, nil, args...)
		if o.code == 0 || strings.Contains(o.stdout+o.stderr, password) || !strings.Contains(o.stderr, "guest:xxxxx@") {
			t.Errorf("%q: exit %d, want a failure that shows the address without its password:\n%s", args, o.code, o.stderr)
		}
	}
	o := runPortpatrol(t, nil, "--amqp.q.address=mq", "--amqp.q.ca-file=/ca.pem")
	o.mustExit(t, 2)
	if !strings.Contains(o.stderr, "--amqp.q.address: TLS properties are set but the address does not ask for TLS (use amqps://)") {
		t.Errorf("start-up error:\n%s", o.stderr)
	}
}

// The real broker: Debian's rabbitmq-server as nobody on free loopback
// ports, with its own epmd in the foreground, in a temporary directory. It
// is not ready while it boots and ready after, through the binary, whose
// output never shows the planted password; and what it sends is what the
// fake replays. Its management plugin answers the alarms health check in
// JSON, read by an http target with basic auth from a reference.
func TestAMQPRealRabbitMQ(t *testing.T) {
	requireRoot(t)
	server := requireProgram(t, "/usr/lib/rabbitmq/bin/rabbitmq-server")
	epmd := requireProgram(t, "epmd", "/usr/lib/erlang/erts-*/bin/epmd")
	dir := nobodyDir(t)
	home := filepath.Join(dir, "home")
	for _, d := range []string{home, filepath.Join(dir, "mnesia"), filepath.Join(dir, "log")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	managementPort := freePort(t)
	files := map[string]string{
		filepath.Join(home, ".erlang.cookie"): fmt.Sprintf("portpatrol%016x", rand.Uint64()),
		filepath.Join(dir, "rabbitmq.conf"):   fmt.Sprintf("management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = %d\n", managementPort),
		filepath.Join(dir, "enabled_plugins"): "[rabbitmq_management].\n",
	}
	for name, content := range files {
		if err := os.WriteFile(name, []byte(content), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{home, filepath.Join(dir, "mnesia"), filepath.Join(dir, "log"), filepath.Join(home, ".erlang.cookie"), filepath.Join(dir, "rabbitmq.conf"), filepath.Join(dir, "enabled_plugins")} {
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	epmdPort, nodePort, distPort := strconv.Itoa(freePort(t)), freePort(t), strconv.Itoa(freePort(t))
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C.UTF-8", "ERL_EPMD_PORT=" + epmdPort}

	// epmd in the foreground, so that it ends with the test.
	ep := asNobody(exec.Command(epmd, "-port", epmdPort, "-address", "127.0.0.1"))
	ep.Env, ep.Dir = env, dir
	startServer(t, ep)
	waitForPort(t, "127.0.0.1:"+epmdPort, 30*time.Second)

	rabbit := asNobody(exec.Command(server))
	rabbit.Dir = dir
	nodename := fmt.Sprintf("pp%d@localhost", rand.Uint32())
	rabbit.Env = append(env,
		"RABBITMQ_NODENAME="+nodename,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(nodePort),
		"RABBITMQ_DIST_PORT="+distPort,
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
	)
	var rabbitOut bytes.Buffer
	rabbit.Stdout, rabbit.Stderr = &rabbitOut, &rabbitOut
	startServer(t, rabbit)
	addr := "127.0.0.1:" + strconv.Itoa(nodePort)

	// Booting: the Erlang VM alone takes longer than this.
	o := runPortpatrol(t, nil, "--amqp.mq.address="+addr, "--timeout=2s")
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, "connection refused") {
		t.Errorf("while booting, the reason is not given:\n%s", o.stderr)
	}

	check := amqpCheck{address: addr, timeout: 5 * time.Second}
	deadline := time.Now().Add(3 * time.Minute)
	var err error
	for err = check.check(context.Background()); !isReady(err); err = check.check(context.Background()) {
		if time.Now().After(deadline) {
			t.Fatalf("RabbitMQ never answered: %v\n%s", err, rabbitOut.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	ctl := func(args ...string) string {
		t.Helper()
		cmd := asNobody(exec.Command(filepath.Join(filepath.Dir(server), "rabbitmqctl"), append([]string{"-n", nodename}, args...)...))
		cmd.Env, cmd.Dir = env, dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("rabbitmqctl %q: %v\n%s", args, err, out)
		}
		return string(out)
	}

	// Without credentials the broker is ready whatever the vhost: the
	// check cannot see further, and says so at debug level.
	o = runPortpatrol(t, nil, "--amqp.mq.address=amqp://"+addr+"/nosuchvhost", "--log-level=debug", "--timeout=30s")
	o.mustExit(t, 0)
	if !strings.Contains(o.stderr, "no login without a user and password") {
		t.Errorf("no debug note that the check cannot see the vhost:\n%s", o.stderr)
	}

	// guest logs in from loopback; every form of the default vhost opens.
	for _, u := range []string{"amqp://guest:guest@" + addr, "amqp://guest:guest@" + addr + "/", "amqp://guest:guest@" + addr + "/%2F"} {
		runPortpatrol(t, nil, "--amqp.mq.address="+u, "--default-max-attempts=1", "--timeout=30s").mustExit(t, 0)
	}
	const password = "Pl4ntedRabbitSecret"
	o = runPortpatrol(t, nil, "--amqp.mq.address=amqp://guest:"+password+"@"+addr+"/%2F", "--log-level=debug", "--default-max-attempts=1", "--timeout=30s")
	o.mustExit(t, 1)
	if strings.Contains(o.stdout+o.stderr, password) {
		t.Errorf("the password is printed:\n%s", o.stderr)
	}
	if !strings.Contains(o.stderr, "amqp://guest:xxxxx@") || !strings.Contains(o.stderr, `error="the broker closed the connection: 403 ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN`) {
		t.Errorf("a wrong password is not refused with 403, or the address is not shown redacted:\n%s", o.stderr)
	}
	// The password property names the URL's user's password, and wins over
	// the URL's; inverted, a refused login is not "gone".
	runPortpatrol(t, []string{"PP_AMQP_PW=guest"}, "--amqp.mq.address=amqp://guest@"+addr+"/", "--amqp.mq.password=env:PP_AMQP_PW",
		"--amqp.mq.timeout=10s", "--default-max-attempts=1", "--timeout=30s").mustExit(t, 0)
	runPortpatrol(t, nil, "--amqp.mq.address=amqp://guest:"+password+"@"+addr, "--amqp.mq.password=guest",
		"--amqp.mq.timeout=10s", "--default-max-attempts=1", "--timeout=30s").mustExit(t, 0)
	for _, address := range []string{"amqp://guest@" + addr, "amqp://guest@" + addr + "/nosuchvhost"} {
		pw := password
		if strings.HasSuffix(address, "vhost") {
			pw = "guest"
		}
		o = runPortpatrol(t, nil, "--amqp.mq.address="+address, "--amqp.mq.password="+pw, "--amqp.mq.invert", "--amqp.mq.timeout=10s",
			"--default-interval=100ms", "--default-max-attempts=2", "--timeout=30s")
		if o.code != 1 || !strings.Contains(o.stderr, "the broker closed the connection: ") || strings.Contains(o.stderr, password) {
			t.Errorf("%s inverted with a refused login: exit %d, want 1 (still waiting):\n%s", address, o.code, o.stderr)
		}
	}

	// The management API: {"status":"ok"} with 200 when no alarm is in
	// effect; 401 with a wrong password.
	alarms := fmt.Sprintf("http://guest:%%s@127.0.0.1:%d/api/health/checks/alarms", managementPort)
	o = runPortpatrol(t, []string{"RABBIT_URL=" + fmt.Sprintf(alarms, "guest")}, "--http.mgmt.address=env:RABBIT_URL",
		"--http.mgmt.json=status=ok", "--timeout=60s")
	o.mustExit(t, 0)
	o = runPortpatrol(t, []string{"RABBIT_URL=" + fmt.Sprintf(alarms, "guest")}, "--http.mgmt.address=env:RABBIT_URL",
		"--http.mgmt.json=status=failed", "--timeout=1s")
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, `error="status is \"ok\", want failed"`) {
		t.Errorf("the alarms check's reason:\n%s", o.stderr)
	}
	o = runPortpatrol(t, []string{"RABBIT_URL=" + fmt.Sprintf(alarms, password)}, "--http.mgmt.address=env:RABBIT_URL",
		"--http.mgmt.json=status=ok", "--timeout=1s")
	o.mustExit(t, 1)
	if !strings.Contains(o.stderr, "status 401, want 200") || strings.Contains(o.stderr, password) {
		t.Errorf("a wrong password:\n%s", o.stderr)
	}

	// A vhost that a setup job creates later.
	cmd := exec.Command(ppBinary, "--amqp.mq.address=amqp://guest:guest@"+addr+"/orders", "--default-interval=200ms", "--timeout=60s")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	waitFor(t, &stderr, `error="the broker closed the connection: 530 NOT_ALLOWED - vhost orders not found"`)
	ctl("add_vhost", "orders")
	ctl("set_permissions", "-p", "orders", "guest", ".*", ".*", ".*")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("not ready after add_vhost: %v\n%s", err, stderr.String())
	}

	// A disk alarm: a free-space limit above what the disk has. What a
	// new connection hears is what the README says.
	ctl("set_disk_free_limit", "1000000GB")
	t.Cleanup(func() { ctl("set_disk_free_limit", "50MB") })
	for end := time.Now().Add(30 * time.Second); !strings.Contains(ctl("eval", "rabbit_alarm:get_alarms()."), "disk"); {
		if time.Now().After(end) {
			t.Fatalf("no disk alarm 30s after set_disk_free_limit: %s", ctl("eval", "rabbit_alarm:get_alarms()."))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Measured with RabbitMQ 3.10.8: a new connection opens as usual and
	// hears no Connection.Blocked, however long it waits; the broker
	// blocks (and says so) only a connection that publishes. So the login
	// is ready, and the README says that an alarm is not seen.
	runPortpatrol(t, nil, "--amqp.mq.address=amqp://guest:guest@"+addr, "--default-max-attempts=1", "--timeout=30s").mustExit(t, 0)
	pub, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	pub.Write(amqpHeader)
	readConnectionStart(pub)
	props := amqpTable(amqpField("capabilities", append([]byte{'F'}, amqpTable(amqpField("connection.blocked", []byte{'t', 1}))...)))
	pub.Write(amqpMethodArgs(amqpStartOk, props, amqpShortString("PLAIN"), amqpLongString("\x00guest\x00guest")[1:], amqpShortString("en_US")))
	if _, args, err := readAMQPMethod(pub); err == nil && len(args) >= 6 {
		pub.Write(amqpMethodArgs(amqpTuneOk, args[:6], []byte{0, 0}))
	}
	pub.Write(amqpMethodArgs(amqpOpen, amqpShortString("/"), amqpShortString(""), []byte{0}))
	if m, _, err := readAMQPMethod(pub); m != amqpOpenOk || err != nil {
		t.Fatalf("under a disk alarm, Open is answered with method %d, %v; want OpenOk", m, err)
	}
	pub.SetDeadline(time.Now().Add(2 * time.Second))
	if m, _, err := readAMQPMethod(pub); !os.IsTimeout(err) {
		t.Errorf("after OpenOk under a disk alarm, without publishing: method %d, %v; want nothing", m, err)
	}
	// Channel.Open (20.10) on channel 1, then Basic.Publish (60.40) of one
	// byte to the default exchange: the broker answers Connection.Blocked.
	pub.SetDeadline(time.Now().Add(10 * time.Second))
	onChannel1 := func(class uint16, method uint16, args ...[]byte) []byte {
		f := amqpMethodArgs(method, args...)
		f[2], f[7], f[8] = 1, byte(class>>8), byte(class)
		return f
	}
	pub.Write(onChannel1(20, 10, []byte{0}))
	if typ, payload, err := readAMQPFrameAnyChannel(pub); err != nil || typ != amqpFrameMethod || len(payload) < 4 || payload[1] != 20 || payload[3] != 11 {
		t.Fatalf("Channel.Open: %d %q %v", typ, payload, err)
	}
	pub.Write(onChannel1(60, 40, []byte{0, 0}, amqpShortString(""), amqpShortString("nowhere"), []byte{0}))
	pub.Write([]byte{2, 0, 1, 0, 0, 0, 14, 0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0xCE}) // content header: 1 byte, no properties
	pub.Write([]byte{3, 0, 1, 0, 0, 0, 1, 'x', 0xCE})
	if m, args, err := readAMQPMethod(pub); m != amqpBlocked || amqpBlockedReason(args).Error() != "publishers are blocked: low on disk" {
		t.Errorf("after a publish under a disk alarm: method %d %q %v, want Connection.Blocked, low on disk", m, args, err)
	}
	ctl("set_disk_free_limit", "50MB")
	for end := time.Now().Add(30 * time.Second); strings.Contains(ctl("eval", "rabbit_alarm:get_alarms()."), "disk"); {
		if time.Now().After(end) {
			t.Fatal("the disk alarm did not clear")
		}
		time.Sleep(200 * time.Millisecond)
	}
	runPortpatrol(t, nil, "--amqp.mq.address=amqp://guest:guest@"+addr, "--default-max-attempts=1", "--timeout=30s").mustExit(t, 0)

	// Queues: not ready while one is missing, and the passive declare
	// creates none; ready once a setup job declares it.
	cmd = exec.Command(ppBinary, "--amqp.mq.address=amqp://guest:guest@"+addr+"/orders", "--amqp.mq.queue=invoices,mails", "--default-interval=200ms", "--timeout=60s")
	stderr = syncBuffer{}
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	waitFor(t, &stderr, `error="no queue invoices in vhost orders"`)
	management := func(method, path string) int {
		t.Helper()
		req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d/api/queues/orders/%s", managementPort, path), strings.NewReader(`{"durable":true}`))
		req.SetBasicAuth("guest", "guest")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := management("GET", "invoices"); code != http.StatusNotFound {
		t.Errorf("GET invoices: %d after passive declares, want 404", code)
	}
	if code := management("PUT", "invoices"); code != http.StatusCreated {
		t.Fatalf("PUT invoices: %d", code)
	}
	waitFor(t, &stderr, `error="no queue mails in vhost orders"`)
	if code := management("PUT", "mails"); code != http.StatusCreated {
		t.Fatalf("PUT mails: %d", code)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("not ready after the queues were declared: %v\n%s", err, stderr.String())
	}

	// What the real broker sends is what the fake replays: the same frame,
	// method and version, the same product in the server properties, and the
	// same mechanisms and locales after them. Only values such as the
	// cluster name (the node name) differ.
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write(amqpHeader)
	head := make([]byte, 7)
	if _, err := io.ReadFull(c, head); err != nil {
		t.Fatal(err)
	}
	live := make([]byte, binary.BigEndian.Uint32(head[3:])+1)
	if _, err := io.ReadFull(c, live); err != nil {
		t.Fatal(err)
	}
	live = append(head, live...)
	fake := rabbitStart(t)
	tail := func(b []byte) []byte { return b[17+binary.BigEndian.Uint32(b[13:]):] }
	if !bytes.Equal(live[:3], fake[:3]) || !bytes.Equal(live[7:13], fake[7:13]) || !bytes.Equal(tail(live), tail(fake)) ||
		!bytes.Contains(live, []byte("\x07productS\x00\x00\x00\x08RabbitMQ")) {
		t.Errorf("the real Connection.Start differs from the fake's:\nreal %q\nfake %q", live, fake)
	}
}

// FuzzAMQPReply: whatever a peer sends, reading its answer ends in a
// reason or ready, never a panic or a frame past the limit.
func FuzzAMQPReply(f *testing.F) {
	f.Add(rabbitStart(f))
	f.Add([]byte("AMQP\x00\x01\x00\x00"))
	f.Add([]byte{1, 0, 0, 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		readConnectionStart(bytes.NewReader(b))
	})
}

// amqpLoginBroker is a fake broker for the login: it replays RabbitMQ's
// Connection.Start, checks StartOk, TuneOk and Open, and answers Open with
// openReply (frames); it records the vhost opened and the PLAIN response.
func amqpLoginBroker(t *testing.T, openReply []byte, startOkReply []byte) (string, chan string) {
	seen := make(chan string, 100)
	addr := tcpServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		header := make([]byte, 8)
		if _, err := io.ReadFull(c, header); err != nil {
			return
		}
		c.Write(rabbitStart(t))
		method, args, err := readAMQPMethod(c)
		if err != nil || method != amqpStartOk {
			t.Errorf("StartOk: method %d, %v", method, err)
			return
		}
		// client-properties table, mechanism, response
		tableLen := binary.BigEndian.Uint32(args)
		table := string(args[4 : 4+tableLen])
		rest := args[4+tableLen:]
		mech := string(rest[1 : 1+rest[0]])
		rest = rest[1+rest[0]:]
		response := string(rest[4 : 4+binary.BigEndian.Uint32(rest)])
		if mech != "PLAIN" || !strings.Contains(table, "connection.blocked") || !strings.Contains(table, "authentication_failure_close") {
			t.Errorf("StartOk mechanism %q, client-properties %q", mech, table)
		}
		seen <- "response " + response
		if startOkReply != nil {
			c.Write(startOkReply)
			readAMQPMethod(c) // CloseOk
			return
		}
		c.Write(amqpMethodArgs(amqpTune, []byte{0x07, 0xff, 0, 2, 0, 0, 0, 60}))
		if method, args, err = readAMQPMethod(c); err != nil || method != amqpTuneOk || !bytes.Equal(args, []byte{0x07, 0xff, 0, 2, 0, 0, 0, 0}) {
			t.Errorf("TuneOk: %d %q %v", method, args, err)
			return
		}
		if method, args, err = readAMQPMethod(c); err != nil || method != amqpOpen || len(args) < 1 {
			t.Errorf("Open: %d %v", method, err)
			return
		}
		seen <- "vhost " + string(args[1:1+args[0]])
		c.Write(openReply)
		if method, _, err = readAMQPMethod(c); err != nil || method != amqpClose && method != amqpCloseOk {
			t.Errorf("after OpenOk: method %d, %v; want Close (or CloseOk)", method, err)
			return
		}
		if method == amqpClose {
			seen <- "close"
			c.Write(amqpMethodArgs(amqpCloseOk))
		}
	})
	return addr, seen
}

func amqpCloseFrame(code uint16, text string) []byte {
	return amqpMethodArgs(amqpClose, binary.BigEndian.AppendUint16(nil, code), amqpShortString(text), []byte{0, 10, 0, 40})
}

func TestAMQPLoginAgainstFakes(t *testing.T) {
	openOk := amqpMethodArgs(amqpOpenOk, amqpShortString(""))
	blocked := amqpMethodArgs(amqpBlocked, amqpShortString("low on disk"))
	for _, tc := range []struct {
		name, url       string
		openReply       []byte
		startOkReply    []byte
		vhost, response string
		reason          string // "" is ready
	}{
		{"default vhost, no path", "amqp://app:Amqp-S3cret@ADDR", openOk, nil, "/", "\x00app\x00Amqp-S3cret", ""},
		{"default vhost, bare slash", "amqp://app:Amqp-S3cret@ADDR/", openOk, nil, "/", "", ""},
		{"default vhost, %2F", "amqp://app:Amqp-S3cret@ADDR/%2F", openOk, nil, "/", "", ""},
		{"a vhost", "amqp://app:Amqp-S3cret@ADDR/orders", openOk, nil, "orders", "", ""},
		{"an encoded password", "amqp://app:a%2Fb%40c@ADDR/orders", openOk, nil, "", "\x00app\x00a/b@c", ""},
		{"a missing vhost", "amqp://app:Amqp-S3cret@ADDR/nope", amqpCloseFrame(530, "NOT_ALLOWED - vhost nope not found"), nil, "nope", "",
			"the broker closed the connection: 530 NOT_ALLOWED - vhost nope not found"},
		{"wrong credentials", "amqp://app:Amqp-S3cret@ADDR", nil, amqpCloseFrame(403, "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN"), "", "",
			"the broker closed the connection: 403 ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN"},
		{"blocked at open", "amqp://app:Amqp-S3cret@ADDR", append(bytes.Clone(blocked), openOk...), nil, "/", "", "publishers are blocked: low on disk"},
		{"blocked after OpenOk", "amqp://app:Amqp-S3cret@ADDR", append(bytes.Clone(openOk), blocked...), nil, "/", "", "publishers are blocked: low on disk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, seen := amqpLoginBroker(t, tc.openReply, tc.startOkReply)
			opts, err := parseArgs([]string{"--amqp.mq.address=" + strings.Replace(tc.url, "ADDR", addr, 1)})
			if err != nil {
				t.Fatal(err)
			}
			targets, err := buildTargets(opts.targets, newLogger(opts, io.Discard))
			if err != nil {
				t.Fatal(err)
			}
			err = attempt(targets[0].checker)
			switch {
			case tc.reason == "" && err != nil:
				t.Errorf("not ready: %v", err)
			case tc.reason != "" && (err == nil || err.Error() != tc.reason):
				t.Errorf("error %v, want %q", err, tc.reason)
			}
			close(seen)
			var got []string
			for s := range seen {
				got = append(got, s)
			}
			all := strings.Join(got, "|")
			if tc.vhost != "" && !strings.Contains(all, "vhost "+tc.vhost+"|") && !strings.HasSuffix(all, "vhost "+tc.vhost) {
				t.Errorf("the broker saw %q, want vhost %q opened", all, tc.vhost)
			}
			if tc.response != "" && !strings.Contains(all, "response "+tc.response) {
				t.Errorf("the broker saw %q, want the PLAIN response %q", all, tc.response)
			}
			if tc.reason == "" && !strings.HasSuffix(all, "close") {
				t.Errorf("the broker saw %q: no Connection.Close at the end", all)
			}
		})
	}
}

func FuzzAMQPLogin(f *testing.F) {
	f.Add(append(amqpMethodArgs(amqpTune, []byte{0, 0, 0, 2, 0, 0, 0, 60}), amqpMethodArgs(amqpOpenOk, []byte{0})...))
	f.Add(amqpCloseFrame(403, "ACCESS_REFUSED"))
	f.Add(amqpMethodArgs(amqpBlocked, []byte{200, 'x'}))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &countingReader{r: bytes.NewReader(b)}
		l := &amqpLogin{user: "u", password: "p", vhost: "/"}
		l.open(fuzzNetConn{c})
		if c.n > 3*amqpMaxLoginFrames*(8+maxAMQPFrame) {
			t.Fatalf("read %d bytes", c.n)
		}
	})
}

// fuzzNetConn is a net.Conn that reads from r and swallows writes.
type fuzzNetConn struct{ r io.Reader }

func (c fuzzNetConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c fuzzNetConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c fuzzNetConn) Close() error                     { return nil }
func (c fuzzNetConn) LocalAddr() net.Addr              { return nil }
func (c fuzzNetConn) RemoteAddr() net.Addr             { return nil }
func (c fuzzNetConn) SetDeadline(time.Time) error      { return nil }
func (c fuzzNetConn) SetReadDeadline(time.Time) error  { return nil }
func (c fuzzNetConn) SetWriteDeadline(time.Time) error { return nil }

// readAMQPFrameAnyChannel reads one frame on any channel, for the tests'
// own conversations with the broker.
func readAMQPFrameAnyChannel(r io.Reader) (byte, []byte, error) {
	head := make([]byte, 7)
	if _, err := io.ReadFull(r, head); err != nil {
		return 0, nil, err
	}
	payload := make([]byte, binary.BigEndian.Uint32(head[3:])+1)
	_, err := io.ReadFull(r, payload)
	return head[0], payload[:len(payload)-1], err
}

// amqpMethodArgs, and the field encoders below, build the frames of the
// fakes and the tests' own conversations.
func amqpMethodArgs(method uint16, args ...[]byte) []byte {
	return amqpMethod(method, bytes.Join(args, nil))
}

func amqpShortString(s string) []byte { return append([]byte{byte(len(s))}, s...) }

// amqpLongString is a field value of type S: 'S', a long length, the bytes.
func amqpLongString(s string) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{'S'}, uint32(len(s))), s...)
}

func amqpField(name string, value []byte) []byte { return append(amqpShortString(name), value...) }

func amqpTable(fields ...[]byte) []byte {
	b := make([]byte, 4)
	for _, f := range fields {
		b = append(b, f...)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// The hand-encoded client-properties are the table they say they are.
func TestAMQPClientProperties(t *testing.T) {
	want := amqpTable(
		amqpField("product", amqpLongString("portpatrol")),
		amqpField("capabilities", append([]byte{'F'}, amqpTable(
			amqpField("authentication_failure_close", []byte{'t', 1}),
			amqpField("connection.blocked", []byte{'t', 1}))...)))
	if string(want) != amqpClientProperties {
		t.Errorf("client-properties\n%q\nwant\n%q", amqpClientProperties, want)
	}
}

func TestAMQPPasswordProperty(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--amqp.mq.address=127.0.0.1", "--amqp.mq.password=PLANTED"}, "--amqp.mq.password needs a user in the address: amqp://user@host/vhost"},
		{[]string{"--amqp.mq.address=amqp://127.0.0.1/", "--amqp.mq.password=PLANTED"}, "--amqp.mq.password needs a user"},
		{[]string{"--amqp.mq.address=amqp://app@127.0.0.1/", "--amqp.mq.password="}, "must not be empty"},
		{[]string{"--amqp.mq.address=amqp://app@127.0.0.1/", "--amqp.mq.password=env:PP_NO_SUCH_VAR"}, "--amqp.mq.password"},
	} {
		o := runPortpatrol(t, nil, tc.args...)
		o.mustExit(t, 2)
		if !strings.Contains(o.stderr, tc.want) || strings.Contains(o.stderr, "PLANTED") {
			t.Errorf("%v: stderr lacks %q (or shows the password):\n%s", tc.args, tc.want, o.stderr)
		}
	}
	// The property's password is the one sent, and it is hidden.
	addr, logins := amqpLoginBroker(t, nil, amqpCloseFrame(403, "ACCESS_REFUSED - Login was refused"))
	o := runPortpatrol(t, nil, "--amqp.mq.address=amqp://app:url-PLANTED@"+addr+"/", "--amqp.mq.password=prop-PLANTED", "--default-max-attempts=1")
	o.mustExit(t, 1)
	if got := <-logins; !strings.Contains(got, "\x00app\x00prop-PLANTED") {
		t.Errorf("the login sent %q, want the property's password", got)
	}
	if strings.Contains(o.stderr, "PLANTED") || !strings.Contains(o.stderr, "403 ACCESS_REFUSED") {
		t.Errorf("stderr:\n%s", o.stderr)
	}
	// An empty password in the URL is no error when the property gives one.
	runPortpatrol(t, nil, "--amqp.mq.address=amqp://app:@"+addr+"/", "--amqp.mq.password=prop-PLANTED", "--default-max-attempts=1").mustExit(t, 1)
	if got := <-logins; !strings.Contains(got, "\x00app\x00prop-PLANTED") {
		t.Errorf("the login sent %q, want the property's password", got)
	}
	runPortpatrol(t, nil, "--amqp.mq.address=amqp://app:@"+addr+"/").mustExit(t, 2)
}
