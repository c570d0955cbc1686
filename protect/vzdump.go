package protect

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// HookEvent is one call of a vzdump hook script (vzdump --script, or
// "script:" in /etc/vzdump.conf): the phase as first argument, then for
// the per-guest phases the mode and the VMID; the rest in the environment.
type HookEvent struct {
	Phase    string // job-init, job-start, job-end, job-abort, backup-start, backup-end, backup-abort, log-end, pre-stop, pre-restart, post-restart
	Mode     string // stop, suspend, snapshot
	VMID     int
	VMType   string // qemu, lxc (openvz on old hosts)
	DumpDir  string
	StoreID  string
	Hostname string // the guest's
	Target   string // the archive (backup-end); TARFILE on old hosts
	LogFile  string // log-end
}

// guestPhases take the mode and VMID arguments.
var guestPhases = map[string]bool{"backup-start": true, "backup-end": true, "backup-abort": true, "log-end": true,
	"pre-stop": true, "pre-restart": true, "post-restart": true}

// ParseHook reads a hook call from its arguments and environment.
func ParseHook(args []string, getenv func(string) string) (HookEvent, error) {
	if len(args) == 0 {
		return HookEvent{}, fmt.Errorf("no phase given (vzdump calls its hook script with the phase first)")
	}
	ev := HookEvent{Phase: args[0], VMType: getenv("VMTYPE"), DumpDir: getenv("DUMPDIR"), StoreID: getenv("STOREID"),
		Hostname: getenv("HOSTNAME"), Target: getenv("TARGET"), LogFile: getenv("LOGFILE")}
	if ev.Target == "" {
		ev.Target = getenv("TARFILE")
	}
	if guestPhases[ev.Phase] {
		if len(args) < 3 {
			return ev, fmt.Errorf("phase %s: want MODE VMID after it", ev.Phase)
		}
		ev.Mode = args[1]
		id, err := strconv.Atoi(args[2])
		if err != nil || id < 1 {
			return ev, fmt.Errorf("phase %s: VMID %q", ev.Phase, args[2])
		}
		ev.VMID = id
	}
	return ev, nil
}

// Guest names the guest for people: "qemu 100 (web1)".
func (ev HookEvent) Guest() string {
	if ev.VMID == 0 {
		return ""
	}
	s := fmt.Sprintf("%s %d", strings.TrimSpace(ev.VMType+" "), ev.VMID)
	if ev.VMType == "" {
		s = fmt.Sprintf("guest %d", ev.VMID)
	}
	if ev.Hostname != "" {
		s += " (" + ev.Hostname + ")"
	}
	return s
}

// Skip says why the archive of a backup-end event is not protected, or ""
// when it is to be protected: a target that is no file (a Proxmox Backup
// Server snapshot) has nothing to read.
func (ev HookEvent) Skip() string {
	if ev.Target == "" {
		return "no TARGET in the environment: nothing to protect"
	}
	st, err := os.Stat(ev.Target)
	if err != nil || !st.Mode().IsRegular() {
		return "the target is not a file (a Proxmox Backup Server storage?): " + ev.Target
	}
	return ""
}
