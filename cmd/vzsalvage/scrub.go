package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/protect"
	"github.com/vzsalvage/vzsalvage/protect/alert"
)

// scrubOptions are scrub's flags.
type scrubOptions struct {
	state, subset, metrics string
	limit                  int
	pruneOrphans           bool
	asJSON, quiet          bool
	alerts                 alertFlags
}

func newScrub() *cobra.Command {
	var o scrubOptions
	c := &cobra.Command{
		Use:   "scrub DIR...",
		Short: "Re-check stored backups against their sidecars (resumable, in slices)",
		Long: `scrub re-reads every vzdump archive in the DIRs and checks it against its sidecar:
every 4 KiB chunk against its hash, and the hashes against the sidecar's SHA-256 of
them (a sidecar of format version 1: the whole file against its SHA-256). No
decompression: it runs at disk speed. It says which archives are intact, which are
damaged but repairable from their parity (vzsalvage repair --in-place), and which are
damaged beyond it; archives never protected and sidecars whose archive is gone are listed.

  --state FILE    remembers the archives checked and how far the check of the current
                  one got (saved every GiB or 30 s and on SIGINT/SIGTERM): an interrupted
                  scrub resumes where it stopped, also within an archive, and the result
                  still covers the whole archive (damage found before the stop is kept);
                  an archive or sidecar changed since (size, mtime) is checked from the
                  start, and a finished run starts again from the beginning
  --subset N/T    checks only slice N of T (by a hash of each name), as restic's
                  check --read-data-subset: a nightly run with N = day of week and T = 7
                  covers every archive once a week
  --limit K       checks at most K archives this run (the state keeps the rest for later)
  --metrics FILE  writes Prometheus textfile metrics (node exporter's textfile collector)

On damage it alerts (mail, webhook; see vzdump-hook). A systemd timer and service are in
packaging/systemd/, and a cron line in the README.

Exit status: 0 every archive checked is intact, 1 any damaged, 2 could not run or an alert
could not be delivered.`,
		Example: `  vzsalvage scrub /var/lib/vz/dump
  vzsalvage scrub --state /var/lib/vzsalvage/scrub.state --subset $(date +%u)/7 \
      --metrics /var/lib/prometheus/node-exporter/vzsalvage.prom /var/lib/vz/dump`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScrub(cmd.OutOrStdout(), args, o)
		},
	}
	c.Flags().StringVar(&o.state, "state", "", "state file (resumes an interrupted run)")
	c.Flags().StringVar(&o.subset, "subset", "", "check only slice N of T (N/T)")
	c.Flags().IntVar(&o.limit, "limit", 0, "check at most this many archives in this run")
	c.Flags().StringVar(&o.metrics, "metrics", "", "write Prometheus textfile metrics here")
	c.Flags().BoolVar(&o.pruneOrphans, "prune-orphans", false, "remove sidecars whose archive is gone")
	c.Flags().BoolVar(&o.asJSON, "json", false, "print the checks as JSON")
	c.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "no progress bar")
	o.alerts.add(c)
	return c
}

