// Package report holds the machine-readable account of what vzsalvage read
// and what it found damaged: damage.json (extract) and report.json (rescue),
// per the schema in the design. Fields may be added, never renamed.
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
)

// Report is damage.json / report.json.
type Report struct {
	Tool         string        `json:"tool"`
	Archives     []Archive     `json:"archives"`
	Devices      []Device      `json:"devices"`
	Volumes      []Volume      `json:"volumes"`
	DamagedFiles []DamagedFile `json:"damaged_files"`
	// Suspects lists clusters that other generations suggest are silently
	// damaged (rescue --also), not located by any check of their own.
	Suspects []Suspect `json:"suspects,omitempty"`
	// CopyStopped says why a rescue stopped copying files before the end
	// (its output budget was spent); empty when it did not.
	CopyStopped string `json:"copy_stopped,omitempty"`
	// Config is the VM config the backup holds, as written by rescue
	// (relative to the report's directory), or "".
	Config string `json:"config,omitempty"`
	// AbsentDisks lists the disks the VM config names that the backup does
	// not hold.
	AbsentDisks []AbsentDisk `json:"absent_disks,omitempty"`
	// Fragments lists, for a container backup, what was restored of the
	// members whose headers were lost: runs of content the decoder
	// vouches for, without a name (lost+found/@OFFSET). Unverified as
	// files: not in damaged_files, and not counted as files restored.
	Fragments []Fragment `json:"fragments,omitempty"`
}

// Fragment is a run of a container's tar stream found where its headers
// were lost, restored as a file of unknown name: every byte of it decoded
// untainted (right where the stream holds it), but which file it is, and
// whether it is all of that file and nothing more, is not known: where it
// begins and ends is inferred from where the damage stops and starts
// again (most often exactly one file's content).
type Fragment struct {
	Volume string `json:"volume"`
	Path   string `json:"path"` // "/lost+found/@OFFSET", in the volume's tree
	// StreamOffset is its first byte's offset in the decompressed tar
	// stream (the offsets of the archive's problems).
	StreamOffset int64 `json:"stream_offset"`
	Size         int64 `json:"size"`
	// Trimmed counts zero bytes after it left out as tar padding (they may
	// have been the file's own).
	Trimmed int64 `json:"trimmed_zeros,omitempty"`
	// State is "unverified": its bytes are right, its boundaries inferred.
	State string `json:"state"`
}

// FragmentUnverified is a Fragment's state.
const FragmentUnverified = "unverified"

// AbsentDisk is a disk of the VM config that is not in the backup.
type AbsentDisk struct {
	Key    string `json:"key"` // "scsi1"
	Volume string `json:"volume"`
	Size   string `json:"size,omitempty"`
	// Excluded: backup=0 in the config, so vzdump left it out on purpose.
	Excluded bool `json:"excluded"`
}

// Suspect is a cluster whose archive's checksum failed and whose content
// differs from that of two other generations that agree with each other.
type Suspect struct {
	Device  string   `json:"device"`
	Offset  int64    `json:"offset"`
	Length  int64    `json:"length"`
	Archive string   `json:"archive"`
	Agree   []string `json:"agree"`
	Reason  string   `json:"reason"`
}

// Status is an archive's overall state.
type Status string

// Archive statuses.
const (
	Intact     Status = "intact"
	Damaged    Status = "damaged"
	Unreadable Status = "unreadable" // it could not be read at all
)

