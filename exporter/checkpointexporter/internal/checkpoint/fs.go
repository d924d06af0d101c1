package checkpoint

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// FS is the file system operations the exporter writes and reads with, so that tests can
// inject faults (disk full, read-only) that root, which the tests run as, would not see.
type FS interface {
	MkdirAll(path string, perm fs.FileMode) error
	CreateTemp(dir, pattern string) (File, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	RemoveAll(path string) error
	ReadFile(name string) ([]byte, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	// SyncDir makes a rename or removal in dir durable.
	SyncDir(dir string) error
}

// File is a file being written.
type File interface {
	io.Writer
	Name() string
	Sync() error
	Close() error
}

// OS is the FS of the operating system.
type OS struct{}

// MkdirAll wraps os.MkdirAll.
func (OS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }

// CreateTemp wraps os.CreateTemp.
func (OS) CreateTemp(dir, pattern string) (File, error) { return os.CreateTemp(dir, pattern) }

// Rename wraps os.Rename.
func (OS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// Remove wraps os.Remove.
func (OS) Remove(name string) error { return os.Remove(name) }

// RemoveAll wraps os.RemoveAll.
func (OS) RemoveAll(path string) error { return os.RemoveAll(path) }

// ReadFile wraps os.ReadFile.
func (OS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

// ReadDir wraps os.ReadDir.
func (OS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// SyncDir opens dir and fsyncs it.
func (OS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// tempPrefix starts the names of files being written; Restore removes leftovers.
const tempPrefix = ".tmp-"

// WriteFileAtomic replaces dir/name with data so that after a crash the file holds either
// the old or the new content: write a temporary file in dir, fsync it, rename it over name,
// fsync dir.
func WriteFileAtomic(fsys FS, dir, name string, data []byte) (err error) {
	f, err := fsys.CreateTemp(dir, tempPrefix+name+"-*")
	if err != nil {
		return fmt.Errorf("creating a temporary file in %q: %w", dir, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			// Leave no partial file behind, also when the disk is full.
			_ = fsys.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %q: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("syncing %q: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("closing %q: %w", tmp, err)
	}
	path := filepath.Join(dir, name)
	if err = fsys.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming %q to %q: %w", tmp, path, err)
	}
	if err = fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("syncing directory %q: %w", dir, err)
	}
	return nil
}

// removeTemps removes leftover temporary files in dir (from a crash mid-write).
func removeTemps(fsys FS, dir string) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() && len(e.Name()) > len(tempPrefix) && e.Name()[:len(tempPrefix)] == tempPrefix {
			_ = fsys.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
