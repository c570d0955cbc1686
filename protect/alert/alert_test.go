package alert

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// mailbox is a real SMTP server (go-smtp) on the loopback: STARTTLS with a
// certificate made for the test, AUTH PLAIN required, mail kept.
type mailbox struct {
	mu     sync.Mutex
	mails  []mail
	addr   string
	caFile string
}

type mail struct {
	from string
	to   []string
	data string
	user string
}

type session struct {
	box  *mailbox
	cur  mail
	user string
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != "backup" || pass != "s3cret" {
			return errors.New("bad credentials")
		}
		s.user = user
		return nil
	}), nil
}
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.cur = mail{from: from, user: s.user}
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.to = append(s.cur.to, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = string(b)
	s.box.mu.Lock()
	s.box.mails = append(s.box.mails, s.cur)
	s.box.mu.Unlock()
	return nil
}
func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

func startMailbox(t *testing.T) *mailbox {
	t.Helper()
	cert, caPEM := selfSigned(t)
	box := &mailbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{box: box}, nil }))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	box.addr = l.Addr().String()
	box.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(box.caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return box
}

// selfSigned makes a certificate for 127.0.0.1.
func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func (b *mailbox) config(t *testing.T) *Config {
	host, port, _ := net.SplitHostPort(b.addr)
	path := filepath.Join(t.TempDir(), "alerts.conf")
	conf := "# test\nsmtp_host = " + host + "\nsmtp_port = " + port + "\nsmtp_user = backup\nsmtp_password = s3cret\n" +
		"smtp_from = pve1@example.org\nsmtp_to = admin@example.org, ops@example.org\nsmtp_ca_file = " + b.caFile + "\ntimeout = 5s\n"
	os.WriteFile(path, []byte(conf), 0o600)
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var testMessage = Message{Status: "damaged", Event: "vzdump-hook", Host: "pve1",
	Archive: "/var/lib/vz/dump/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst", Guest: "qemu 100", VMID: 100,
	What: "the new backup is damaged: checksum mismatch at offset 123", Next: "vzsalvage rescue /var/lib/vz/dump/vzdump-qemu-100-2025_12_15-03_00_03.vma.zst -o DIR"}

func TestMailArrives(t *testing.T) {
	box := startMailbox(t)
	if err := Send(box.config(t), testMessage); err != nil {
		t.Fatal(err)
	}
	box.mu.Lock()
	defer box.mu.Unlock()
	if len(box.mails) != 1 {
		t.Fatalf("%d mails", len(box.mails))
	}
	m := box.mails[0]
	if m.from != "pve1@example.org" || strings.Join(m.to, ",") != "admin@example.org,ops@example.org" || m.user != "backup" {
		t.Fatalf("envelope %+v", m)
	}
	for _, want := range []string{"Subject: vzsalvage vzdump-hook on pve1: damaged (qemu 100)", testMessage.Archive, "guest:   qemu 100",
		"checksum mismatch at offset 123", "next:    vzsalvage rescue "} {
		if !strings.Contains(m.data, want) {
			t.Errorf("mail lacks %q:\n%s", want, m.data)
		}
	}
}

func TestSuccessOnlyWhenAsked(t *testing.T) {
	box := startMailbox(t)
	c := box.config(t)
	ok := testMessage
	ok.Status = "ok"
	if err := Send(c, ok); err != nil {
		t.Fatal(err)
	}
	c.OnSuccess = true
	if err := Send(c, ok); err != nil {
		t.Fatal(err)
	}
	if len(box.mails) != 1 {
		t.Fatalf("%d mails, want 1 (on_success set the second time)", len(box.mails))
	}
}

func TestWebhookArrives(t *testing.T) {
	var got Message
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(400)
			return
		}
		json.NewDecoder(r.Body).Decode(&got)
	}))
	defer srv.Close()
	if err := Send(&Config{WebhookURL: srv.URL + "/hook?token=x"}, testMessage); err != nil {
		t.Fatal(err)
	}
	if got.Archive != testMessage.Archive || got.VMID != 100 || got.Next != testMessage.Next || got.Status != "damaged" || got.Time == "" {
		t.Fatalf("webhook got %+v", got)
	}
}