// Archive is one backup file that was read.
type Archive struct {
	Path   string `json:"path"`
	Status Status `json:"status"`
	// Checksum is the state of the archive's own stream checksum.
	Checksum    codec.Checksum `json:"checksum"`
	Compression string         `json:"compression"`
	Payload     string         `json:"payload,omitempty"`
	Guest       string         `json:"guest,omitempty"`
	VMID        int            `json:"vmid,omitempty"`
	Time        string         `json:"time,omitempty"`
	UUID        string         `json:"uuid,omitempty"`
	Ctime       int64          `json:"ctime,omitempty"`
	// Problems found, with offsets in the layer they name ("zstd": the
	// compressed file; "vma": the decompressed stream).
	Problems     []damage.Problem `json:"problems"`
	ProblemCount int              `json:"problem_count"`
	// EndsEarly is the problem that says the archive ends before its data
	// is complete (a cut file), or nil: everything after that place is
	// missing.
	EndsEarly *damage.Problem `json:"ends_early,omitempty"`
	// Sidecar says how the archive's protect record (vzsalvage protect)
	// was used, when there is one.
	Sidecar *Sidecar `json:"sidecar,omitempty"`
	// Redecode says how the archive was decoded a second time with the
	// lost bytes taken from older backups (rescue --also), when it was.
	Redecode *Redecode `json:"redecode,omitempty"`
	// Bomb is the problem that says the decompressed stream went on far
	// past what the archive's disks can hold (a decompression bomb), or
	// nil: reading stopped there.
	Bomb *damage.Problem `json:"bomb,omitempty"`
	// Merge says how copies of the archive (rescue --also COPY) were merged
	// with it at the compressed-byte level before it was read, when they
	// were.
	Merge *Merge `json:"merge,omitempty"`
	// Configs lists the config files stored in the archive.
	Configs []string `json:"configs,omitempty"`
	// ConfigFiles maps each config's name to the file it was written to
	// (relative to the directory of the disk images), where extracted. A
	// config whose name is taken by another output is written under
	// another name.
	ConfigFiles map[string]string `json:"config_files,omitempty"`
}

// Sidecar is the use a read made of an archive's protect record: every
// cluster read was compared with the hash recorded the day the backup was
// made. Wrong clusters (silent damage included) are in the devices' damage;
// Confirmed counts clusters the decoder had flagged whose content the record
// proved right. For a container backup the record holds every member's
// hashes instead: WrongMembers differ from the original's (headers or
// content), ConfirmedMembers were flagged by the decoder and proved right,
// MissingMembers were not found at all.
type Sidecar struct {
	Path             string `json:"path,omitempty"`
	Used             bool   `json:"used"`
	Note             string `json:"note,omitempty"`
	Wrong            int64  `json:"wrong_clusters"`
	Confirmed        int64  `json:"confirmed_clusters"`
	WrongMembers     int64  `json:"wrong_members,omitempty"`
	ConfirmedMembers int64  `json:"confirmed_members,omitempty"`
	MissingMembers   int64  `json:"missing_members,omitempty"`
}

// Redecode is the second decoding of a damaged archive with donors: the
// output its first read lost taken from older backups (or copies) at the
// same device offsets, and what copies it decoded anew. Verified: the
// archive's own checksum then matched, so every disk is the original bit
// for bit (no byte is damaged).
type Redecode struct {
	Donors       []string       `json:"donors"`
	DonatedBytes int64          `json:"donated_bytes"`
	Passes       int            `json:"passes"`
	Checksum     codec.Checksum `json:"checksum"`
	Verified     bool           `json:"verified"`
	Note         string         `json:"note"`
	// ResumedAt is the stream offset the passes started decoding at (the
	// extent before the first damaged block), and ResumedInput the archive
	// file offset they started reading at; 0 when they read the whole
	// stream again.
	ResumedAt    int64 `json:"resumed_at,omitempty"`
	ResumedInput int64 `json:"resumed_input,omitempty"`
}

// Merge is the merge of an archive with its copies where they differ
// (package merge): the bytes chosen by trial decoding and the stream's
// checksum. Verified: the merged archive decodes without a problem and its
// checksum matches, so it is the original bit for bit; it was read in the
// archive's place. Damage gives, per file (the archive and each copy), the
// byte ranges of the file that differ from the merged archive: when
// verified, where that file is damaged.
type Merge struct {
	Copies         []string               `json:"copies"`
	Places         int                    `json:"places"`
	DifferingBytes int64                  `json:"differing_bytes"`
	Trials         int                    `json:"trials"`
	Verified       bool                   `json:"verified"`
	Damage         map[string]*damage.Map `json:"damage,omitempty"`
	Note           string                 `json:"note"`
}

