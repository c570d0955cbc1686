package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// PostWebhook POSTs m as JSON to the webhook URL; any status but 2xx is an
// error.
func PostWebhook(c *Config, m *Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vzsalvage")
	where := redact(c.WebhookURL)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: no answer within %v", where, c.timeout())
		}
		return fmt.Errorf("%s: %v", where, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", where, resp.Status)
	}
	return nil
}

// redact drops what may hold a secret (user info, query) from a URL for
// messages.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "the webhook URL"
	}
	p.User, p.RawQuery = nil, ""
	return p.String()
}
