package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/protect"
	"github.com/vzsalvage/vzsalvage/protect/alert"
)

func newHook() *cobra.Command {
	var af alertFlags
	var failBackup bool
	var overhead float64
	c := &cobra.Command{
		Use:   "vzdump-hook PHASE [MODE VMID]",
		Short: "vzdump's hook script: protect every new backup, alert when one is damaged",
		Long: `vzdump-hook is what vzdump runs as its hook script. Set it up once, in /etc/vzdump.conf:

  script: /usr/lib/vzsalvage/vzdump-hook

(the Debian package installs that two-line script; with the binary installed by hand in
/usr/local/bin, write /usr/local/bin/vzsalvage-hook as
  #!/bin/sh
  exec /usr/local/bin/vzsalvage vzdump-hook "$@"
and name that one). vzdump --script PATH runs it for one job.

At backup-end it protects the new archive (TARGET): verifies it end to end and writes its
sidecar, or, when it is damaged already, alerts by mail and webhook. When vzdump reports a
backup or job aborted (backup-abort, job-abort) it alerts too. Other phases do nothing.
VM (.vma) and container (.tar) backups alike.

Its lines go to the vzdump task log. Exit status: 0, unless an alert could not be
delivered (2), or the new archive is damaged and nobody could be told (no alert configured)
or --fail-backup is set (1): vzdump then marks the backup failed and says so itself.`,
		Example: `  # /etc/vzdump.conf
  script: /usr/lib/vzsalvage/vzdump-hook`,
		Args:               cobra.ArbitraryArgs,
		DisableFlagParsing: false,
		RunE: func(cmd *cobra.Command, args []string) error {
			ac, err := af.load()
			if err != nil {
				return &exitError{code: ui.ExitFailed, err: err}
			}
			ev, err := protect.ParseHook(args, os.Getenv)
			if err != nil {
				return &exitError{code: ui.ExitFailed, err: err}
			}
			return runHook(cmd.OutOrStdout(), ev, ac, overhead/100, failBackup)
		},
	}
	af.add(c)
	c.Flags().BoolVar(&failBackup, "fail-backup", false, "exit 1 when the new archive is damaged, so that vzdump marks the backup failed")
	c.Flags().Float64Var(&overhead, "overhead", 100*protect.DefaultOverhead, "parity size in percent of the archive")
	return c
}

func runHook(w io.Writer, ev protect.HookEvent, ac *alert.Config, overhead float64, failBackup bool) error {
	msg := alert.Message{Event: "vzdump-hook", Host: hostname(), Archive: ev.Target, Guest: ev.Guest(), VMID: ev.VMID}
	switch ev.Phase {
	case "backup-end":
	case "backup-abort":
		msg.Status, msg.What = "failed", fmt.Sprintf("vzdump aborted the backup of %s", ev.Guest())
		msg.Next = "read the vzdump task log, then run the backup again: vzdump " + fmt.Sprint(ev.VMID)
		return sendAlert(w, ac, msg, false, false)
	case "job-abort":
		msg.Status, msg.What = "failed", "vzdump aborted a backup job"
		if ev.DumpDir != "" {
			msg.What += " (dump directory " + ev.DumpDir + ")"
		}
		msg.Next = "read the vzdump task log and run the job again"
		return sendAlert(w, ac, msg, false, false)
	default:
		return nil
	}
	if why := ev.Skip(); why != "" {
		ui.Fprintf(w, "vzsalvage: INFO: %s\n", ui.Safe(why))
		return nil
	}
	ctx, stop := interruptible()
	defer stop()
	res, err := protect.Protect(ev.Target, protect.Options{SidecarDir: sidecarDir, Overhead: overhead, Tool: "vzsalvage " + version, Context: ctx})
	switch {
	case errors.Is(err, context.Canceled):
		return &exitError{code: ui.ExitFailed, err: fmt.Errorf("interrupted: no sidecar written for %s", ev.Target)}
	case err != nil:
		ui.Fprintf(w, "vzsalvage: ERROR: could not protect the new backup: %s\n", ui.Safe(err.Error()))
		msg.Status, msg.What = "failed", "vzsalvage could not check the new backup: "+err.Error()
		msg.Next = "vzsalvage verify " + ev.Target
		return sendAlert(w, ac, msg, true, failBackup)
	case !res.Intact:
		a := res.Report.Archives[0]
		what := fmt.Sprintf("the new backup of %s is damaged (checksum %s, %d problems)", ev.Guest(), a.Checksum, a.ProblemCount)
		if len(a.Problems) > 0 {
			what += "; first: " + a.Problems[0].String()
		}
		ui.Fprintf(w, "vzsalvage: ERROR: %s\n", ui.Safe(what))
		printArchive(w, res.Report, false)
		msg.Status, msg.What = "damaged", what
		msg.Next = fmt.Sprintf("run the backup again (vzdump %d); to see what this one still holds: vzsalvage rescue %s -o DIR", ev.VMID, ev.Target)
		return sendAlert(w, ac, msg, true, failBackup)
	}
	ui.Fprintf(w, "vzsalvage: %s verified intact; sidecar %s (%s)\n", ui.Safe(ev.Target), ui.Safe(res.Sidecar), ui.Bytes(res.SidecarSize))
	msg.Status, msg.What = "ok", fmt.Sprintf("the new backup of %s verified intact and protected (%s)", ev.Guest(), res.Sidecar)
	return sendAlert(w, ac, msg, false, false)
}

// sendAlert delivers a hook's alert. It returns exit 2 when the delivery
// failed, and exit 1 when fail is set, or when mustTell is set and nobody
// could be told (no alert configured): vzdump then reports the failure.
func sendAlert(w io.Writer, ac *alert.Config, msg alert.Message, mustTell, fail bool) error {
	if !ac.Enabled() {
		if !mustTell {
			return nil
		}
		ui.Fprintf(w, "vzsalvage: no alert configured (%s): exiting 1 so that vzdump reports it\n", alert.DefaultConfigPath)
		return errDamaged
	}
	if err := alert.Send(ac, msg); err != nil {
		ui.Fprintf(w, "vzsalvage: ERROR: alert not delivered: %s\n", ui.Safe(err.Error()))
		return &exitError{code: ui.ExitFailed}
	}
	if msg.Status != "ok" || ac.OnSuccess {
		ui.Fprintf(w, "vzsalvage: alert sent (%s)\n", msg.Status)
	}
	if fail && msg.Status != "ok" {
		return errDamaged
	}
	return nil
}