// Clusters counts a device's 64 KiB clusters by state.
type Clusters struct {
	Total   int64 `json:"total"`
	OK      int64 `json:"ok"`
	Zero    int64 `json:"zero"`
	Tainted int64 `json:"tainted"`
	Lost    int64 `json:"lost"`
}

// Device is one disk of the guest.
type Device struct {
	Name  string `json:"name"`
	ID    int    `json:"id,omitempty"`
	Size  int64  `json:"size"`
	Image string `json:"image,omitempty"`
	// Path is the image's path relative to the report's directory (rescue:
	// "disks/disk-drive-scsi0.raw"); Image is its name in the directory of
	// damage.json.
	Path     string   `json:"path,omitempty"`
	Clusters Clusters `json:"clusters"`
	// Damage lists every byte range whose content is not known to be
	// right; a range not listed is byte-identical to the original disk.
	Damage *damage.Map `json:"damage"`
	// DamageMerged counts damage ranges merged into wider ones to keep the
	// account small (a damaged or crafted archive can list millions): the
	// damage then covers more bytes than it measured, never fewer.
	DamageMerged int `json:"damage_merged,omitempty"`
	// Sources says, where generations were combined, which archive each
	// range came from.
	Sources []Source `json:"sources,omitempty"`
}

// Stored returns how many bytes of the device the backup holds: its
// clusters (of 64 KiB, as Clusters counts them) that are neither all-zero
// nor lost, or the whole size when the clusters were not counted. A
// guest's disk size is its own claim; this is what the archive carries.
func (d Device) Stored() int64 {
	c := d.Clusters
	if c.Total == 0 {
		return d.Size
	}
	return min(d.Size, max(0, c.Total-c.Zero-c.Lost)*65536)
}

// Source says, for a range of a device combined from several backups,
// which older archive it came from: "filled" (the newest had it damaged;
// these bytes are that older night's, so the range stays in damage) or
// "confirmed" (the newest's tainted bytes equal that archive's clean copy,
// so they are known right).
type Source struct {
	Offset  int64      `json:"offset"`
	Length  int64      `json:"length"`
	Archive string     `json:"archive"`
	Kind    SourceKind `json:"kind"`
	// KnownAgreed counts, for a filled range, the bytes the newest backup
	// knew in its clusters that the older one agreed with (a cluster is
	// filled only when every known byte agrees).
	KnownAgreed int64 `json:"known_agreed,omitempty"`
}

// SourceKind says how an older backup served a range.
type SourceKind string

// Source kinds.
const (
	Filled    SourceKind = "filled"
	Confirmed SourceKind = "confirmed"
	// Donor: the newest archive decoded again with the bytes it lost
	// taken from that archive; these bytes depend on them (another
	// night's content, not known right: the range stays in damage).
	Donor SourceKind = "donor"
)

// Volume is a partition, LV or whole-disk filesystem.
type Volume struct {
	ID           string `json:"id"`
	Device       string `json:"device"`
	Offset       int64  `json:"offset"`
	Size         int64  `json:"size"`
	Kind         string `json:"kind,omitempty"`
	FS           string `json:"fs"`
	UUID         string `json:"uuid"`
	Label        string `json:"label"`
	Name         string `json:"name,omitempty"`
	PartType     string `json:"part_type,omitempty"`
	DamagedBytes int64  `json:"damaged_bytes"`
	// Empty: the volume holds no data at all in the backup (all zeros).
	Empty        bool     `json:"empty,omitempty"`
	Dir          string   `json:"dir,omitempty"`
	Files        int      `json:"files"`
	DamagedFiles int      `json:"damaged_files"`
	Notes        []string `json:"notes,omitempty"`
	// Error says why the volume's files could not be (all) copied.
	Error string `json:"error,omitempty"`
	// DuplicateOf names an earlier volume that is the same filesystem
	// (overlapping partitions with the same start): its files were copied
	// once, there.
	DuplicateOf string `json:"duplicate_of,omitempty"`
}

