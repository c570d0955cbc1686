package doctor

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Controller is an NVMe controller as sysfs shows it.
type Controller struct {
	Name      string `json:"name"` // nvme0
	Model     string `json:"model,omitempty"`
	Serial    string `json:"serial,omitempty"`
	Firmware  string `json:"firmware,omitempty"`
	Transport string `json:"transport,omitempty"` // pcie, tcp, rdma, fc, loop
	// State is the driver's state: live, resetting, connecting, dead, ...
	State string `json:"state,omitempty"`
	// TempC is the composite temperature in °C (nil: unknown).
	TempC *float64 `json:"temp_c,omitempty"`
	// WarnC is the drive's own warning temperature from hwmon (nil: unknown).
	WarnC *float64 `json:"warn_c,omitempty"`
}

var controllerName = regexp.MustCompile(`^nvme\d+$`)

// readControllers lists /sys/class/nvme.
func readControllers(h *Host) []Controller {
	ents, err := h.readDir("/sys/class/nvme")
	if err != nil {
		return nil
	}
	var out []Controller
	for _, e := range ents {
		if !controllerName.MatchString(e.Name()) {
			continue
		}
		d := "/sys/class/nvme/" + e.Name()
		c := Controller{Name: e.Name(), Model: h.readString(d + "/model"), Serial: h.readString(d + "/serial"),
			Firmware: h.readString(d + "/firmware_rev"), Transport: h.readString(d + "/transport"), State: h.readString(d + "/state")}
		for _, hw := range []string{d, d + "/device/hwmon"} {
			hents, _ := h.readDir(hw)
			for _, he := range hents {
				if !strings.HasPrefix(he.Name(), "hwmon") {
					continue
				}
				c.TempC = milli(h.readString(path.Join(hw, he.Name(), "temp1_input")))
				c.WarnC = milli(h.readString(path.Join(hw, he.Name(), "temp1_max")))
				break
			}
			if c.TempC != nil {
				break
			}
		}
		out = append(out, c)
		if len(out) >= 256 {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return natLess(out[i].Name, out[j].Name) })
	return out
}

// milli reads a millidegree value; nil when absent or nonsense.
func milli(s string) *float64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= -100000 || v >= 200000 {
		return nil
	}
	c := float64(v) / 1000
	return &c
}

// natLess orders nvme2 before nvme10.
func natLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func controller(cs []Controller, name string) *Controller {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

// hotC is where an NVMe drive without its own warning threshold is called
// hot: most throttle between 70 and 80 °C.
const hotC = 70

// controllerFindings reports controllers that are not live or are hot, and
// one line per controller.
func controllerFindings(cs []Controller) []Finding {
	var out []Finding
	for _, c := range cs {
		desc := c.Name + ": " + orUnknown(c.Model) + ", firmware " + orUnknown(c.Firmware)
		if c.State != "" {
			desc += ", " + c.State
		}
		if c.TempC != nil {
			desc += fmt.Sprintf(", %.0f °C", *c.TempC)
		}
		switch c.State {
		case "", "live":
		case "resetting", "connecting", "new":
			out = append(out, Finding{Severity: Warning, Kind: "nvme.state", Subject: c.Name, Title: c.Name + " is " + c.State + " (the driver is recovering it)",
				Evidence: []string{desc}, Fixes: []string{"If it stays in this state, the drive has stopped answering: see the kernel-log findings."}})
		default:
			out = append(out, Finding{Severity: Critical, Kind: "nvme.state", Subject: c.Name, Title: c.Name + " is " + c.State + ": the drive is not usable until a reboot, or at all",
				Evidence: []string{desc}, Fixes: []string{"Its data is unreachable now; after a reboot, copy what matters off it first and see the kernel-log findings for why it went."}})
		}
		if c.TempC != nil {
			limit := float64(hotC)
			if c.WarnC != nil && *c.WarnC > 40 && *c.WarnC < limit {
				limit = *c.WarnC
			}
			if *c.TempC >= limit {
				out = append(out, Finding{Severity: Warning, Kind: "nvme.temperature", Subject: c.Name,
					Title: fmt.Sprintf("%s runs hot: %.0f °C", c.Name, *c.TempC), Evidence: []string{desc},
					Fixes: []string{"Hot NVMe drives throttle and some stop answering: give it airflow or a heatsink."}})
			}
		}
		out = append(out, Finding{Severity: Info, Kind: "nvme.drive", Subject: c.Name, Title: desc})
	}
	return out
}
