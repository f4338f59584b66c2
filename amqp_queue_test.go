package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// amqpScriptedBroker answers the login, then writes script whole once it
// has read the client's Channel.Open; it hands back everything the client
// sent.
func amqpScriptedBroker(t *testing.T, script []byte) (string, chan []byte) {
	sent := make(chan []byte, 1)
	addr := tcpServer(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		var all bytes.Buffer
		r := io.TeeReader(c, &all)
		io.ReadFull(r, make([]byte, 8))
		c.Write(rabbitStart(t))
		readAMQPMethod(r) // StartOk
		c.Write(amqpMethodArgs(amqpTune, []byte{0x07, 0xff, 0, 2, 0, 0, 0, 60}))
		readAMQPMethod(r) // TuneOk
		readAMQPMethod(r) // Open
		c.Write(amqpMethodArgs(amqpOpenOk, amqpShortString("")))
		readAMQPChannelFrame(r) // Channel.Open
		c.Write(script)
		for {
			_, channel, payload, err := readAMQPChannelFrame(r)
			if err != nil {
				break
			}
			if channel == 0 && len(payload) >= 4 && payload[3] == amqpClose {
				c.Write(amqpMethodArgs(amqpCloseOk))
				break
			}
		}
		sent <- all.Bytes()
	})
	return addr, sent
}

func amqpOnChannel1(class, method uint16, args ...[]byte) []byte {
	return amqpChannelMethod(1, class, method, bytes.Join(args, nil))
}

func amqpChannelCloseFrame(code uint16, text string) []byte {
	return amqpOnChannel1(amqpClassChannel, amqpChannelClose, binary.BigEndian.AppendUint16(nil, code), amqpShortString(text), []byte{0, 50, 0, 10})
}

// The passive declares against fakes: each queue in turn, the broker's
// refusals, and a Connection.Blocked on the way.
func TestAMQPQueueAgainstFakes(t *testing.T) {
	channelOpenOk := amqpOnChannel1(amqpClassChannel, amqpChannelOpenOk, []byte{0, 0, 0, 0})
	declareOk := func(q string) []byte {
		return amqpOnChannel1(amqpClassQueue, amqpDeclareOk, amqpShortString(q), []byte{0, 0, 0, 3, 0, 0, 0, 1})
	}
	for _, tc := range []struct {
		name   string
		script []byte
		reason string // "" is ready
		unseen bool
	}{
		{"both exist", bytes.Join([][]byte{channelOpenOk, declareOk("orders"), declareOk("mails")}, nil), "", false},
		{"the second is missing", bytes.Join([][]byte{channelOpenOk, declareOk("orders"),
			amqpChannelCloseFrame(404, "NOT_FOUND - no queue 'mails' in vhost 'shop'")}, nil), `no queue mails in vhost shop`, false},
		{"not allowed to look", bytes.Join([][]byte{channelOpenOk,
			amqpChannelCloseFrame(403, "ACCESS_REFUSED - access to queue 'orders' in vhost 'shop' refused for user 'app'")}, nil),
			`queue orders: the broker closed the channel: 403 ACCESS_REFUSED - access to queue 'orders' in vhost 'shop' refused for user 'app'`, true},
		{"locked", bytes.Join([][]byte{channelOpenOk, amqpChannelCloseFrame(405, "RESOURCE_LOCKED - cannot obtain exclusive access")}, nil),
			`queue orders: the broker closed the channel: 405 RESOURCE_LOCKED - cannot obtain exclusive access`, false},
		{"blocked while declaring", bytes.Join([][]byte{channelOpenOk, amqpMethodArgs(amqpBlocked, amqpShortString("low on memory")), declareOk("orders"), declareOk("mails")}, nil),
			"publishers are blocked: low on memory", false},
		{"connection closed", amqpCloseFrame(541, "INTERNAL_ERROR"), "the broker closed the connection: 541 INTERNAL_ERROR", false},
		{"a heartbeat first", bytes.Join([][]byte{{amqpFrameHeartbeat, 0, 0, 0, 0, 0, 0, amqpFrameEnd}, channelOpenOk, declareOk("orders"), declareOk("mails")}, nil), "", false},
		{"a method on another channel", amqpChannelMethod(2, amqpClassChannel, amqpChannelOpenOk, nil), "not an AMQP broker: method 20.11 on channel 2 where Channel.OpenOk was due", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, sent := amqpScriptedBroker(t, tc.script)
			opts, err := parseArgs([]string{"--amqp.mq.address=amqp://app:Amqp-S3cret@" + addr + "/shop", "--amqp.mq.queue=orders, mails"})
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
			if _, ok := errors.AsType[unseen](err); ok != tc.unseen {
				t.Errorf("unseen %v, want %v", ok, tc.unseen)
			}
			all := <-sent
			// The declares are passive, and the connection is closed politely.
			if tc.reason == "" && (!bytes.Contains(all, []byte("\x00\x32\x00\x0a\x00\x00\x06orders\x01\x00\x00\x00\x00")) ||
				!bytes.Contains(all, []byte("\x00\x32\x00\x0a\x00\x00\x05mails\x01\x00\x00\x00\x00"))) {
				t.Errorf("the broker saw %q", all)
			}
		})
	}
}

// A queue needs a login; names are 1 to 255 bytes.
func TestAMQPQueueStartupErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--amqp.mq.address=mq:5672", "--amqp.mq.queue=orders"}, "--amqp.mq.queue: a queue is seen after a login: give amqp://user:password@host/vhost, or amqp://user@host/vhost and the password property"},
		{[]string{"--amqp.mq.address=amqp://a:b@mq", "--amqp.mq.queue=orders,,mails"}, `--amqp.mq.queue=orders,,mails: want queue names of 1 to 255 bytes, separated by commas`},
		{[]string{"--amqp.mq.address=amqp://a:b@mq", "--amqp.mq.queue=" + strings.Repeat("q", 256)}, "want queue names of 1 to 255 bytes"},
	} {
		o := runPortpatrol(t, nil, tc.args...)
		o.mustExit(t, 2)
		if !strings.Contains(o.stderr, tc.want) {
			t.Errorf("%q: want %s in\n%s", tc.args, tc.want, o.stderr)
		}
	}
}

// FuzzAMQPChannelReply: whatever the broker answers on a channel, the
// reply is read within bounds and ends in a reason or ready.
func FuzzAMQPChannelReply(f *testing.F) {
	f.Add(amqpOnChannel1(amqpClassChannel, amqpChannelOpenOk, []byte{0, 0, 0, 0}))
	f.Add(amqpChannelCloseFrame(404, "NOT_FOUND - no queue"))
	f.Add(amqpMethodArgs(amqpBlocked, amqpShortString("low on disk")))
	f.Add([]byte{1, 0, 1, 0, 0, 0, 5, 0, 20, 0, 40, 1, amqpFrameEnd})
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &countingReader{r: bytes.NewReader(b)}
		var blocked error
		amqpChannelReply(fuzzNetConn{c}, &blocked, amqpClassQueue, amqpDeclareOk, "Queue.DeclareOk")
		if c.n > amqpMaxLoginFrames*(8+maxAMQPFrame) {
			t.Fatalf("read %d bytes", c.n)
		}
	})
}