// DamagedFile is a guest file with at least one byte (data or metadata)
// in damage.
type DamagedFile struct {
	Volume string `json:"volume"`
	Path   string `json:"path"`
	// State is "lost", "partial", "mixed" (every byte present, some from
	// an older backup) or "metadata".
	State fs.State `json:"state"`
	// Size is the file's size in bytes.
	Size     int64 `json:"size"`
	BadBytes int64 `json:"bad_bytes"`
	// MissingBytes counts the bad bytes the backup lost outright (zeros in
	// the copy); the other bad bytes hold what was decoded, unverified.
	MissingBytes int64 `json:"missing_bytes"`
	// Ranges are the bad bytes as offsets in the file (lost: missing;
	// tainted: decoded but unverified), at most 32: past that neighbours
	// are merged, so a range may hold good bytes too, never hide a bad one.
	Ranges []damage.Range `json:"ranges,omitempty"`
	// Problems the filesystem reader found in the file itself.
	Problems []string `json:"problems,omitempty"`
}

// New returns an empty report with non-nil lists.
func New(tool string) *Report {
	return &Report{Tool: tool, Archives: []Archive{}, Devices: []Device{}, Volumes: []Volume{}, DamagedFiles: []DamagedFile{}}
}

// WriteFile writes the report as indented JSON to path, through a
// temporary file renamed into place.
func (r *Report) WriteFile(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, append(b, '\n'), 0o644)
}

// WriteFileAtomic writes data to a temporary file next to path and renames
// it into place.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := CreateTemp(path)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return TargetError(err, tmp.Name(), path)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fail(err)
	}
	return nil
}

// CreateTemp creates the hidden temporary file (".NAME.tmp*", beside path:
// on the same filesystem) that becomes path once complete and renamed. Its
// error names path, not the temporary name.
func CreateTemp(path string) (*os.File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	var pe *os.PathError
	if errors.As(err, &pe) {
		return nil, fmt.Errorf("cannot write %s: %w", path, pe.Err)
	}
	return f, err
}

// TargetError turns an error on the temporary file tmp (its creation, a
// write, the rename) into one that names path, the file the user asked for:
// "cannot write /srv/x.vma.zst: no space left on device". Other errors are
// returned as they are.
func TargetError(err error, tmp, path string) error {
	var pe *os.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe) && pe.Path == tmp:
		return fmt.Errorf("cannot write %s: %w", path, pe.Err)
	case errors.As(err, &le) && le.Old == tmp:
		if st, serr := os.Stat(path); serr == nil && st.IsDir() {
			return fmt.Errorf("cannot write %s: it is a directory", path)
		}
		return fmt.Errorf("cannot write %s: %w", path, le.Err)
	}
	return err
}

// ReadFile reads a report written by WriteFile.
func ReadFile(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// Parse decodes a report. The file may have been changed by anyone:
// damage maps are normalised and bounded (damage.Map.UnmarshalJSON).
func Parse(b []byte) (*Report, error) {
	r := New("")
	if err := json.Unmarshal(b, r); err != nil {
		return nil, err
	}
	return r, nil
}

// MkdirAll makes an output directory and its parents, as os.MkdirAll, with
// an error in words when something in the way is not a directory.
func MkdirAll(dir string) error {
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		return nil
	}
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if st, serr := os.Stat(d); serr == nil {
			if !st.IsDir() {
				return fmt.Errorf("cannot make the output directory %s: %s exists and is not a directory (choose another -o)", dir, d)
			}
			break
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return fmt.Errorf("cannot make the output directory: %w", err)
}

// MayBeFlip reports whether the reader of a zstd archive without a sidecar
// found a compressed block that fails to decode (not only a checksum
// mismatch or a cut file): a flipped bit there is what 'vzsalvage repair'
// without a sidecar can mend.
func (a Archive) MayBeFlip() bool {
	if a.Compression != string(codec.Zstd) || a.Sidecar != nil && a.Sidecar.Used {
		return false
	}
	for _, p := range a.Problems {
		if p.Layer == "zstd" && p.Kind == damage.Corrupt {
			return true
		}
	}
	return false
}
