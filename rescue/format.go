package rescue

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/image/qcow2"
	"github.com/vzsalvage/vzsalvage/report"
)

// toQcow2 turns the raw disk images of disks/ into qcow2 images (when the
// rescue is asked for that format), once the files are copied: each under
// a temporary name, renamed when complete, and the raw image removed; the
// devices' image names and disks/damage.json follow.
func toQcow2(rep *Report, disksDir string, opt Options) error {
	for i := range rep.Devices {
		d := &rep.Devices[i]
		if d.Image == "" || !strings.HasSuffix(d.Image, ".raw") {
			continue
		}
		opt.Progress.Phase("qcow2 "+d.Name, d.Size)
		raw := filepath.Join(disksDir, d.Image)
		name := strings.TrimSuffix(d.Image, ".raw") + ".qcow2"
		if err := convertFile(raw, filepath.Join(disksDir, name), d.Size, opt.Compress); err != nil {
			return fmt.Errorf("%s: %w", d.Name, err)
		}
		if err := os.Remove(raw); err != nil {
			return err
		}
		d.Image, d.Path = name, filepath.Join("disks", name)
	}
	dj := report.New(extract.Tool)
	dj.Archives, dj.Devices = rep.Archives, rep.Devices
	return dj.WriteFile(filepath.Join(disksDir, "damage.json"))
}

// convertFile writes the raw image src as a qcow2 image dst, atomically.
func convertFile(src, dst string, size int64, compress bool) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".partial*")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	if err := qcow2.Convert(out, in, size, qcow2.WriterOptions{Compress: compress}); err != nil {
		return err
	}
	if err := out.Chmod(0o644); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(out.Name(), dst); err != nil {
		return err
	}
	done = true
	return nil
}
