package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
)

// TestContainerCommands: inspect shows pct.conf, verify says intact, ls
// lists the root filesystem and a directory, cp copies a file and a tree,
// on a container backup made by GNU tar with vzdump's flags and zstd.
func TestContainerCommands(t *testing.T) {
	testutil.RequireTool(t, "tar")
	testutil.RequireTool(t, "setfacl")
	testutil.RequireTool(t, "setfattr")
	dir := t.TempDir()
	src := filepath.Join(dir, "root")
	os.Mkdir(src, 0o755)
	files := testimg.ContainerTree(t, src, testimg.ContainerOptions{Files: 150, Seed: 11, Text: true, MaxSize: 5000})
	arc := testimg.ContainerArchive(t, src, dir, ".zst", "2025_12_15-03_00_03")

	code, out, errs := vz("inspect", arc)
	if code != 0 || !strings.Contains(out, "container backup (tar), compression zstd") || !strings.Contains(out, "--- pct.conf") ||
		!strings.Contains(out, "hostname: ct101") || !strings.Contains(out, "lxc 101, backup of 2025-12-15 03:00:03") {
		t.Errorf("inspect: %d %s %s", code, out, errs)
	}
	code, out, errs = vz("verify", "-q", arc)
	if code != 0 || !strings.Contains(out, "intact (checksum ok)") {
		t.Errorf("verify: %d %s %s", code, out, errs)
	}
	cache := filepath.Join(dir, "cache")
	code, out, errs = vz("ls", "-q", "--cache", cache, arc)
	if code != 0 || !strings.Contains(out, "rootfs") || !strings.Contains(out, "tar") {
		t.Errorf("ls: %d %s %s", code, out, errs)
	}
	code, out, _ = vz("ls", "-q", "--json", arc, "rootfs:/usr/bin")
	var ents []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &ents) != nil || len(ents) == 0 {
		t.Fatalf("ls rootfs:/usr/bin: %d %s", code, out)
	}
	want, _ := os.ReadFile(filepath.Join(src, files[5]))
	dest := filepath.Join(dir, "one")
	if code, _, errs := vz("cp", "-q", arc, "rootfs:/"+files[5], dest); code != 0 {
		t.Fatalf("cp: %d %s", code, errs)
	}
	if got, _ := os.ReadFile(dest); string(got) != string(want) {
		t.Errorf("cp %s: content differs", files[5])
	}
	tree := filepath.Join(dir, "tree")
	if code, _, errs := vz("cp", "-r", "-q", arc, "rootfs:/etc", tree); code != 0 {
		t.Fatalf("cp -r: %d %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(tree)); err != nil {
		t.Error(err)
	}
	if entries, _ := os.ReadDir(cache); len(entries) > 0 {
		t.Errorf("a container backup was extracted to the cache: %v", entries)
	}
}
