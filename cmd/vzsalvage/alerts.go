package main

import (
	"errors"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/vzsalvage/vzsalvage/protect/alert"
)

// alertFlags are the alert options of the commands that send alerts
// (vzdump-hook, scrub): a configuration file and flags over it.
type alertFlags struct {
	config    string
	mailTo    []string
	webhook   string
	onSuccess bool
}

func (a *alertFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&a.config, "alert-config", "", "alert configuration file (default "+alert.DefaultConfigPath+" when it exists; see README)")
	c.Flags().StringArrayVar(&a.mailTo, "mail-to", nil, "mail alerts to this address (repeatable; SMTP server from the configuration)")
	c.Flags().StringVar(&a.webhook, "webhook", "", "POST alerts as JSON to this URL")
	c.Flags().BoolVar(&a.onSuccess, "alert-on-success", false, "alert on success too")
}

// load returns the alert configuration.
func (a *alertFlags) load() (*alert.Config, error) {
	path := a.config
	if path == "" {
		path = alert.DefaultConfigPath
	}
	c, err := alert.LoadConfig(path)
	switch {
	case err == nil:
	case a.config == "" && errors.Is(err, fs.ErrNotExist):
		c = &alert.Config{}
	default:
		return nil, err
	}
	if len(a.mailTo) > 0 {
		c.SMTPTo = a.mailTo
		if c.SMTPHost == "" {
			c.SMTPHost, c.SMTPTLS = "localhost", "none" // the host's own MTA
			if c.SMTPPort == 0 {
				c.SMTPPort = 25
			}
		}
	}
	if a.webhook != "" {
		c.WebhookURL = a.webhook
	}
	if a.onSuccess {
		c.OnSuccess = true
	}
	return c, nil
}

// hostname is this machine's name for alerts.
func hostname() string {
	h, _ := os.Hostname()
	return h
}
