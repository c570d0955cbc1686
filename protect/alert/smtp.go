package alert

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"os"
	"strconv"
	"strings"
	"time"
)

// SendMail sends m by SMTP: STARTTLS (required unless smtp_tls = none) or
// implicit TLS, AUTH PLAIN when a user is set. The whole exchange must end
// within the timeout.
func SendMail(c *Config, m *Message) error {
	mode := c.SMTPTLS
	if mode == "" {
		mode = "starttls"
	}
	port := c.SMTPPort
	if port == 0 {
		port = 587
		if mode == "tls" {
			port = 465
		}
	}
	addr := net.JoinHostPort(c.SMTPHost, strconv.Itoa(port))
	tc, err := tlsConfig(c)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(c.timeout())
	d := &net.Dialer{Deadline: deadline}
	var conn net.Conn
	if mode == "tls" {
		conn, err = tls.DialWithDialer(d, "tcp", addr, tc)
	} else {
		conn, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	cl, err := smtp.NewClient(conn, c.SMTPHost)
	if err != nil {
		return fmt.Errorf("%s: %w", addr, timeoutNote(err))
	}
	defer cl.Close()
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	if err := cl.Hello(host); err != nil {
		return fmt.Errorf("%s: %w", addr, timeoutNote(err))
	}
	if mode == "starttls" {
		if ok, _ := cl.Extension("STARTTLS"); !ok {
			return fmt.Errorf("%s does not offer STARTTLS (set smtp_tls = none to send in clear)", addr)
		}
		if err := cl.StartTLS(tc); err != nil {
			return fmt.Errorf("%s: STARTTLS: %w", addr, timeoutNote(err))
		}
	}
	if c.SMTPUser != "" {
		if err := cl.Auth(smtp.PlainAuth("", c.SMTPUser, c.SMTPPassword, c.SMTPHost)); err != nil {
			return fmt.Errorf("%s: AUTH PLAIN: %w", addr, timeoutNote(err))
		}
	}
	from := c.SMTPFrom
	if from == "" {
		from = "vzsalvage@" + host
	}
	if err := cl.Mail(from); err != nil {
		return fmt.Errorf("%s: MAIL FROM: %w", addr, timeoutNote(err))
	}
	for _, to := range c.SMTPTo {
		if err := cl.Rcpt(to); err != nil {
			return fmt.Errorf("%s: RCPT TO %s: %w", addr, to, timeoutNote(err))
		}
	}
	w, err := cl.Data()
	if err != nil {
		return fmt.Errorf("%s: DATA: %w", addr, timeoutNote(err))
	}
	if _, err := w.Write(mailBytes(from, c.SMTPTo, m)); err != nil {
		return fmt.Errorf("%s: %w", addr, timeoutNote(err))
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("%s: %w", addr, timeoutNote(err))
	}
	return cl.Quit()
}

// mailBytes is the message with its headers, CRLF line ends.
func mailBytes(from string, to []string, m *Message) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\n", oneLine(from))
	fmt.Fprintf(&b, "To: %s\r\n", oneLine(strings.Join(to, ", ")))
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", m.Subject()))
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n")
	fmt.Fprintf(&b, "X-Vzsalvage-Status: %s\r\n\r\n", oneLine(m.Status))
	// Text has no CR and no other control but LF and tab; net/smtp's DATA
	// writer does the dot-stuffing
	for _, line := range strings.Split(m.Text(), "\n") {
		b.WriteString(line + "\r\n")
	}
	return []byte(b.String())
}

func tlsConfig(c *Config) (*tls.Config, error) {
	tc := &tls.Config{ServerName: c.SMTPHost, MinVersion: tls.VersionTLS12}
	if c.SMTPCAFile != "" {
		pem, err := os.ReadFile(c.SMTPCAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", c.SMTPCAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// timeoutNote says "no answer within the timeout" for deadline errors.
func timeoutNote(err error) error {
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return fmt.Errorf("no answer within the timeout (%v)", err)
	}
	return err
}
