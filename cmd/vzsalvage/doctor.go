package main

import (
	"errors"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/vzsalvage/vzsalvage/doctor"
	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/protect"
	"github.com/vzsalvage/vzsalvage/report"
)

func newDoctor() *cobra.Command {
	var opt doctor.Options
	var root string
	var asJSON bool
	c := &cobra.Command{
		Use:   "doctor",
		Short: "Check this host and its backup storages for the signs that come before a lost night",
		Long: `doctor looks for what, in hindsight, announced the nights when both a Proxmox host and
its backups failed, while there is still time to act. It only reads: it changes nothing,
mounts nothing and writes nothing.

What it checks:

    kernel log       this boot and the previous one (journalctl -k -b 0 / -b -1; dmesg without a
                     journal), or saved logs with --kernel-log. NVMe controllers that time out,
                     reset or vanish ("nvme nvme0: I/O 123 QID 4 timeout, aborting"); disks that
                     fail to read or write (I/O error, critical medium error, Buffer I/O error,
                     ATA UNC); ext4, XFS and btrfs errors; machine-check and EDAC memory errors;
                     USB disks that reset or disconnect (UAS aborts); NFS or SMB servers that stop
                     responding; processes hung for minutes (a freezing host); PCIe bus errors.
                     Repeats are grouped, with counts, first and last time, and a few lines.
    power saving     /proc/cmdline and /sys/module/nvme_core/parameters/default_ps_max_latency_us
                     (NVMe APST) and pcie_aspm: the usual workaround for NVMe drives that stop
                     answering, and whether it is already active.
    drives           /sys/class/nvme (model, firmware, state, temperature), and the drives' own
                     health through smartctl -j -a (or nvme smart-log -o json): critical
                     warnings, media errors, wear, reallocated and pending sectors.
    backup storages  every storage of /etc/pve/storage.cfg with "content backup" and the dumpdir
                     of /etc/vzdump.conf: mounted or not, NFS mounted soft or over UDP, read-only,
                     on the system disk or a USB disk, free space against the size of the last
                     backups; the newest backup of each guest with its age (older than --max-age
                     is a warning) and what protect's sidecar says of it (ARCHIVE.vzsalvage beside
                     it or in --sidecar-dir: intact when written, the latest scrub's result, or
                     changed since); backups that never finished (.dat left behind); guests with no
                     backup at all; whether vzdump's hook protects new backups.

Every finding is ranked critical, warning or info, with its evidence and what is known to help,
said as it is: the NVMe power-saving workaround stops the freezes for many drives and does
nothing for others, whose only cure was a firmware update or another drive.

Run it as root to read the journal and the drives' health; as another user the checks it cannot
do are listed as skipped. With --root DIR every file is read under DIR instead of / (a copy of a
host's /etc, /proc and /sys, or a host's root filesystem mounted elsewhere) and no command is run:
the kernel log then comes from --kernel-log or DIR/var/log/kern.log.

Exit status: 0 nothing critical, 1 something critical found, 2 could not run.`,
		Example: `  vzsalvage doctor
  vzsalvage doctor --json > doctor.json
  journalctl -k -b -1 > last-boot.txt; vzsalvage doctor --kernel-log last-boot.txt
  vzsalvage doctor --root /mnt/pve-root --kernel-log /mnt/pve-root/var/log/kern.log.1
  vzsalvage doctor --max-age 26h --sidecar-dir /srv/sidecars    # daily, from cron: exit 1 = act`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDoctor(cmd, cmd.OutOrStdout(), root, opt, asJSON)
		},
	}
	c.Flags().StringVar(&root, "root", "/", "read every file under DIR instead of / (and run no command)")
	c.Flags().StringArrayVar(&opt.KernelLogs, "kernel-log", nil, "read this saved kernel log (dmesg, journalctl -k or kern.log) instead of the running kernel's (repeatable)")
	c.Flags().DurationVar(&opt.MaxAge, "max-age", 48*time.Hour, "a guest whose newest backup is older than this is a warning")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return c
}

func runDoctor(cmd *cobra.Command, w io.Writer, root string, opt doctor.Options, asJSON bool) error {
	h := &doctor.Host{Root: root}
	if root == "/" || root == "" {
		h.Run = doctor.ExecRunner{Timeout: 60 * time.Second, MaxOutput: 128 << 20}
	}
	opt.SidecarDir = sidecarDir
	if !noSidecar {
		dir := ""
		if sidecarDir != "" {
			dir = filepath.Join(root, sidecarDir)
		}
		opt.Protection = protection(dir)
	}
	rep, err := doctor.Run(cmd.Context(), h, opt)
	if err != nil {
		if errors.Is(err, doctor.ErrNoRoot) {
			err = errors.New(err.Error() + " (--root must be a directory)")
		}
		return &exitError{code: ui.ExitFailed, err: err}
	}
	if asJSON {
		if err := printJSON(w, rep); err != nil {
			return err
		}
	} else {
		rep.WriteText(w)
	}
	if rep.Highest() == doctor.Critical {
		return errDamaged
	}
	return nil
}

// protection tells the doctor what protect's sidecar says of an archive:
// the result of the latest scrub when there was one, else whether the
// archive is still what was verified when the sidecar was written.
func protection(sidecarDir string) doctor.ProtectionFunc {
	return func(path string) doctor.Protection {
		st, err := protect.Status(path, sidecarDir)
		p := doctor.Protection{Sidecar: st.Sidecar, Present: st.Present, Date: st.Written}
		switch {
		case err != nil:
			p.Verdict, p.Detail = doctor.VerdictUnreadable, err.Error()
		case st.Error != "":
			p.Verdict, p.Detail = doctor.VerdictUnreadable, st.Error
		case !st.Present:
		case st.LastCheck != nil:
			p.Checked, _ = time.Parse(time.RFC3339, st.LastCheck.Time)
			p.Detail = st.LastCheck.Detail
			switch st.LastCheck.Result {
			case protect.ScrubOK:
				p.Verdict = doctor.VerdictIntact
			case protect.ScrubRepairable:
				p.Verdict = doctor.VerdictRepairable
			case protect.ScrubDamaged:
				p.Verdict = doctor.VerdictDamaged
			}
		case !st.Matches:
			p.Verdict = doctor.VerdictChanged
		case st.Verify.Status == string(report.Intact):
			p.Verdict = doctor.VerdictIntact
		}
		return p
	}
}
