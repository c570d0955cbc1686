package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DiskHealth is a drive's own health record (SMART), as smartctl or
// nvme-cli report it. Fields the tool did not report are nil.
type DiskHealth struct {
	Device   string `json:"device"` // /dev/nvme0, /dev/sda
	Source   string `json:"source"` // "smartctl -j -a" or "nvme smart-log -o json"
	Model    string `json:"model,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	// Passed is the drive's overall self-assessment.
	Passed *bool `json:"passed,omitempty"`
	// NVMe health log.
	CriticalWarning *int64 `json:"critical_warning,omitempty"`
	AvailableSpare  *int64 `json:"available_spare,omitempty"`
	SpareThreshold  *int64 `json:"available_spare_threshold,omitempty"`
	PercentUsed     *int64 `json:"percentage_used,omitempty"`
	MediaErrors     *int64 `json:"media_errors,omitempty"`
	UnsafeShutdowns *int64 `json:"unsafe_shutdowns,omitempty"`
	ErrorLogEntries *int64 `json:"error_log_entries,omitempty"`
	// ATA attributes 5, 197 and 198 (raw values).
	Reallocated          *int64 `json:"reallocated_sectors,omitempty"`
	Pending              *int64 `json:"pending_sectors,omitempty"`
	OfflineUncorrectable *int64 `json:"offline_uncorrectable,omitempty"`
	TempC                *int64 `json:"temp_c,omitempty"`
	PowerOnHours         *int64 `json:"power_on_hours,omitempty"`
	// Error says why the record could not be read.
	Error string `json:"error,omitempty"`
}

// flexInt reads a JSON integer however a tool wrote it: a number (also
// in float notation), a string of digits, or an object with a "value".
type flexInt struct{ v *int64 }

func (f *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		return nil
	case b[0] == '{':
		var o map[string]json.RawMessage
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		for k, v := range o {
			if strings.EqualFold(k, "value") {
				return f.UnmarshalJSON(v)
			}
		}
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(strings.TrimSpace(s))
	}
	if v, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		f.v = &v
		return nil
	}
	if x, err := strconv.ParseFloat(string(b), 64); err == nil && x >= -1e18 && x <= 1e18 {
		v := int64(x)
		f.v = &v
	}
	return nil
}

func (f *flexInt) get() *int64 {
	if f == nil {
		return nil
	}
	return f.v
}

// smartctlOut is the part of smartctl -j -a that the doctor reads.
type smartctlOut struct {
	Smartctl struct {
		Messages []struct {
			String   string `json:"string"`
			Severity string `json:"severity"`
		} `json:"messages"`
	} `json:"smartctl"`
	ModelName   string `json:"model_name"`
	Firmware    string `json:"firmware_version"`
	SmartStatus *struct {
		Passed *bool `json:"passed"`
	} `json:"smart_status"`
	NVMe *struct {
		CriticalWarning *flexInt `json:"critical_warning"`
		AvailableSpare  *flexInt `json:"available_spare"`
		SpareThreshold  *flexInt `json:"available_spare_threshold"`
		PercentageUsed  *flexInt `json:"percentage_used"`
		MediaErrors     *flexInt `json:"media_errors"`
		UnsafeShutdowns *flexInt `json:"unsafe_shutdowns"`
		ErrLogEntries   *flexInt `json:"num_err_log_entries"`
	} `json:"nvme_smart_health_information_log"`
	ATA *struct {
		Table []struct {
			ID  int `json:"id"`
			Raw struct {
				Value *flexInt `json:"value"`
			} `json:"raw"`
		} `json:"table"`
	} `json:"ata_smart_attributes"`
	Temperature *struct {
		Current *flexInt `json:"current"`
	} `json:"temperature"`
	PowerOnTime *struct {
		Hours *flexInt `json:"hours"`
	} `json:"power_on_time"`
}

// parseSmartctl reads smartctl -j -a output. It fails when the output is
// not JSON or holds no health data (the error then says why, from
// smartctl's own messages).
func parseSmartctl(dev string, b []byte) (DiskHealth, error) {
	d := DiskHealth{Device: dev, Source: "smartctl -j -a"}
	var o smartctlOut
	if err := json.Unmarshal(b, &o); err != nil {
		return d, fmt.Errorf("smartctl output is not JSON: %w", err)
	}
	d.Model, d.Firmware = o.ModelName, o.Firmware
	if o.SmartStatus != nil {
		d.Passed = o.SmartStatus.Passed
	}
	if n := o.NVMe; n != nil {
		d.CriticalWarning, d.AvailableSpare, d.SpareThreshold = n.CriticalWarning.get(), n.AvailableSpare.get(), n.SpareThreshold.get()
		d.PercentUsed, d.MediaErrors, d.UnsafeShutdowns, d.ErrorLogEntries = n.PercentageUsed.get(), n.MediaErrors.get(), n.UnsafeShutdowns.get(), n.ErrLogEntries.get()
	}
	if o.ATA != nil {
		for _, a := range o.ATA.Table {
			switch a.ID {
			case 5:
				d.Reallocated = a.Raw.Value.get()
			case 197:
				d.Pending = a.Raw.Value.get()
			case 198:
				d.OfflineUncorrectable = a.Raw.Value.get()
			}
		}
	}
	if o.Temperature != nil {
		d.TempC = o.Temperature.Current.get()
	}
	if o.PowerOnTime != nil {
		d.PowerOnHours = o.PowerOnTime.Hours.get()
	}
	if d.Passed == nil && o.NVMe == nil && o.ATA == nil {
		var msgs []string
		for _, m := range o.Smartctl.Messages {
			msgs = append(msgs, m.String)
		}
		if len(msgs) == 0 {
			msgs = append(msgs, "no health data in smartctl's output")
		}
		return d, errors.New(strings.Join(msgs, "; "))
	}
	return d, nil
}

// nvmeSmartLog is nvme-cli's "nvme smart-log -o json" (1.x and 2.x).
type nvmeSmartLog struct {
	CriticalWarning *flexInt `json:"critical_warning"` // a number, or an object with "value"
	Temperature     *flexInt `json:"temperature"`      // kelvin
	AvailSpare      *flexInt `json:"avail_spare"`
	SpareThresh     *flexInt `json:"spare_thresh"`
	PercentUsed     *flexInt `json:"percent_used"`
	PowerOnHours    *flexInt `json:"power_on_hours"`
	UnsafeShutdowns *flexInt `json:"unsafe_shutdowns"`
	MediaErrors     *flexInt `json:"media_errors"`
	ErrLogEntries   *flexInt `json:"num_err_log_entries"`
}

// parseNvmeSmartLog reads nvme smart-log -o json output.
func parseNvmeSmartLog(dev string, b []byte) (DiskHealth, error) {
	d := DiskHealth{Device: dev, Source: "nvme smart-log -o json"}
	var o nvmeSmartLog
	if err := json.Unmarshal(b, &o); err != nil {
		return d, fmt.Errorf("nvme smart-log output is not JSON: %w", err)
	}
	if o.CriticalWarning.get() == nil {
		return d, errors.New("no critical_warning in nvme smart-log output")
	}
	d.CriticalWarning, d.AvailableSpare, d.SpareThreshold, d.PercentUsed = o.CriticalWarning.get(), o.AvailSpare.get(), o.SpareThresh.get(), o.PercentUsed.get()
	d.PowerOnHours, d.UnsafeShutdowns, d.MediaErrors, d.ErrorLogEntries = o.PowerOnHours.get(), o.UnsafeShutdowns.get(), o.MediaErrors.get(), o.ErrLogEntries.get()
	if t := o.Temperature.get(); t != nil {
		c := *t
		if c > 150 { // kelvin
			c -= 273
		}
		d.TempC = &c
	}
	passed := *d.CriticalWarning == 0
	d.Passed = &passed
	return d, nil
}

// readHealth asks smartctl (or, for NVMe without it, nvme-cli) for the
// health of each NVMe controller and each non-removable SCSI/SATA disk.
func readHealth(ctx context.Context, h *Host, r *Report) []DiskHealth {
	if h.Run == nil {
		r.check("SMART", "skipped", "no command is run on a --root tree")
		return nil
	}
	var devs []string
	for _, c := range r.NVMe {
		devs = append(devs, "/dev/"+c.Name)
	}
	ents, _ := h.readDir("/sys/block")
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "sd") && h.readString("/sys/block/"+n+"/removable") != "1" {
			devs = append(devs, "/dev/"+n)
		}
		if len(devs) >= 64 {
			break
		}
	}
	if len(devs) == 0 {
		r.check("SMART", "skipped", "no NVMe or SATA/SAS disk found in /sys")
		return nil
	}
	var out []DiskHealth
	var notes []string
	smartctl := true
	for _, dev := range devs {
		var d DiskHealth
		var err error
		if smartctl {
			var b []byte
			b, err = h.Run.Run(ctx, "smartctl", "-j", "-a", dev)
			if errors.Is(err, ErrNotInstalled) {
				smartctl = false
			} else {
				// smartctl's exit status is a bit mask that is non-zero for
				// a failing disk too: the JSON says what happened.
				d, err = parseSmartctl(dev, b)
			}
		}
		if !smartctl {
			if !strings.HasPrefix(dev, "/dev/nvme") {
				continue
			}
			var b []byte
			b, err = h.Run.Run(ctx, "nvme", "smart-log", "-o", "json", dev)
			if err == nil {
				d, err = parseNvmeSmartLog(dev, b)
			}
		}
		if err != nil {
			if errors.Is(err, ErrNotInstalled) {
				break // nvme-cli missing too
			}
			d = DiskHealth{Device: dev, Error: err.Error()}
			notes = append(notes, dev+": "+err.Error())
		}
		out = append(out, d)
	}
	if !smartctl {
		notes = append(notes, "smartctl is not installed (apt install smartmontools); nvme-cli is used for NVMe drives when present")
	}
	status := "ran"
	if len(out) == 0 {
		status = "failed"
	}
	r.check("SMART", status, strings.Join(notes, "; "))
	return out
}

// criticalWarningBits names the bits of the NVMe critical warning.
var criticalWarningBits = []string{"available spare below threshold", "temperature beyond a threshold",
	"reliability degraded by media errors", "media placed in read-only mode", "volatile memory backup failed",
	"persistent memory region read-only"}

// healthFindings ranks what the drives say of themselves.
func healthFindings(ds []DiskHealth) []Finding {
	var out []Finding
	for _, d := range ds {
		if d.Error != "" {
			continue
		}
		name := strings.TrimPrefix(d.Device, "/dev/")
		ev := []string{d.Device + ": " + d.summary()}
		add := func(sev Severity, kind, title string, fixes ...string) {
			out = append(out, Finding{Severity: sev, Kind: kind, Subject: name, Title: name + ": " + title, Evidence: ev, Fixes: fixes})
		}
		replace := "Copy what matters off it and replace it; check that the backups of the guests on it restore: vzsalvage verify ARCHIVE."
		if d.Passed != nil && !*d.Passed {
			add(Critical, "smart.failed", "the drive's own health assessment FAILED", replace)
		}
		if cw := d.CriticalWarning; cw != nil && *cw != 0 {
			var bits []string
			for i, b := range criticalWarningBits {
				if *cw&(1<<i) != 0 {
					bits = append(bits, b)
				}
			}
			add(Critical, "smart.critical-warning", fmt.Sprintf("NVMe critical warning 0x%02x: %s", *cw, strings.Join(bits, ", ")), replace)
		}
		if v := d.MediaErrors; v != nil && *v > 0 {
			add(Warning, "smart.media-errors", fmt.Sprintf("%d media and data integrity error(s): data the drive could not read back", *v),
				"A few old ones may be harmless; a count that grows means a failing drive. "+replace)
		}
		if v := d.PercentUsed; v != nil && *v >= 90 {
			add(Warning, "smart.wear", fmt.Sprintf("%d%% of its rated endurance used", *v), "Plan its replacement; worn flash fails by turning read-only or by losing data.")
		}
		for _, a := range []struct {
			v    *int64
			what string
		}{{d.Reallocated, "reallocated sectors"}, {d.Pending, "sectors pending reallocation (unreadable now)"}, {d.OfflineUncorrectable, "offline-uncorrectable sectors"}} {
			if a.v != nil && *a.v > 0 {
				add(Warning, "smart.sectors", fmt.Sprintf("%d %s", *a.v, a.what), "A count that grows means a failing disk. "+replace)
			}
		}
		out = append(out, Finding{Severity: Info, Kind: "smart.summary", Subject: name, Title: name + ": " + d.summary()})
	}
	return out
}

// summary says in one line what the drive reports.
func (d DiskHealth) summary() string {
	var p []string
	if d.Model != "" {
		s := d.Model
		if d.Firmware != "" {
			s += " (firmware " + d.Firmware + ")"
		}
		p = append(p, s)
	}
	if d.Passed != nil {
		p = append(p, map[bool]string{true: "health PASSED", false: "health FAILED"}[*d.Passed])
	}
	num := func(v *int64, f string) {
		if v != nil {
			p = append(p, fmt.Sprintf(f, *v))
		}
	}
	num(d.CriticalWarning, "critical warning 0x%02x")
	num(d.PercentUsed, "%d%% used")
	num(d.MediaErrors, "%d media errors")
	num(d.Reallocated, "%d reallocated")
	num(d.Pending, "%d pending")
	num(d.OfflineUncorrectable, "%d offline-uncorrectable")
	num(d.UnsafeShutdowns, "%d unsafe shutdowns")
	num(d.TempC, "%d °C")
	num(d.PowerOnHours, "%d h powered on")
	return strings.Join(p, ", ")
}
