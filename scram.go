package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// SCRAM-SHA-256 (RFC 5802 with RFC 7677's hash), the client side without
// channel binding, as PostgreSQL speaks it and MongoDB would. The user name
// goes empty: PostgreSQL takes the role from the start-up message.

// scramMaxIterations bounds the work a server can ask for: PostgreSQL's
// default is 4096; a million takes about a second.
const scramMaxIterations = 1 << 20

type scram struct {
	gs2         string // the gs2 header: "n,," (no channel binding) unless set
	binding     []byte // the channel binding data, for gs2 "p=..."
	password    string
	clientNonce string
	clientFirst string // client-first-message-bare
	serverKey   []byte // set by final, for verify
	authMessage string
}

func newSCRAM(password string) *scram {
	nonce := make([]byte, 18)
	rand.Read(nonce)
	s := &scram{password: password, clientNonce: base64.RawStdEncoding.EncodeToString(nonce)}
	s.clientFirst = "n=,r=" + s.clientNonce
	return s
}

// first is the client-first-message: the gs2 header "n,," says the client
// does not do channel binding.
func (s *scram) first() string { return s.header() + s.clientFirst }

func (s *scram) header() string {
	if s.gs2 == "" {
		return "n,,"
	}
	return s.gs2
}

// final reads the server-first-message (r=nonce,s=salt,i=iterations) and
// returns the client-final-message with the proof of the password.
func (s *scram) final(serverFirst string) (string, error) {
	nonce, salt, iterations, err := s.parseServerFirst(serverFirst)
	if err != nil {
		return "", err
	}
	salted := scramSaltedPassword(s.password, salt, iterations)
	clientKey := scramHMAC(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	// c= is the gs2 header and the channel binding data (biws for "n,,").
	withoutProof := "c=" + base64.StdEncoding.EncodeToString(append([]byte(s.header()), s.binding...)) + ",r=" + nonce
	s.authMessage = s.clientFirst + "," + serverFirst + "," + withoutProof
	proof := scramHMAC(storedKey[:], s.authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	s.serverKey = scramHMAC(salted, "Server Key")
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

// parseServerFirst reads r=nonce,s=salt,i=iterations: the nonce must
// extend ours, and the iterations are bounded.
func (s *scram) parseServerFirst(serverFirst string) (nonce string, salt []byte, iterations int, err error) {
	var salt64, iter string
	for _, attr := range strings.Split(serverFirst, ",") {
		switch {
		case strings.HasPrefix(attr, "r="):
			nonce = attr[2:]
		case strings.HasPrefix(attr, "s="):
			salt64 = attr[2:]
		case strings.HasPrefix(attr, "i="):
			iter = attr[2:]
		case strings.HasPrefix(attr, "m="):
			return "", nil, 0, errors.New("SCRAM: the server requires an extension portpatrol does not know")
		}
	}
	salt, serr := base64.StdEncoding.DecodeString(salt64)
	iterations, ierr := strconv.Atoi(iter)
	switch {
	case !strings.HasPrefix(nonce, s.clientNonce) || len(nonce) == len(s.clientNonce):
		return "", nil, 0, errors.New("SCRAM: the server's nonce does not extend ours")
	case serr != nil || len(salt) == 0:
		return "", nil, 0, errors.New("SCRAM: the server sent no valid salt")
	case ierr != nil || iterations < 1 || iterations > scramMaxIterations:
		return "", nil, 0, errorf("SCRAM: the iteration count must be a number from 1 to %d", scramMaxIterations)
	}
	return nonce, salt, iterations, nil
}

// verify checks the server-final-message: the server proves that it knows
// the password too, or says why it refused (e=...).
func (s *scram) verify(serverFinal string) error {
	if e, ok := strings.CutPrefix(serverFinal, "e="); ok {
		return errorf("SCRAM: the server refused: %s", serverText(e, 100))
	}
	v, ok := strings.CutPrefix(serverFinal, "v=")
	if !ok || s.serverKey == nil {
		return errors.New("SCRAM: the server's final message has no signature")
	}
	got, err := base64.StdEncoding.DecodeString(v)
	if err != nil || !hmac.Equal(got, scramHMAC(s.serverKey, s.authMessage)) {
		return errors.New("SCRAM: the server's signature does not match: it does not know the password")
	}
	return nil
}

// scramSaltedPassword is Hi() of RFC 5802, PBKDF2 with HMAC-SHA-256 for one
// block of output: U1 = HMAC(password, salt + INT(1)), Ui = HMAC(password,
// Ui-1), all XORed. Written out because crypto/pbkdf2 costs 4 KB of binary
// for what these lines do.
func scramSaltedPassword(password string, salt []byte, iterations int) []byte {
	mac := hmac.New(sha256.New, []byte(password))
	mac.Write(salt)
	mac.Write([]byte{0, 0, 0, 1})
	u := mac.Sum(nil)
	out := bytes.Clone(u)
	for range iterations - 1 {
		mac.Reset()
		mac.Write(u)
		u = mac.Sum(u[:0])
		for i := range out {
			out[i] ^= u[i]
		}
	}
	return out
}

func scramHMAC(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}
