package volume

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// fsCase makes one filesystem image with its real mkfs.
type fsCase struct {
	name string
	size int64
	want string // FS Detect must say
	mk   func(t *testing.T, img string)
}

func run(tool string, args ...string) func(t *testing.T, img string) {
	return func(t *testing.T, img string) { testutil.Run(t, tool, append(args, img)...) }
}

func luks(typ string, extra ...string) func(t *testing.T, img string) {
	return func(t *testing.T, img string) {
		key := filepath.Join(t.TempDir(), "key")
		if err := os.WriteFile(key, []byte("secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"luksFormat", "-q", "--type", typ, "--key-file", key,
			"--pbkdf-force-iterations", "1000"}, extra...)
		if typ == "luks2" {
			args = append(args, "--pbkdf", "pbkdf2")
		}
		testutil.Run(t, "cryptsetup", append(args, img)...)
	}
}

var fsCases = []fsCase{
	{"ext2", 8 << 20, "ext2", run("mke2fs", "-q", "-F", "-t", "ext2", "-L", "lab-ext2")},
	{"ext3", 8 << 20, "ext3", run("mke2fs", "-q", "-F", "-t", "ext3", "-L", "lab-ext3")},
	{"ext4", 20 << 20, "ext4", run("mke2fs", "-q", "-F", "-t", "ext4", "-L", "lab-ext4")},
	{"ext4-4k", 160 << 20, "ext4", run("mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096")},
	{"xfs", 300 << 20, "xfs", run("mkfs.xfs", "-q", "-L", "labxfs")},
	{"btrfs", 128 << 20, "btrfs", run("mkfs.btrfs", "-q", "-L", "lab-btrfs")},
	{"fat12", 2 << 20, "vfat", run("mkfs.vfat", "-F", "12", "-n", "LABF12")},
	{"fat16", 20 << 20, "vfat", run("mkfs.vfat", "-F", "16", "-n", "LABF16")},
	{"fat32", 40 << 20, "vfat", run("mkfs.vfat", "-F", "32", "-n", "LABF32")},
	{"fat-nolabel", 4 << 20, "vfat", run("mkfs.vfat")},
	{"exfat", 8 << 20, "exfat", run("mkfs.exfat", "-L", "labexfat")},
	{"ntfs", 8 << 20, "ntfs", run("mkntfs", "-q", "-F", "-Q", "-L", "lab-ntfs")},
	{"swap", 8 << 20, "swap", run("mkswap", "-L", "lab-swap")},
	{"luks1", 20 << 20, "crypto_LUKS", luks("luks1")},
	{"luks2", 20 << 20, "crypto_LUKS", luks("luks2", "--label", "lab-luks")},
}

// TestDetectRealFilesystems runs each filesystem's own mkfs and compares
// Detect with blkid -p on the same image.
func TestDetectRealFilesystems(t *testing.T) {
	for _, c := range fsCases {
		t.Run(c.name, func(t *testing.T) {
			img := sparseFile(t, c.name+".img", c.size)
			c.mk(t, img)
			d := openDisk(t, c.name, img)
			fs, uuid, label := Detect(d.R, d.Size)
			want := blkid(t, img)
			if fs != c.want || fs != want["TYPE"] {
				t.Fatalf("fs = %q, want %q (blkid %q)", fs, c.want, want["TYPE"])
			}
			if uuid != want["UUID"] || uuid == "" {
				t.Errorf("uuid = %q, blkid %q", uuid, want["UUID"])
			}
			if label != want["LABEL"] {
				t.Errorf("label = %q, blkid %q", label, want["LABEL"])
			}
		})
	}
}

// TestDetectBackupSuperblock damages the primary superblock or boot sector
// of the formats that keep a copy, and checks the copy is found (with a
// note saying so) and gives the same identity.
func TestDetectBackupSuperblock(t *testing.T) {
	zero := func(off, n int64) func(t *testing.T, img string) {
		return func(t *testing.T, img string) { patch(t, img, off, make([]byte, n)) }
	}
	cases := []struct {
		fs     string
		damage func(t *testing.T, img string)
	}{
		{"ext4", zero(1024, 1024)},
		{"ext4-4k", zero(1024, 1024)},
		{"btrfs", zero(64<<10, 4096)},
		{"fat32", zero(0, 512)},
		{"exfat", zero(0, 512)},
		{"ntfs", zero(0, 512)},
	}
	for _, c := range cases {
		t.Run(c.fs, func(t *testing.T) {
			var fc fsCase
			for _, f := range fsCases {
				if f.name == c.fs {
					fc = f
				}
			}
			img := sparseFile(t, c.fs+".img", fc.size)
			fc.mk(t, img)
			d := openDisk(t, c.fs, img)
			before := detect(d.R, d.Size)
			c.damage(t, img)
			after := detect(d.R, d.Size)
			if after.fs != before.fs || after.uuid != before.uuid {
				t.Fatalf("after damage: %+v, before %+v", after, before)
			}
			if after.label != before.label {
				t.Errorf("label after damage %q, before %q", after.label, before.label)
			}
			if !strings.Contains(after.note, "backup") && !strings.Contains(after.note, "mirror") {
				t.Errorf("note = %q, want one about the backup copy", after.note)
			}
		})
	}
}

// TestDetectNothing: zeros, random bytes and a partitioned disk are no
// filesystem.
func TestDetectNothing(t *testing.T) {
	img := sparseFile(t, "zero.img", 4<<20)
	d := openDisk(t, "zero", img)
	if fs, _, _ := Detect(d.R, d.Size); fs != "" {
		t.Errorf("zeros detected as %q", fs)
	}
	testutil.Run(t, "sgdisk", "-n", "1:2048:4095", img)
	if fs, _, _ := Detect(d.R, d.Size); fs != "" {
		t.Errorf("GPT disk detected as %q", fs)
	}
}
