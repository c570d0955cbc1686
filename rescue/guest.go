package rescue

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/internal/ui"
	"github.com/vzsalvage/vzsalvage/pve"
	"github.com/vzsalvage/vzsalvage/vma"
)

// ErrOtherGuest is wrapped when an --also backup is of another guest.
var ErrOtherGuest = fmt.Errorf("a backup of another guest")

// checkGenerations makes sure, from the headers alone and before any heavy
// work, that every older backup is of the same guest as the newest: the
// same kind and VMID in vzdump's names, the same SMBIOS uuid in the
// configs, and at least one disk of the same name and size. Filling one
// VM's disks with another VM's clusters would produce a plausible-looking
// mix, so a mismatch is refused unless allowOther.
func checkGenerations(newest string, also []string, allowOther bool) error {
	if len(also) == 0 {
		return nil
	}
	nh, err := extract.ReadHead(newest)
	if err != nil {
		return err
	}
	for _, p := range also {
		oh, err := extract.ReadHead(p)
		if err != nil {
			return fmt.Errorf("older backup: %w", err)
		}
		why := otherGuest(nh, oh)
		if why != "" && !allowOther {
			return fmt.Errorf("%s is %w: %s (use --other-guest to combine them anyway)", filepath.Base(p), ErrOtherGuest, why)
		}
	}
	return nil
}

// otherGuest says why two backups are not of the same guest, or "".
func otherGuest(a, b *extract.Head) string {
	if a.Name.Guest != "" && b.Name.Guest != "" && (a.Name.Guest != b.Name.Guest || a.Name.VMID != b.Name.VMID) {
		return fmt.Sprintf("its name says %s %d, the newest is %s %d", b.Name.Guest, b.Name.VMID, a.Name.Guest, a.Name.VMID)
	}
	ca, cb := qemuConfig(a.Header), qemuConfig(b.Header)
	if ca != nil && cb != nil && ca.SMBIOSUUID != "" && cb.SMBIOSUUID != "" && ca.SMBIOSUUID != cb.SMBIOSUUID {
		return fmt.Sprintf("its VM config has SMBIOS uuid %s, the newest %s", ui.Safe(cb.SMBIOSUUID), ui.Safe(ca.SMBIOSUUID))
	}
	if len(a.Header.Devices) == 0 || len(b.Header.Devices) == 0 {
		return "" // a lost header: nothing to compare
	}
	for _, da := range a.Header.Devices {
		for _, db := range b.Header.Devices {
			if da.Name == db.Name && da.Size == db.Size {
				return ""
			}
		}
	}
	return fmt.Sprintf("none of its disks (%s) has the name and size of one of the newest's (%s)", disks(b.Header), disks(a.Header))
}

func qemuConfig(h *vma.Header) *pve.QemuConfig {
	for _, c := range h.Configs {
		if c.Name == "qemu-server.conf" {
			q := pve.ParseQemuConfig(c.Data)
			return &q
		}
	}
	return nil
}

func disks(h *vma.Header) string {
	var s []string
	for _, d := range h.Devices {
		s = append(s, fmt.Sprintf("%s %s", ui.Safe(d.Name), ui.Bytes(d.Size)))
	}
	return strings.Join(s, ", ")
}
