// Command vzsalvage rescues data from damaged Proxmox VE backups, restores
// files from them without root, and checks backups before they are needed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/vzsalvage/vzsalvage/internal/ui"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries an exit status; a nil err means "already reported".
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

// errDamaged makes a command exit 1 after it has printed its findings.
var errDamaged = &exitError{code: ui.ExitDamaged}

func main() {
	stop := startCPUProfile()
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	// Everything printed may carry guest-provided strings: escape controls.
	out := &countingWriter{W: ui.SafeWriter{W: stdout}}
	stderr = ui.SafeWriter{W: stderr}
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(out)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return ui.ExitIntact
	}
	code := ui.ExitFailed
	var ee *exitError
	if errors.As(err, &ee) {
		code, err = ee.code, ee.err
	}
	if err == nil {
		return code
	}
	fmt.Fprintf(stderr, "vzsalvage: %v\n", err)
	if out.n == 0 && code == ui.ExitFailed && jsonAsked(root, args) {
		// scripts reading --json get the reason too
		printJSON(out, struct {
			Error string `json:"error"`
		}{err.Error()})
	}
	return code
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	W io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.n += int64(n)
	return n, err
}

// jsonAsked reports whether the command line asks for --json output.
func jsonAsked(root *cobra.Command, args []string) bool {
	c, _, err := root.Find(args)
	if err != nil {
		return false
	}
	f := c.Flags().Lookup("json")
	return f != nil && f.Value.String() == "true"
}

// interruptible returns a context that ends at the first SIGINT or SIGTERM,
// so that long work stops cleanly and removes what it had half written; a
// second signal ends the process at once.
func interruptible() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-ch; !ok {
			return
		}
		fmt.Fprintln(os.Stderr, "vzsalvage: interrupted, cleaning up (interrupt again to stop at once)")
		cancel()
		if _, ok := <-ch; ok {
			os.Exit(ui.ExitFailed)
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(ch)
		cancel()
	}
}

// printJSON writes v as indented JSON (the --json output of every command).
func printJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(v)
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "vzsalvage",
		Short: "Rescue data from damaged Proxmox VE backups",
		Long: `vzsalvage reads Proxmox VE vzdump backups of VMs (.vma) and containers (.tar),
uncompressed or .zst, .gz, .lzo, past damage, says exactly what was lost, and gets
files out of them without root. It also protects new backups (protect, vzdump-hook,
scrub) so that later damage is found early and repaired.

Start with: vzsalvage rescue BACKUP -o DIR   (everything, and a report.md to read)

Exit status: 0 intact, 1 damaged (the work was still done as far as possible),
2 could not run (usage, unreadable input, no space). With --json, a command
that could not run prints {"error": "..."} when it had printed nothing else.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: ui.ExitFailed, err: fmt.Errorf("%v (see '%s --help')", err, c.CommandPath())}
	})
	root.AddCommand(newInspect(), newVerify(), newExtract(), newLs(), newCp(), newRescue(), newRepack(), newGenMan())
	root.AddCommand(newProtect(), newRepair(), newHook(), newScrub(), newDoctor())
	addSidecarFlags(root)
	return root
}
