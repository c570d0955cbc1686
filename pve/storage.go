package pve

import (
	"bufio"
	"bytes"
	"path"
	"strings"
)

// Section is one entry of a Proxmox VE section-config file
// (/etc/pve/storage.cfg, /etc/pve/jobs.cfg): a "type: id" line, then
// indented "key value" lines; a key alone is a flag (value "").
type Section struct {
	Type    string
	ID      string
	Options map[string]string
}

// maxSections bounds what ParseSections keeps, whatever the file holds.
const maxSections = 10000

// ParseSections reads a section-config file. It never fails: lines it
// does not understand are skipped.
func ParseSections(data []byte) []Section {
	var out []Section
	var cur *Section
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() && len(out) <= maxSections {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if raw[0] != ' ' && raw[0] != '\t' {
			cur = nil
			typ, id, ok := strings.Cut(line, ":")
			typ, id = strings.TrimSpace(typ), strings.TrimSpace(id)
			if !ok || typ == "" || id == "" || strings.ContainsAny(typ, " \t") || strings.ContainsAny(id, " \t") {
				continue
			}
			out = append(out, Section{Type: typ, ID: id, Options: map[string]string{}})
			cur = &out[len(out)-1]
			continue
		}
		if cur == nil {
			continue
		}
		key, val, _ := strings.Cut(line, " ")
		cur.Options[key] = strings.TrimSpace(val)
	}
	if len(out) > maxSections {
		out = out[:maxSections]
	}
	return out
}

// Storage is one storage of /etc/pve/storage.cfg, as far as backups go.
type Storage struct {
	ID   string `json:"id"`
	Type string `json:"type"` // dir, nfs, cifs, pbs, cephfs, btrfs, lvmthin, zfspool, ...
	// Path is the local directory of a file-based storage ("" for others;
	// /mnt/pve/ID for network storages that do not say).
	Path    string   `json:"path,omitempty"`
	Content []string `json:"content,omitempty"`
	// Server, Export (nfs), Share (cifs), Datastore (pbs) say where a
	// network storage's data really is.
	Server    string `json:"server,omitempty"`
	Export    string `json:"export,omitempty"`
	Share     string `json:"share,omitempty"`
	Datastore string `json:"datastore,omitempty"`
	// MountOptions is the "options" line of an nfs or cifs storage.
	MountOptions string `json:"mount_options,omitempty"`
	// IsMountpoint is the is_mountpoint option of a dir storage: "yes",
	// "1", a path, or "" when not set.
	IsMountpoint string `json:"is_mountpoint,omitempty"`
	Disabled     bool   `json:"disabled,omitempty"`
	// ContentDirs overrides the default sub-directory per content type
	// ("content-dirs backup=custom/dir", relative to Path).
	ContentDirs map[string]string `json:"content_dirs,omitempty"`
	// Nodes lists the cluster nodes the storage applies to (none: all).
	Nodes []string `json:"nodes,omitempty"`
}

// OnNode reports whether the storage applies to the named node.
func (s Storage) OnNode(node string) bool {
	if len(s.Nodes) == 0 || node == "" {
		return true
	}
	for _, n := range s.Nodes {
		if n == node {
			return true
		}
	}
	return false
}

// fileBased lists the storage types whose backups are files under Path.
var fileBased = map[string]bool{"dir": true, "nfs": true, "cifs": true, "cephfs": true, "glusterfs": true, "btrfs": true}

// HasContent reports whether the storage holds content type c ("backup").
// A pbs storage holds backups whatever its content line says.
func (s Storage) HasContent(c string) bool {
	if s.Type == "pbs" && c == "backup" {
		return true
	}
	for _, x := range s.Content {
		if x == c {
			return true
		}
	}
	return false
}

// FileBased reports whether the storage keeps its backups as files in a
// local directory (dir, nfs, cifs, cephfs, glusterfs, btrfs).
func (s Storage) FileBased() bool { return fileBased[s.Type] }

// Network reports whether the storage's directory is a network mount.
func (s Storage) Network() bool {
	return s.Type == "nfs" || s.Type == "cifs" || s.Type == "cephfs" || s.Type == "glusterfs"
}

// DumpDir is where vzdump writes the storage's backups: PATH/dump, or the
// content-dirs override; "" for storages that are not file-based.
func (s Storage) DumpDir() string {
	if !s.FileBased() || s.Path == "" {
		return ""
	}
	if d := s.ContentDirs["backup"]; d != "" {
		return path.Join(s.Path, d)
	}
	return path.Join(s.Path, "dump")
}

// ParseStorageConfig reads /etc/pve/storage.cfg.
func ParseStorageConfig(data []byte) []Storage {
	var out []Storage
	for _, sec := range ParseSections(data) {
		o := sec.Options
		s := Storage{ID: sec.ID, Type: sec.Type, Path: o["path"], Server: o["server"], Export: o["export"],
			Share: o["share"], Datastore: o["datastore"], MountOptions: o["options"], IsMountpoint: o["is_mountpoint"]}
		if _, ok := o["disable"]; ok && o["disable"] != "0" {
			s.Disabled = true
		}
		s.Content = list(o["content"])
		s.Nodes = list(o["nodes"])
		if s.Path == "" && s.Network() {
			s.Path = "/mnt/pve/" + s.ID
		}
		if cd := o["content-dirs"]; cd != "" {
			s.ContentDirs = map[string]string{}
			for _, kv := range strings.Split(cd, ",") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					s.ContentDirs[strings.TrimSpace(k)] = strings.TrimSpace(v)
				}
			}
		}
		out = append(out, s)
	}
	return out
}

// list splits a comma-separated option value.
func list(v string) []string {
	var out []string
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// BackupJob is one "vzdump:" entry of /etc/pve/jobs.cfg (a scheduled
// backup made in the GUI).
type BackupJob struct {
	ID       string `json:"id"`
	Storage  string `json:"storage,omitempty"` // "" means vzdump.conf's, or local
	Schedule string `json:"schedule,omitempty"`
	Enabled  bool   `json:"enabled"`
	// Guests is the vmid list ("100,101"), "all" for every guest.
	Guests string `json:"guests,omitempty"`
}

// ParseJobs reads the backup jobs of /etc/pve/jobs.cfg.
func ParseJobs(data []byte) []BackupJob {
	var out []BackupJob
	for _, sec := range ParseSections(data) {
		if sec.Type != "vzdump" {
			continue
		}
		o := sec.Options
		j := BackupJob{ID: sec.ID, Storage: o["storage"], Schedule: o["schedule"], Enabled: o["enabled"] != "0", Guests: o["vmid"]}
		if o["all"] == "1" {
			j.Guests = "all"
		}
		out = append(out, j)
	}
	return out
}

// VzdumpConf is what vzsalvage reads from /etc/vzdump.conf (the defaults
// of every backup).
type VzdumpConf struct {
	// DumpDir is a directory that replaces the storage ("dumpdir:").
	DumpDir string `json:"dumpdir,omitempty"`
	// Storage is the default storage id ("storage:").
	Storage string `json:"storage,omitempty"`
	// Script is the hook script vzdump runs ("script:").
	Script string `json:"script,omitempty"`
}

// ParseVzdumpConf reads /etc/vzdump.conf: "key: value" lines, # comments.
func ParseVzdumpConf(data []byte) VzdumpConf {
	var c VzdumpConf
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch strings.TrimSpace(key) {
		case "dumpdir":
			c.DumpDir = val
		case "storage":
			c.Storage = val
		case "script":
			c.Script = val
		}
	}
	return c
}
