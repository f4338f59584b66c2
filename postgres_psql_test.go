package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// psqlVerdict is libpq's verdict on a connection string: psql runs one
// statement on it, as an app would, with no password prompt and no
// environment but env and an empty HOME (libpq's ~), and no ~/.psqlrc. A failure that psql reports for
// a server connection is "not ready"; one before any ("invalid connection
// option", a malformed URI, a missing root certificate) is a "start-up
// error", which is what portpatrol makes of a string libpq refuses.
func psqlVerdict(t *testing.T, conn string, env []string, within time.Duration) string {
	t.Helper()
	psql := requireProgram(t, "psql")
	ctx, cancel := context.WithTimeout(context.Background(), within+2*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, psql, "-X", "-w", "-At", "-c", "select 1", conn)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PGCONNECT_TIMEOUT=" + strconv.Itoa(int(within/time.Second))}, env...)
	out, err := cmd.CombinedOutput()
	switch {
	case err == nil:
		return "ready"
	case ctx.Err() != nil:
		return "not ready" // a query that never returned
	case strings.Contains(string(out), "root certificate file"), strings.Contains(string(out), "private key file"),
		strings.Contains(string(out), "invalid integer value"):
		// Files of the string that libpq reads after connecting, and
		// portpatrol at start-up.
	case strings.Contains(string(out), "connection to server"):
		return "not ready"
	}
	t.Logf("psql: %s", strings.TrimSpace(string(out)))
	return "start-up error"
}