func runScrub(w io.Writer, dirs []string, o scrubOptions) error {
	start := time.Now()
	sub, err := protect.ParseSubset(o.subset)
	if err != nil {
		return &exitError{code: ui.ExitFailed, err: err}
	}
	ac, err := o.alerts.load()
	if err != nil {
		return &exitError{code: ui.ExitFailed, err: err}
	}
	for i, d := range dirs {
		if dirs[i], err = filepath.Abs(d); err != nil {
			return &exitError{code: ui.ExitFailed, err: err}
		}
	}
	all, err := protect.FindArchives(dirs)
	if err != nil {
		return &exitError{code: ui.ExitFailed, err: err}
	}
	st, resumed, err := protect.LoadState(o.state, dirs, sub)
	if err != nil {
		return &exitError{code: ui.ExitFailed, err: err}
	}
	var todo []string
	for _, p := range all {
		if _, done := st.Done[p]; sub.Has(p) && !done {
			todo = append(todo, p)
		}
	}
	if resumed && !o.asJSON {
		ui.Fprintf(w, "resuming the scrub started %s: %d archives checked, %d to go\n", st.Started, len(st.Done), len(todo))
		if p := st.Partial; p != nil {
			ui.Fprintf(w, "%s: checked up to byte %d of %d before the stop\n", ui.Safe(p.Archive), p.Offset, p.Size)
		}
	}
	ctx, stop := interruptible()
	defer stop()
	var checks []protect.Check
	stopped := false
	for i, p := range todo {
		if o.limit > 0 && i == o.limit {
			stopped = true
			break
		}
		if ctx.Err() != nil {
			return &exitError{code: ui.ExitFailed, err: scrubInterrupted(o.state, st)}
		}
		var resume *protect.ScanPoint
		if st.Partial != nil && st.Partial.Archive == p {
			resume = st.Partial
		}
		var saveErr error
		prog := ui.NewProgress(!o.quiet && !o.asJSON)
		prog.Start("scrub "+filepath.Base(p), 0)
		c, err := protect.Recheck(p, protect.CheckOptions{SidecarDir: sidecarDir, Progress: prog.Set, Context: ctx, Resume: resume,
			Checkpoint: func(pt *protect.ScanPoint) {
				st.Partial = pt
				if err := st.Save(o.state); err != nil && saveErr == nil {
					saveErr = err
				}
			}})
		prog.Done()
		if saveErr != nil {
			return &exitError{code: ui.ExitFailed, err: saveErr}
		}
		if err != nil {
			return &exitError{code: ui.ExitFailed, err: scrubInterrupted(o.state, st)}
		}
		st.Done[p], st.Partial = c, nil
		checks = append(checks, c)
		if err := st.Save(o.state); err != nil {
			return &exitError{code: ui.ExitFailed, err: err}
		}
		if !o.asJSON {
			line := fmt.Sprintf("%s: %s", ui.Safe(p), c.Result)
			if c.Detail != "" {
				line += ": " + ui.Safe(c.Detail)
			}
			if c.ResumedAt > 0 {
				line += fmt.Sprintf(" (resumed at byte %d; the result covers the whole archive)", c.ResumedAt)
			}
			ui.Fprintf(w, "%s\n", line)
		}
	}
	orphans := protect.Orphans(dirs, sidecarDir)
	for _, s := range orphans {
		if o.pruneOrphans {
			os.Remove(s)
			os.Remove(s + ".check")
		}
		if !o.asJSON {
			verb := "its archive is gone (--prune-orphans removes it)"
			if o.pruneOrphans {
				verb = "its archive is gone: removed"
			}
			ui.Fprintf(w, "%s: sidecar without archive: %s\n", ui.Safe(s), verb)
		}
	}
	if !stopped {
		st.Finished = time.Now().UTC().Format(time.RFC3339)
		if err := st.Save(o.state); err != nil {
			return &exitError{code: ui.ExitFailed, err: err}
		}
	}
	if o.metrics != "" {
		if err := protect.WriteMetrics(o.metrics, st, len(orphans), time.Since(start)); err != nil {
			return &exitError{code: ui.ExitFailed, err: err}
		}
	}
	if o.asJSON {
		if err := printJSON(w, checks); err != nil {
			return err
		}
	} else if stopped {
		ui.Fprintf(w, "stopped after %d archives (--limit); the next run with the same --state goes on\n", o.limit)
	}
	return scrubVerdict(ac, checks)
}

// scrubInterrupted says where an interrupted scrub stopped (the state
// already holds it).
func scrubInterrupted(state string, st *protect.ScrubState) error {
	if state == "" {
		return errors.New("interrupted (with --state FILE the next run would go on from here)")
	}
	where := fmt.Sprintf("%d archives checked", len(st.Done))
	if p := st.Partial; p != nil {
		where += fmt.Sprintf(", %s checked up to byte %d of %d", p.Archive, p.Offset, p.Size)
	}
	return fmt.Errorf("interrupted: %s; the next run with --state %s goes on from there", ui.Safe(where), ui.Safe(state))
}

// scrubVerdict alerts on what the run found and returns the exit status
// (an alert that could not be delivered is an error: exit 2, on stderr).
func scrubVerdict(ac *alert.Config, checks []protect.Check) error {
	var bad []protect.Check
	failed := false
	for _, c := range checks {
		switch c.Result {
		case protect.ScrubRepairable, protect.ScrubDamaged:
			bad = append(bad, c)
		case protect.ScrubError:
			bad = append(bad, c)
			failed = true
		}
	}
	msg := alert.Message{Event: "scrub", Host: hostname(), Status: "ok",
		What: fmt.Sprintf("scrub checked %d archives: all intact", len(checks))}
	if len(bad) > 0 {
		msg.Status, msg.Archive, msg.VMID = "damaged", bad[0].Archive, bad[0].VMID
		if msg.VMID != 0 {
			msg.Guest = fmt.Sprintf("guest %d", msg.VMID)
		}
		var lines []string
		for _, c := range bad {
			lines = append(lines, fmt.Sprintf("%s: %s: %s", c.Archive, c.Result, c.Detail))
		}
		msg.What = fmt.Sprintf("scrub found %d of %d archives damaged or unreadable", len(bad), len(checks))
		msg.Details = strings.Join(lines, "\n")
		msg.Next = "vzsalvage repair " + bad[0].Archive
		if bad[0].Result == protect.ScrubRepairable {
			msg.Next = "vzsalvage repair --in-place " + bad[0].Archive
		}
	}
	if ac.Enabled() && (msg.Status != "ok" || ac.OnSuccess) {
		if err := alert.Send(ac, msg); err != nil {
			return &exitError{code: ui.ExitFailed, err: fmt.Errorf("alert not delivered: %s", ui.Safe(err.Error()))}
		}
	}
	switch {
	case failed:
		return &exitError{code: ui.ExitFailed}
	case len(bad) > 0:
		return errDamaged
	}
	return nil
}
