package main

import (
	"github.com/spf13/cobra"

	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/protect"
)

// The sidecar flags every command shares: where `protect` keeps its
// sidecars, and whether reads use them.
var (
	sidecarDir string
	noSidecar  bool
)

// addSidecarFlags adds --sidecar-dir and --no-sidecar and makes every read
// (verify, extract, rescue, ls, cp) check clusters against the archive's
// sidecar when there is one.
func addSidecarFlags(root *cobra.Command) {
	root.PersistentFlags().StringVar(&sidecarDir, "sidecar-dir", "", "where protect's sidecars are kept (default: beside each archive, ARCHIVE.vzsalvage)")
	root.PersistentFlags().BoolVar(&noSidecar, "no-sidecar", false, "read archives without their sidecars")
	extract.Sidecars = func(archive string) (extract.Checker, error) {
		if noSidecar {
			return nil, nil
		}
		return protect.Lookup(sidecarDir)(archive)
	}
}