// ppVerdict is portpatrol's verdict on the same string, one attempt, with a
// clean environment and an empty home: HOME and env only.
func ppVerdict(t *testing.T, conn string, env []string, extra ...string) (string, outcome) {
	t.Helper()
	cmd := exec.Command(ppBinary, append([]string{"--postgres.db.address=" + conn, "--postgres.db.login=true",
		"--default-max-attempts=1", "--timeout=5s"}, extra...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	o := runCommand(t, cmd)
	return map[int]string{0: "ready", 1: "not ready", 2: "start-up error"}[o.code], o
}

// The differential test of issue 27: for every connection string in the
// table, portpatrol's verdict equals psql's against the same servers. A is
// a primary with TLS (a certificate from a test CA for 127.0.0.1, not
// 127.0.0.2), B a server whose sessions are read-only; roles log in with
// SCRAM, MD5, only over TLS, or with a client certificate.
func TestPostgresLikePsql(t *testing.T) {
	t.Parallel()
	a, b := newPGServers(t)
	os.Remove(filepath.Join(b.data, "standby.signal"))
	dir := filepath.Dir(a.data)
	pki := newTestPKI(t)
	cert, key, ca := writeServerPEM(t, pki, dir)
	otherCA := filepath.Join(dir, "other-ca.pem")
	writeOtherCA(t, otherCA)
	hba := "local all all trust\nlocal replication all trust\n" +
		"hostssl all client 127.0.0.0/8 cert\n" +
		"hostssl all tlsonly 127.0.0.0/8 scram-sha-256\nhostnossl all tlsonly 127.0.0.0/8 reject\n" +
		"host all md5user 127.0.0.0/8 md5\nhost all trustuser 127.0.0.0/8 trust\nhost all all 127.0.0.0/8 scram-sha-256\n"
	for _, d := range []string{a.data, b.data} {
		if err := os.WriteFile(filepath.Join(d, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chown(filepath.Join(d, "pg_hba.conf"), nobody, nobody)
	}
	a.start(t, "listen_addresses=127.0.0.1,127.0.0.2", "ssl=on", "ssl_cert_file="+cert, "ssl_key_file="+key, "ssl_ca_file="+ca)
	b.start(t, "default_transaction_read_only=on")
	roles := `CREATE ROLE scramuser LOGIN PASSWORD 'Scr4m-pw'; CREATE ROLE tlsonly LOGIN PASSWORD 'Tls-pw';
		CREATE ROLE client LOGIN; CREATE ROLE trustuser LOGIN; CREATE ROLE "q user" LOGIN PASSWORD 'a b''c\d';
		CREATE ROLE prepuser LOGIN PASSWORD 'Ⅸﬁ` + "\u00a0" + `pw';
		SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD 'Md5-pw';`
	a.sql(t, roles)
	// H: a hot standby of A, streaming from it (in_hot_standby is on).
	h := &pgServer{bin: a.bin, data: filepath.Join(dir, "hot"), port: freePort(t), sockDir: a.sockDir, log: filepath.Join(dir, "hot.log")}
	a.tool(t, "pg_basebackup", "-D", h.data, "-R", "-h", a.sockDir, "-p", strconv.Itoa(a.port), "-U", "postgres", "-X", "stream")
	h.start(t, "listen_addresses=127.0.0.1", "ssl=on", "ssl_cert_file="+cert, "ssl_key_file="+key, "ssl_ca_file="+ca)
	if got := strings.TrimSpace(h.sql(t, "SELECT pg_is_in_recovery()")); got != "t" {
		t.Fatalf("the hot standby is not in recovery: %q", got)
	}
	H := h.addr()
	b.sql(t, "BEGIN READ WRITE; "+roles+" COMMIT;")
	passwords := []string{"Scr4m-pw", "Tls-pw", "Md5-pw", "a b'c\\d", "Wr0ng-pw", "p@ss:w", "Ⅸﬁ", "IXfi"}

	// The client certificate, for the role named by its common name.
	clientCert, clientKey := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	copyFile(t, pki.clientCert, clientCert, 0o600)
	copyFile(t, pki.clientKey, clientKey, 0o600)
	passfile := filepath.Join(dir, "pgpass")
	if err := os.WriteFile(passfile, []byte("# a comment\n127.0.0.1:"+strconv.Itoa(a.port)+":*:scramuser:Scr4m-pw\n*:*:*:md5user:Md5\\-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openPassfile := filepath.Join(dir, "pgpass-open")
	if err := os.WriteFile(openPassfile, []byte("*:*:*:scramuser:Scr4m-pw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(openPassfile, 0o644)

	A, B := a.addr(), b.addr()
	aPort, bPort := strconv.Itoa(a.port), strconv.Itoa(b.port)
	dead := "127.0.0.1:" + strconv.Itoa(freePort(t))
	sockDir := strings.ReplaceAll(a.sockDir, "/", "%2F")
	encryptedKey := filepath.Join(dir, "encrypted-key.pem")
	if err := os.WriteFile(encryptedKey, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, row := range []struct {
		conn  string
		env   []string
		want  string
		newer bool // libpq 16 or 17 reads it; the psql here (15) refuses the key word
	}{
		// URLs and their parts.
		{conn: "postgres://scramuser:Scr4m-pw@" + A + "/postgres", want: "ready"},
		{conn: "postgresql://scramuser:Wr0ng-pw@" + A + "/postgres", want: "not ready"},
		{conn: "postgresql://md5user:Md5-pw@" + A + "/postgres", want: "ready"},
		{conn: "postgresql://md5user:Md5-pw@" + A + "/nosuchdb", want: "not ready"},
		{conn: "postgres://" + A + "/postgres?user=scramuser&password=Scr4m-pw", want: "ready"},
		{conn: "postgres://q%20user:a%20b'c%5Cd@" + A + "/postgres", want: "ready"},
		{conn: "postgresql://" + sockDir + ":" + aPort + "/postgres?user=postgres", want: "ready"},
		{conn: "postgresql:///postgres?host=" + a.sockDir + "&port=" + aPort + "&user=postgres", want: "ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + A + "/postgres?bogus_param=1", want: "start-up error"},
		{conn: "postgres://scramuser:Scr4m-pw@" + A + "/postgres?sslmod=require", want: "start-up error"},
		{conn: "postgres://scramuser:Scr4m-pw@" + A + "/postgres?sslmode=on", want: "start-up error"},
		{conn: "postgres://scramuser:Scr4m-pw@" + A + "/postgres?connect_timeout", want: "start-up error"},
		{conn: "postgresql://scramuser:p@ss:w@" + A + "/postgres", want: "start-up error"},
		{conn: "postgresql://scramuser:p/ss@" + A + "/postgres", want: "start-up error"},
		{conn: "postgres://[::1/postgres", want: "start-up error"},
		{conn: "postgres://scramuser:Scr4m-pw@" + A + "/postgres?ssl=true", want: "ready"},
		// SASLprep: the same password in another normal form, and with a
		// plain space for the no-break one.
		{conn: "host=127.0.0.1 port=" + aPort + " user=prepuser dbname=postgres password='Ⅸﬁ\u00a0pw'", want: "ready"},
		{conn: "host=127.0.0.1 port=" + aPort + " user=prepuser dbname=postgres password='IXfi pw'", want: "ready"},
		{conn: "host=127.0.0.1 port=" + aPort + " user=prepuser dbname=postgres password='IXfipw'", want: "not ready"},
		// The keyword/value form.
		{conn: "host=127.0.0.1 port=" + aPort + " user=scramuser password=Scr4m-pw dbname=postgres", want: "ready"},
		{conn: "host = 127.0.0.1  port= " + aPort + "\tuser ='md5user' password = 'Md5-pw' dbname=postgres", want: "ready"},
		{conn: `host=127.0.0.1 port=` + aPort + ` user='q user' password='a b\'c\\d' dbname=postgres`, want: "ready"},
		{conn: `host=127.0.0.1 port=` + aPort + ` user='q user' password=a\ b\'c\\d dbname=postgres`, want: "ready"},
		{conn: "host=127.0.0.1 port=" + aPort + " user=scramuser password=Wr0ng-pw dbname=postgres", want: "not ready"},
		{conn: "host=127.0.0.1 port=" + aPort + " user=scramuser password=Scr4m-pw sslmod=require", want: "start-up error"},
		{conn: "host=127.0.0.1 port=" + aPort + " user='q user' password=a b'c\\d", want: "start-up error"},
		{conn: "host=127.0.0.1 port=" + aPort + " user=scramuser password='Scr4m-pw", want: "start-up error"},
		{conn: "host=" + a.sockDir + " port=" + aPort + " user=postgres dbname=postgres", want: "ready"},
		{conn: "host=localhost hostaddr=127.0.0.1 port=" + aPort + " user=scramuser password=Scr4m-pw dbname=postgres", want: "ready"},
		{conn: "host=127.0.0.1,127.0.0.1 port=" + aPort + ",1,2 user=scramuser", want: "start-up error"},
		// libpq's integers: a whole number, white space around it allowed.
		{conn: "host=127.0.0.1 port=" + aPort + " user=trustuser dbname=postgres keepalives=abc", want: "start-up error"},
		{conn: "host=127.0.0.1 port=" + aPort + " user=trustuser dbname=postgres keepalives_idle=", want: "start-up error"},
		{conn: "postgres://trustuser@" + A + "/postgres?keepalives_interval=1x", want: "start-up error"},
		{conn: "postgres://trustuser@" + A + "/postgres?keepalives_count=9999999999", want: "start-up error"},
		{conn: "postgres://trustuser@" + A + "/postgres?tcp_user_timeout=soon", want: "start-up error"},
		{conn: "postgres://trustuser@" + A + "/postgres?connect_timeout=", want: "start-up error"},
		{conn: "host=127.0.0.1 port=" + aPort + " user=trustuser dbname=postgres keepalives=' +1 ' keepalives_idle=30 tcp_user_timeout=0 connect_timeout=' 4'", want: "ready"},
		{conn: "host=" + a.sockDir + " port=" + aPort + " user=postgres dbname=postgres keepalives=abc", want: "ready"},
		// A keepalive the kernel refuses fails every TCP connection
		// (setsockopt: invalid argument), unless keepalives are off.
		{conn: "postgres://trustuser@" + A + "/postgres?keepalives_idle=0", want: "not ready"},
		{conn: "host=127.0.0.1 port=" + aPort + " user=trustuser dbname=postgres keepalives_count=-1", want: "not ready"},
		{conn: "postgres://trustuser@" + A + "/postgres?keepalives_interval=40000", want: "not ready"},
		{conn: "host=127.0.0.1 port=" + aPort + " user=trustuser dbname=postgres keepalives=0 keepalives_count=-1", want: "ready"},
		{conn: "host=" + a.sockDir + " port=" + aPort + " user=postgres dbname=postgres keepalives_idle=0", want: "ready"},
		// Several hosts, and the session libpq wants.
		{conn: "postgres://scramuser:Scr4m-pw@" + dead + "," + A + "/postgres", want: "ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + dead + "/postgres", want: "not ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + B + "," + A + "/postgres?target_session_attrs=read-write", want: "ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + B + "/postgres?target_session_attrs=read-write", want: "not ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + A + "/postgres?target_session_attrs=read-only", want: "not ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + A + "," + B + "/postgres?target_session_attrs=read-only", want: "ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + A + "/postgres?target_session_attrs=primary", want: "ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + A + "," + B + "/postgres?target_session_attrs=standby", want: "not ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + A + "/postgres?target_session_attrs=prefer-standby", want: "ready"},
		{conn: "host=127.0.0.1,127.0.0.1 port=" + bPort + "," + aPort + " user=scramuser password=Scr4m-pw dbname=postgres target_session_attrs=read-write", want: "ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + A + "/postgres?target_session_attrs=master", want: "start-up error"},
		// A real hot standby.
		{conn: "postgres://scramuser:Scr4m-pw@" + H + "/postgres", want: "ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + H + "," + A + "/postgres?target_session_attrs=primary", want: "ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + H + "/postgres?target_session_attrs=primary", want: "not ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + H + "/postgres?target_session_attrs=read-write", want: "not ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + H + "/postgres?target_session_attrs=read-only", want: "ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + A + "," + H + "/postgres?target_session_attrs=standby", want: "ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + A + "," + H + "/postgres?target_session_attrs=prefer-standby", want: "ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + B + "/postgres?target_session_attrs=standby", want: "not ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + B + "," + dead + "/postgres?target_session_attrs=prefer-standby", want: "ready"},
		// sslmode, certificates and channel binding.
		{conn: "postgres://tlsonly:Tls-pw@" + A + "/postgres", want: "ready"},
		{conn: "postgres://tlsonly:Tls-pw@" + A + "/postgres?sslmode=disable", want: "not ready"},
		{conn: "postgres://tlsonly:Tls-pw@" + A + "/postgres?sslmode=allow", want: "ready"},
		{conn: "postgres://tlsonly:Tls-pw@" + A + "/postgres?sslmode=require", want: "ready"},
		{conn: "postgres://tlsonly:Tls-pw@" + A + "/postgres?sslmode=require&sslrootcert=" + ca, want: "ready"},
		{conn: "postgres://tlsonly:Tls-pw@" + A + "/postgres?sslmode=require&sslrootcert=" + otherCA, want: "not ready"},
		{conn: "postgres://tlsonly:Tls-pw@127.0.0.2:" + aPort + "/postgres?sslmode=verify-ca&sslrootcert=" + ca, want: "ready"},
		{conn: "postgres://tlsonly:Tls-pw@127.0.0.2:" + aPort + "/postgres?sslmode=verify-full&sslrootcert=" + ca, want: "not ready"},
		{conn: "postgres://tlsonly:Tls-pw@" + A + "/postgres?sslmode=verify-full&sslrootcert=" + ca, want: "ready"},
		{conn: "postgres://tlsonly:Tls-pw@" + A + "/postgres?sslmode=verify-full", want: "start-up error"},
		{conn: "postgres://tlsonly:Tls-pw@" + A + "/postgres?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem", want: "start-up error"},
		{conn: "postgres://md5user:Md5-pw@" + B + "/postgres?sslmode=require", want: "not ready"},
		{conn: "postgres://md5user:Md5-pw@" + B + "/postgres?sslmode=prefer", want: "ready"},
		{conn: "host=127.0.0.1 port=" + aPort + " user=client dbname=postgres sslmode=require sslcert=" + clientCert + " sslkey=" + clientKey, want: "ready"},
		{conn: "host=127.0.0.1 port=" + aPort + " user=client dbname=postgres sslmode=require", want: "not ready"},
		{conn: "postgres://tlsonly:Tls-pw@" + A + "/postgres?channel_binding=require", want: "ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + A + "/postgres?channel_binding=require&sslmode=disable", want: "not ready"},
		{conn: "postgres://md5user:Md5-pw@" + A + "/postgres?channel_binding=require", want: "not ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + B + "/postgres?channel_binding=require", want: "not ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + A + "/postgres?channel_binding=disable", want: "ready"},
		// What the string leaves out: the environment and the password file.
		{conn: "postgres://" + A + "/postgres", env: []string{"PGUSER=scramuser", "PGPASSWORD=Scr4m-pw"}, want: "ready"},
		{conn: "dbname=postgres", env: []string{"PGHOST=127.0.0.1", "PGPORT=" + aPort, "PGUSER=scramuser", "PGPASSWORD=Scr4m-pw"}, want: "ready"},
		{conn: "host=127.0.0.1", env: []string{"PGPORT=" + aPort, "PGUSER=md5user", "PGPASSWORD=Md5-pw", "PGDATABASE=nosuchdb"}, want: "not ready"},
		{conn: "postgres://tlsonly:Tls-pw@" + A + "/postgres", env: []string{"PGSSLMODE=disable"}, want: "not ready"},
		{conn: "postgres://tlsonly:Tls-pw@" + A + "/postgres", env: []string{"PGSSLMODE=verify-ca", "PGSSLROOTCERT=" + otherCA}, want: "not ready"},
		{conn: "postgres://scramuser:Scr4m-pw@" + B + "/postgres", env: []string{"PGTARGETSESSIONATTRS=read-write"}, want: "not ready"},
		{conn: "postgres://tlsonly:Tls-pw@" + A + "/postgres", env: []string{"PGCHANNELBINDING=require", "PGAPPNAME=app"}, want: "ready"},
		{conn: "host=127.0.0.1 dbname=postgres user=client", env: []string{"PGPORT=" + aPort, "PGSSLCERT=" + clientCert, "PGSSLKEY=" + clientKey}, want: "ready"},
		{conn: "postgres://scramuser@" + A + "/postgres", env: []string{"PGPASSFILE=" + passfile}, want: "ready"},
		{conn: "postgres://md5user@" + A + "/postgres", env: []string{"PGPASSFILE=" + passfile}, want: "ready"},
		{conn: "postgres://scramuser@" + A + "/postgres?passfile=" + passfile, want: "ready"},
		{conn: "postgres://scramuser@" + B + "/postgres?passfile=" + passfile, want: "not ready"},
		{conn: "postgres://scramuser@" + A + "/postgres?passfile=" + openPassfile, want: "not ready"},
		{conn: "postgres://scramuser@" + A + "/postgres", want: "not ready"},
		{conn: "postgres://trustuser@" + A + "/postgres", want: "ready"},
		{conn: "host=127.0.0.1 port=" + aPort + " user=client dbname=postgres sslmode=require sslcert=" + clientCert + " sslkey=" + encryptedKey, want: "start-up error", newer: true},
		// Key words of libpq 16 and 17, as their documentation says.
		{conn: "postgres://scramuser:Scr4m-pw@" + A + "/postgres?require_auth=scram-sha-256", want: "ready", newer: true},
		{conn: "postgres://md5user:Md5-pw@" + A + "/postgres?require_auth=scram-sha-256", want: "not ready", newer: true},
		{conn: "postgres://md5user:Md5-pw@" + A + "/postgres?require_auth=!password,!scram-sha-256", want: "ready", newer: true},
		{conn: "postgres://md5user:Md5-pw@" + A + "/postgres?require_auth=!md5", want: "not ready", newer: true},
		{conn: "postgres://trustuser@" + A + "/postgres?require_auth=password", want: "not ready", newer: true},
		{conn: "postgres://trustuser@" + A + "/postgres?require_auth=none", want: "ready", newer: true},
		{conn: "postgres://scramuser:Scr4m-pw@" + dead + "," + A + "/postgres?load_balance_hosts=random", want: "ready", newer: true},
		{conn: "postgres://tlsonly:Tls-pw@" + A + "/postgres?sslrootcert=system", want: "not ready", newer: true},
		{conn: "postgres://tlsonly:Tls-pw@" + A + "/postgres?sslrootcert=system&sslmode=require", want: "start-up error", newer: true},
		// PostgreSQL 15 has no direct TLS.
		{conn: "postgres://tlsonly:Tls-pw@" + A + "/postgres?sslnegotiation=direct&sslmode=require", want: "not ready", newer: true},
		{conn: "postgres://tlsonly:Tls-pw@" + A + "/postgres?sslnegotiation=direct", want: "start-up error", newer: true},
		{conn: "postgres://tlsonly:Tls-pw@" + A + "/postgres?gssencmode=require", want: "start-up error", newer: true},
	} {
		got, o := ppVerdict(t, row.conn, row.env)
		libpq := row.want
		if !row.newer {
			libpq = psqlVerdict(t, row.conn, row.env, 5*time.Second)
		}
		if got != libpq || got != row.want {
			t.Errorf("%s %q: portpatrol %s, psql %s, want %s\n%s", row.env, row.conn, got, libpq, row.want, o.stderr)
		}
		for _, pw := range passwords {
			if strings.Contains(o.stdout+o.stderr, pw) {
				t.Errorf("%q: the output shows the password %q:\n%s", row.conn, pw, o.stderr)
			}
		}
	}
	pgIsreadyRows(t, A, B, ca, otherCA, openPassfile)
}

// pgIsreadyVerdict is pg_isready's verdict on a connection string (-d),
// with env and HOME=home only: exit 0 is ready, 1 (rejecting) and 2 (no
// response) not ready, 3 (no attempt: the string is refused) a start-up error.
func pgIsreadyVerdict(t *testing.T, conn string, env []string, home string) string {
	t.Helper()
	pgIsready := requireProgram(t, "pg_isready", "/usr/lib/postgresql/*/bin/pg_isready")
	cmd := exec.Command(pgIsready, "-t", "5", "-d", conn)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}, env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if e, ok := err.(*exec.ExitError); ok {
		code = e.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("pg_isready %q: %s", conn, strings.TrimSpace(string(out)))
	return map[int]string{0: "ready", 1: "not ready", 2: "not ready", 3: "start-up error"}[code]
}

// pgIsreadyRows are the differential rows without a password (issue 27's
// follow-up): portpatrol's verdict is pg_isready's, TLS negotiated as
// sslmode says before the start-up message. A has TLS (a certificate for
// 127.0.0.1 from ca), B none; home holds ~/.postgresql/root.crt when set.
func pgIsreadyRows(t *testing.T, A, B, ca, otherCA, openPassfile string) {
	homeWith := func(rootCert string) string {
		home := t.TempDir()
		if rootCert != "" {
			os.Mkdir(filepath.Join(home, ".postgresql"), 0o700)
			copyFile(t, rootCert, filepath.Join(home, ".postgresql", "root.crt"), 0o644)
		}
		return home
	}
	_, aPort, _ := strings.Cut(A, ":")
	for _, row := range []struct {
		conn     string
		rootCert string // ~/.postgresql/root.crt
		want     string
	}{
		{conn: "postgresql://app@" + B + "/shop?sslmode=require", want: "not ready"},
		{conn: "postgresql://app@" + B + "/shop?sslmode=verify-ca&sslrootcert=" + ca, want: "not ready"},
		{conn: "postgresql://app@" + B + "/shop?sslmode=prefer", want: "ready"},
		{conn: "postgresql://app@" + B + "/shop?sslmode=allow", want: "ready"},
		{conn: "postgresql://app@" + B + "/shop?sslmode=disable", want: "ready"},
		{conn: "host=127.0.0.1 port=" + aPort + " user=app dbname=shop sslmode=require", want: "ready"},
		{conn: "postgresql://app@" + A + "/shop?sslmode=require&sslrootcert=" + otherCA, want: "not ready"},
		{conn: "postgresql://app@" + A + "/shop?sslmode=verify-ca&sslrootcert=" + otherCA, want: "not ready"},
		{conn: "postgresql://app@" + A + "/shop?sslmode=verify-ca&sslrootcert=" + ca, want: "ready"},
		{conn: "postgresql://app@" + A + "/shop?sslmode=verify-full&sslrootcert=" + ca, want: "ready"},
		{conn: "postgresql://app@127.0.0.2:" + aPort + "/shop?sslmode=verify-full&sslrootcert=" + ca, want: "not ready"},
		{conn: "postgresql://app@" + A + "/shop?sslmode=require", rootCert: otherCA, want: "not ready"},
		{conn: "postgresql://app@" + A + "/shop?sslmode=verify-ca", rootCert: otherCA, want: "not ready"},
		{conn: "postgresql://app@" + A + "/shop?sslmode=verify-ca", rootCert: ca, want: "ready"},
		{conn: "postgresql://app@" + A + "/shop", rootCert: otherCA, want: "ready"}, // prefer: then without TLS
		{conn: "postgresql://app@" + A + "/shop?sslmode=allow", rootCert: otherCA, want: "ready"},
		{conn: "postgresql://tlsonly@" + A + "/postgres?sslmode=disable", want: "ready"}, // refused: up
		// A password file that libpq ignores gives no password: pg_isready's verdict.
		{conn: "postgres://scramuser@" + A + "/postgres?passfile=" + openPassfile, want: "ready"},
	} {
		home := homeWith(row.rootCert)
		libpq := pgIsreadyVerdict(t, row.conn, nil, home)
		cmd := exec.Command(ppBinary, "--postgres.db.address="+row.conn, "--default-max-attempts=1", "--timeout=5s", "--log-level=debug")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
		o := runCommand(t, cmd)
		got := map[int]string{0: "ready", 1: "not ready", 2: "start-up error"}[o.code]
		if got != libpq || got != row.want {
			t.Errorf("%q (root.crt %s): portpatrol %s, pg_isready %s, want %s\n%s", row.conn, row.rootCert, got, libpq, row.want, o.stderr)
		}
		if strings.Contains(row.conn, "pgpass-open") && !strings.Contains(o.stderr, "has group or world access, so libpq ignores it") {
			t.Errorf("%q: the debug note does not say the password file is ignored:\n%s", row.conn, o.stderr)
		}
	}
}

// A refusal is no sign that a server is gone (issue 29): an inverted
// target whose password, role or certificate is refused keeps waiting.
func TestPostgresRefusalIsNotGone(t *testing.T) {
	t.Parallel()
	a, _ := newPGServers(t)
	dir := filepath.Dir(a.data)
	pki := newTestPKI(t)
	cert, key, _ := writeServerPEM(t, pki, dir)
	otherCA := filepath.Join(dir, "other-ca.pem")
	writeOtherCA(t, otherCA)
	a.start(t, "ssl=on", "ssl_cert_file="+cert, "ssl_key_file="+key)
	a.sql(t, "CREATE ROLE pwuser LOGIN PASSWORD 'R1ght-pw'")
	for _, conn := range []string{
		"postgres://pwuser:Wr0ng-pw@" + a.addr() + "/postgres",
		"postgres://nosuchrole:Wr0ng-pw@" + a.addr() + "/postgres",
		"postgres://pwuser:R1ght-pw@" + a.addr() + "/postgres?sslmode=verify-ca&sslrootcert=" + otherCA,
		"postgres://pwuser:R1ght-pw@" + a.addr() + "/postgres?channel_binding=require&sslmode=disable",
		// Without a password, TLS is negotiated as sslmode says too.
		"postgres://pwuser@" + a.addr() + "/postgres?sslmode=verify-ca&sslrootcert=" + otherCA,
		"postgres://pwuser@" + a.addr() + "/postgres?sslmode=require&sslrootcert=" + otherCA,
	} {
		o := runPortpatrol(t, nil, "--postgres.db.address="+conn, "--postgres.db.invert=true", "--default-interval=200ms", "--timeout=1500ms")
		if o.code != 1 {
			t.Errorf("%s: exit %d, want 1:\n%s", redactURL(conn), o.code, o.stderr)
		}
		if strings.Contains(o.stderr, "Wr0ng-pw") || strings.Contains(o.stderr, "R1ght-pw") {
			t.Errorf("the password is shown:\n%s", o.stderr)
		}
	}
	// A server that is gone is gone, also with a password.
	dead := "127.0.0.1:" + strconv.Itoa(freePort(t))
	runPortpatrol(t, nil, "--postgres.db.address=postgres://pwuser:R1ght-pw@"+dead+"/postgres", "--postgres.db.invert=true", "--timeout=5s").mustExit(t, 0)
	// And one that is there with the right password is still there.
	o := runPortpatrol(t, nil, "--postgres.db.address=postgres://pwuser:R1ght-pw@"+a.addr()+"/postgres", "--postgres.db.invert=true", "--timeout=1s")
	o.mustExit(t, 1)
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// writeOtherCA writes a CA that signed nothing the servers hold.
func writeOtherCA(t *testing.T, path string) {
	t.Helper()
	other := newTestPKI(t)
	b, err := os.ReadFile(other.caFile)
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(b); block == nil {
		t.Fatal("no PEM in the other CA")
	} else if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The query property (issue 31): one statement, read-only, after a login;
// ready when its first row's first value is true.
func TestPostgresQuery(t *testing.T) {
	t.Parallel()
	a, _ := newPGServers(t)
	a.start(t)
	a.sql(t, "CREATE ROLE pwuser LOGIN PASSWORD 'Qu3ry-pw'")
	a.sql(t, "CREATE DATABASE app OWNER pwuser")
	url := "postgres://pwuser:Qu3ry-pw@" + a.addr() + "/app"
	check := func(query string, args ...string) outcome {
		t.Helper()
		return runPortpatrol(t, nil, append([]string{"--postgres.db.address=" + url, "--postgres.db.query=" + query,
			"--default-max-attempts=1", "--timeout=10s"}, args...)...)
	}
	appSQL := func(sql string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(a.bin, "psql"), "-X", "-qAt", "-v", "ON_ERROR_STOP=1", url, "-c", sql)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", sql, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	migrated := "SELECT count(*) > 0 FROM schema_migrations WHERE version >= 2"
	for _, tc := range []struct {
		query, reason string
	}{
		{migrated, `error="the query failed: 42P01: relation \"schema_migrations\" does not exist"`},
		{"SELECT 1; SELECT 2", `error="the query failed: 42601: cannot insert multiple commands into a prepared statement"`},
		{"SELEC 1", `error="the query failed: 42601: syntax error at or near \"SELEC\""`},
	} {
		o := check(tc.query)
		if o.code != 1 || !strings.Contains(o.stderr, tc.reason) || strings.Contains(o.stderr, "Qu3ry-pw") {
			t.Errorf("%q: exit %d, want 1 with %s:\n%s", tc.query, o.code, tc.reason, o.stderr)
		}
	}
	appSQL("CREATE TABLE schema_migrations (version int)")
	for _, tc := range []struct {
		query, reason string
	}{
		{"SELECT true FROM schema_migrations", `error="the query returned no rows"`},
		{migrated, `error="the first value is false (\"f\")"`},
		{"SELECT count(*) FROM schema_migrations", `error="the first value is false (\"0\")"`},
		{"SELECT NULL::bool", `error="the first value is false (NULL)"`},
		{"SELECT ''", `error="the first value is false (\"\")"`},
		// A write is refused by the server and changes nothing.
		{"INSERT INTO schema_migrations VALUES (7) RETURNING true", `error="the query failed: 25006: cannot execute INSERT in a read-only transaction"`},
		{"WITH x AS (DELETE FROM schema_migrations RETURNING 1) SELECT true", `error="the query failed: 25006: cannot execute SELECT in a read-only transaction"`},
	} {
		o := check(tc.query)
		if o.code != 1 || !strings.Contains(o.stderr, tc.reason) {
			t.Errorf("%q: exit %d, want 1 with %s:\n%s", tc.query, o.code, tc.reason, o.stderr)
		}
	}
	if n := appSQL("SELECT count(*) FROM schema_migrations"); n != "0" {
		t.Errorf("the table has %s rows after the refused write, want 0", n)
	}
	// Until the migration's row arrives: ready within an interval of it.
	sqlFile := filepath.Join(t.TempDir(), "migrated.sql")
	if err := os.WriteFile(sqlFile, []byte(migrated+";\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ppBinary, "--postgres.db.address="+url, "--postgres.db.query=file:"+sqlFile, "--default-interval=200ms", "--timeout=60s")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	waitFor(t, &stderr, `the first value is false`)
	appSQL("INSERT INTO schema_migrations VALUES (1), (2)")
	inserted := time.Now()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("portpatrol: %v\n%s", err, stderr.String())
	}
	if d := time.Since(inserted); d > 2*time.Second {
		t.Errorf("ready %v after the row arrived", d)
	}
	// A trust login with no password, and a query that reads the catalog.
	a.sql(t, "CREATE ROLE trustuser LOGIN")
	runPortpatrol(t, nil, "--postgres.db.address=postgres://trustuser@"+a.addr()+"/app",
		"--postgres.db.query=SELECT to_regclass('public.schema_migrations') IS NOT NULL", "--default-max-attempts=1", "--timeout=10s").mustExit(t, 0)
	// Start-up errors.
	o := runPortpatrol(t, nil, "--postgres.db.address="+url, "--postgres.db.query=file:/nonexistent.sql")
	o.mustExit(t, 2)
	o = runPortpatrol(t, nil, "--postgres.db.address="+url, "--postgres.db.query= ")
	o.mustExit(t, 2)
	if !strings.Contains(o.stderr, "--postgres.db.query: want one SQL statement") {
		t.Errorf("stderr:\n%s", o.stderr)
	}
}

// Without a password, the check asks for TLS as pg_isready does; a server
// that then asks for a password sees the client leave with close_notify,
// and logs nothing about it, as without TLS.
func TestPostgresPasswordAskedOverTLSEndsPolitely(t *testing.T) {
	t.Parallel()
	a, _ := newPGServers(t)
	pki := newTestPKI(t)
	cert, key, _ := writeServerPEM(t, pki, filepath.Dir(a.data))
	a.start(t, "ssl=on", "ssl_cert_file="+cert, "ssl_key_file="+key)
	a.sql(t, "CREATE ROLE pwuser LOGIN PASSWORD 'R1ght-pw'")
	runPortpatrol(t, nil, "--postgres.db.address=postgres://pwuser@"+a.addr()+"/postgres", "--timeout=5s").mustExit(t, 0)
	runPortpatrol(t, nil, "--postgres.db.address=postgres://pwuser:R1ght-pw@"+a.addr()+"/postgres", "--timeout=5s").mustExit(t, 0)
	log := a.logText(t)
	if !strings.Contains(log, "connection authorized: user=pwuser database=postgres application_name=portpatrol SSL enabled") {
		t.Errorf("no login over TLS in the server log:\n%s", log)
	}
	for _, bad := range []string{"could not receive data", "reset by peer", "unexpected EOF", "SSL error", "R1ght-pw"} {
		if strings.Contains(log, bad) {
			t.Errorf("server log has %q:\n%s", bad, log)
		}
	}
}
