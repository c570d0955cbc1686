// Package alert tells people when a backup is damaged: by mail over SMTP
// (STARTTLS or TLS, AUTH PLAIN) and by a JSON webhook, configured by a
// small key = value file (/etc/vzsalvage/alerts.conf) and flags. Every
// network exchange has a deadline: a server that refuses or does not
// answer gives an error, never a hang.
package alert

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vzsalvage/vzsalvage/internal/ui"
)

// DefaultConfigPath is where the alert configuration is read from unless
// told otherwise.
const DefaultConfigPath = "/etc/vzsalvage/alerts.conf"

// Config says where alerts go.
type Config struct {
	// SMTP: mail is sent when SMTPHost and SMTPTo are set.
	SMTPHost     string
	SMTPPort     int      // default 587 (465 for TLS)
	SMTPTLS      string   // "starttls" (default), "tls" or "none"
	SMTPUser     string   // AUTH PLAIN when set
	SMTPPassword string   //
	SMTPFrom     string   // default vzsalvage@<hostname>
	SMTPTo       []string //
	SMTPCAFile   string   // PEM file of the CA to trust instead of the system's
	// WebhookURL receives a JSON POST of the Message.
	WebhookURL string
	// OnSuccess sends alerts for successes too.
	OnSuccess bool
	// Timeout bounds each delivery (default 30 s).
	Timeout time.Duration
}

// Enabled reports whether any channel is configured.
func (c *Config) Enabled() bool {
	return c != nil && (c.WebhookURL != "" || (c.SMTPHost != "" && len(c.SMTPTo) > 0))
}

// LoadConfig reads a configuration file: one "key = value" a line, "#"
// starts a comment. Keys: smtp_host, smtp_port, smtp_tls, smtp_user,
// smtp_password, smtp_from, smtp_to (comma-separated), smtp_ca_file,
// webhook_url, on_success (true/false), timeout (e.g. 30s).
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := &Config{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want key = value", path, n)
		}
		if err := c.Set(strings.TrimSpace(k), strings.TrimSpace(v)); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// Set sets one key of the configuration (the file's keys).
func (c *Config) Set(k, v string) error {
	var err error
	switch k {
	case "smtp_host":
		c.SMTPHost = v
	case "smtp_port":
		c.SMTPPort, err = strconv.Atoi(v)
		if err == nil && (c.SMTPPort < 1 || c.SMTPPort > 65535) {
			err = fmt.Errorf("smtp_port %d", c.SMTPPort)
		}
	case "smtp_tls":
		if v != "starttls" && v != "tls" && v != "none" {
			return fmt.Errorf("smtp_tls must be starttls, tls or none, not %q", v)
		}
		c.SMTPTLS = v
	case "smtp_user":
		c.SMTPUser = v
	case "smtp_password":
		c.SMTPPassword = v
	case "smtp_from":
		c.SMTPFrom = v
	case "smtp_to":
		c.SMTPTo = nil
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				c.SMTPTo = append(c.SMTPTo, a)
			}
		}
	case "smtp_ca_file":
		c.SMTPCAFile = v
	case "webhook_url":
		c.WebhookURL = v
	case "on_success":
		c.OnSuccess, err = strconv.ParseBool(v)
	case "timeout":
		c.Timeout, err = time.ParseDuration(v)
	default:
		return fmt.Errorf("unknown key %q", k)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", k, err)
	}
	return nil
}

func (c *Config) timeout() time.Duration {
	if c.Timeout <= 0 {
		return 30 * time.Second
	}
	return c.Timeout
}

// Message is one alert: what happened to which backup, and what to do.
type Message struct {
	// Status is "damaged", "failed" or "ok".
	Status string `json:"status"`
	// Event names what ran: "protect", "scrub", "vzdump-hook".
	Event    string `json:"event"`
	Host     string `json:"host"`
	Archive  string `json:"archive,omitempty"`
	Guest    string `json:"guest,omitempty"` // "qemu 100"
	VMID     int    `json:"vmid,omitempty"`
	What     string `json:"what"`               // what failed (or was done)
	Next     string `json:"next,omitempty"`     // the next command to run
	Details  string `json:"details,omitempty"`  // more lines
	Time     string `json:"time"`               // RFC 3339
	Severity string `json:"severity,omitempty"` // "error" or "info"
}

// Subject is the one-line summary (the mail's subject), with every
// control character shown as an escape (ui.Safe): a guest's or a file's
// name cannot break it into more lines.
func (m *Message) Subject() string {
	s := fmt.Sprintf("vzsalvage %s on %s: %s", m.Event, m.Host, m.Status)
	if m.Guest != "" {
		s += " (" + m.Guest + ")"
	}
	return ui.Safe(s)
}

// Text is the body of the mail: lines ended by \n, every other control
// character shown as an escape (ui.SafeText).
func (m *Message) Text() string {
	return ui.SafeText(m.text())
}

func (m *Message) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", m.What)
	if m.Archive != "" {
		fmt.Fprintf(&b, "archive: %s\n", m.Archive)
	}
	if m.Guest != "" {
		fmt.Fprintf(&b, "guest:   %s\n", m.Guest)
	}
	fmt.Fprintf(&b, "host:    %s\ntime:    %s\n", m.Host, m.Time)
	if m.Next != "" {
		fmt.Fprintf(&b, "\nnext:    %s\n", m.Next)
	}
	if m.Details != "" {
		fmt.Fprintf(&b, "\n%s\n", m.Details)
	}
	return b.String()
}

// Complete fills Host, Time and Severity when empty.
func (m *Message) Complete() {
	if m.Host == "" {
		m.Host, _ = os.Hostname()
	}
	if m.Time == "" {
		m.Time = time.Now().UTC().Format(time.RFC3339)
	}
	if m.Severity == "" {
		m.Severity = "error"
		if m.Status == "ok" {
			m.Severity = "info"
		}
	}
}

// Send delivers m to every configured channel (successes only when
// OnSuccess is set). It returns the errors of the channels that failed.
func Send(c *Config, m Message) error {
	if !c.Enabled() || (m.Status == "ok" && !c.OnSuccess) {
		return nil
	}
	m.Complete()
	var errs []error
	if c.SMTPHost != "" && len(c.SMTPTo) > 0 {
		if err := SendMail(c, &m); err != nil {
			errs = append(errs, fmt.Errorf("mail: %w", err))
		}
	}
	if c.WebhookURL != "" {
		if err := PostWebhook(c, &m); err != nil {
			errs = append(errs, fmt.Errorf("webhook: %w", err))
		}
	}
	return errors.Join(errs...)
}

// oneLine keeps a header value on one line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}