// TestServersThatFail: refused connections, servers that never answer and
// error statuses give a clear error within the timeout.
func TestServersThatFail(t *testing.T) {
	// a port nothing listens on
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := l.Addr().String()
	l.Close()
	// a server that accepts and says nothing
	mute, _ := net.Listen("tcp", "127.0.0.1:0")
	defer mute.Close()
	go func() {
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // then a closed connection cancels the context
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer slow.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer failing.Close()
	mailTo := func(addr string) *Config {
		h, p, _ := net.SplitHostPort(addr)
		c := &Config{SMTPTo: []string{"a@example.org"}, Timeout: time.Second}
		c.Set("smtp_host", h)
		c.Set("smtp_port", p)
		return c
	}
	for _, tc := range []struct {
		name string
		c    *Config
		want string
	}{
		{"smtp refused", mailTo(refused), "refused"},
		{"smtp mute", mailTo(mute.Addr().String()), "timeout"},
		{"webhook refused", &Config{WebhookURL: "http://" + refused + "/", Timeout: time.Second}, "refused"},
		{"webhook mute", &Config{WebhookURL: slow.URL, Timeout: time.Second}, "no answer within 1s"},
		{"webhook 503", &Config{WebhookURL: failing.URL, Timeout: time.Second}, "503"},
	} {
		start := time.Now()
		err := Send(tc.c, testMessage)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: took %v", tc.name, d)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, bad := range []string{"smtp_tls = maybe\n", "nokey\n", "colour = blue\n", "smtp_port = 0\n", "timeout = soon\n"} {
		p := filepath.Join(t.TempDir(), "a.conf")
		os.WriteFile(p, []byte(bad), 0o600)
		if _, err := LoadConfig(p); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestMailOfHostileStrings: guest names, archive names and problem texts
// with CR, LF, NUL, escapes and non-ASCII letters cannot add a header,
// end the DATA early (SMTP smuggling with a bare CR) or put raw controls
// into the mail; the subject is RFC 2047 encoded and reads back as sent.
func TestMailOfHostileStrings(t *testing.T) {
	m := &Message{Status: "damaged", Event: "vzdump-hook", Host: "pve1\r\nBcc: evil@example.org",
		Guest: "qemu 100 (wéb\r\nBcc: evil@example.org\x00\x1b[31m)", VMID: 100,
		Archive: "/dump/a\r.\rb\n.\nMAIL FROM:<evil@example.org>", What: "damaged\r\n.\r\nRSET", Details: "x\ry\x07"}
	b := mailBytes("pve1@example.org", []string{"admin@example.org"}, m)
	for i, c := range b {
		if c == '\r' && (i+1 == len(b) || b[i+1] != '\n') || c == '\n' && (i == 0 || b[i-1] != '\r') {
			t.Fatalf("a bare CR or LF at %d: %q", i, b)
		}
		if c < 0x20 && c != '\r' && c != '\n' && c != '\t' || c == 0x7f {
			t.Fatalf("a raw control %#x at %d: %q", c, i, b)
		}
	}
	msg, err := netmail.ReadMessage(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range msg.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"Content-Transfer-Encoding", "Content-Type", "Date", "From", "Mime-Version", "Subject", "To", "X-Vzsalvage-Status"}; !slices.Equal(keys, want) {
		t.Fatalf("headers %q, want %q", keys, want)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || !strings.Contains(subj, "wéb") || strings.ContainsAny(subj, "\r\n\x00\x1b") {
		t.Fatalf("subject %q (%v)", subj, err)
	}
	body, _ := io.ReadAll(msg.Body)
	if !bytes.Contains(body, []byte("wéb")) || !bytes.Contains(body, []byte(`evil@example.org\x00\x1b[31m`)) {
		t.Fatalf("body %q", body)
	}
}
