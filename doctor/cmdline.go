package doctor

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// KernelParams is what the running kernel says about NVMe and PCIe power
// saving, the knobs of the story's workaround.
type KernelParams struct {
	// Cmdline is /proc/cmdline.
	Cmdline string `json:"cmdline,omitempty"`
	// PSMaxLatencyUs is nvme_core's default_ps_max_latency_us as the
	// kernel uses it (/sys/module/nvme_core/parameters), or as the command
	// line sets it when sysfs does not say; "" when unknown. 0 turns NVMe
	// autonomous power-state transitions (APST) off; the default is 100000.
	PSMaxLatencyUs string `json:"nvme_default_ps_max_latency_us,omitempty"`
	// ASPM is the pcie_aspm= value of the command line ("off", "force").
	ASPM string `json:"pcie_aspm,omitempty"`
	// ASPMPolicy is the selected PCIe ASPM policy (/sys/module/pcie_aspm).
	ASPMPolicy string `json:"pcie_aspm_policy,omitempty"`
	// BootTool is set when proxmox-boot-tool manages the boot partitions
	// (/etc/kernel/proxmox-boot-uuids): the command line then lives in
	// /etc/kernel/cmdline (systemd-boot) or /etc/default/grub, and
	// "proxmox-boot-tool refresh" applies it.
	BootTool bool `json:"proxmox_boot_tool,omitempty"`
	// Uptime is how long the host has been up, in seconds (0: unknown).
	Uptime float64 `json:"uptime_seconds,omitempty"`
}

// readKernelParams reads /proc/cmdline, nvme_core's and pcie_aspm's
// parameters, /proc/uptime and how the host boots.
func readKernelParams(h *Host) KernelParams {
	k := KernelParams{Cmdline: h.readString("/proc/cmdline")}
	for _, f := range strings.Fields(k.Cmdline) {
		name, val, _ := strings.Cut(f, "=")
		switch name {
		case "nvme_core.default_ps_max_latency_us":
			k.PSMaxLatencyUs = val
		case "pcie_aspm":
			k.ASPM = val
		}
	}
	if v := h.readString("/sys/module/nvme_core/parameters/default_ps_max_latency_us"); v != "" {
		k.PSMaxLatencyUs = v
	}
	if p := h.readString("/sys/module/pcie_aspm/parameters/policy"); p != "" {
		if i, j := strings.Index(p, "["), strings.Index(p, "]"); i >= 0 && j > i {
			k.ASPMPolicy = p[i+1 : j]
		}
	}
	k.BootTool = h.exists("/etc/kernel/proxmox-boot-uuids")
	if f := strings.Fields(h.readString("/proc/uptime")); len(f) > 0 {
		k.Uptime, _ = strconv.ParseFloat(f[0], 64)
	}
	return k
}

// APSTOff reports whether NVMe autonomous power-state transitions are off.
func (k KernelParams) APSTOff() bool { return k.PSMaxLatencyUs == "0" }

// ASPMOff reports whether PCIe link power management is off.
func (k KernelParams) ASPMOff() bool { return k.ASPM == "off" }

// Workaround reports whether both parts of the usual NVMe workaround are
// active.
func (k KernelParams) Workaround() bool { return k.APSTOff() && k.ASPMOff() }

// describe says in one line how NVMe and PCIe power saving are set.
func (k KernelParams) describe() string {
	var parts []string
	switch {
	case k.PSMaxLatencyUs == "":
		parts = append(parts, "NVMe APST unknown (nvme_core not loaded, or its parameters not readable)")
	case k.APSTOff():
		parts = append(parts, "nvme_core.default_ps_max_latency_us=0 (NVMe APST off)")
	default:
		parts = append(parts, "nvme_core.default_ps_max_latency_us="+k.PSMaxLatencyUs+" (NVMe APST on)")
	}
	switch {
	case k.ASPM != "":
		parts = append(parts, "pcie_aspm="+k.ASPM)
	case k.ASPMPolicy != "":
		parts = append(parts, "pcie_aspm not set (policy "+k.ASPMPolicy+")")
	default:
		parts = append(parts, "pcie_aspm not set")
	}
	return strings.Join(parts, ", ")
}

// upSince says how long the running kernel has been up without the
// problem, when known.
func (k KernelParams) upSince() string {
	if k.Uptime <= 0 {
		return ""
	}
	return "This boot has been up " + human(time.Duration(k.Uptime)*time.Second) + "."
}

// workaroundSteps is the story's workaround, for how this host boots.
func (k KernelParams) workaroundSteps() string {
	var missing []string
	if !k.APSTOff() {
		missing = append(missing, "nvme_core.default_ps_max_latency_us=0")
	}
	if !k.ASPMOff() {
		missing = append(missing, "pcie_aspm=off")
	}
	params := strings.Join(missing, " ")
	s := "The usual workaround turns NVMe and PCIe power saving off, since some drives stop answering when they wake from a deep power state. Add " + params +
		` to GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub (for example GRUB_CMDLINE_LINUX_DEFAULT="quiet ` + params + `"), run update-grub and reboot.`
	if k.BootTool {
		s += " This host's boot partitions are managed by proxmox-boot-tool: if it boots with systemd-boot (ZFS root with UEFI), add them to the single line of /etc/kernel/cmdline instead; either way, run proxmox-boot-tool refresh and reboot."
	}
	return s + " Check after the reboot with cat /proc/cmdline."
}

// kernelParamFindings reports how power saving is set, when the host has
// NVMe drives (the story's freezes came from one).
func kernelParamFindings(k KernelParams, ctrls []Controller, nvmeTrouble bool) []Finding {
	if len(ctrls) == 0 && k.PSMaxLatencyUs == "" {
		return nil
	}
	f := Finding{Severity: Info, Kind: "host.nvme-power", Title: "NVMe power saving: " + k.describe()}
	if k.Cmdline != "" {
		f.Detail = append(f.Detail, "kernel command line: "+k.Cmdline)
	}
	switch {
	case k.Workaround():
		f.Detail = append(f.Detail, "The usual workaround for NVMe drives that stop answering is active (it costs a few watts at idle).")
	case nvmeTrouble:
		f.Detail = append(f.Detail, "The kernel log shows an NVMe drive that stopped answering: its finding says what to change.")
	default:
		f.Detail = append(f.Detail, "Nothing to do while the kernel log shows no NVMe timeouts; if it does, the finding about them says what to change.")
	}
	return []Finding{f}
}

// human writes a duration as "3 d 4 h", "5 h 12 min" or "40 min".
func human(d time.Duration) string {
	switch {
	case d < 0:
		return "0 min"
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d d %d h", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%d min", int(d.Minutes()))
}
