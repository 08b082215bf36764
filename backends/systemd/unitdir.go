package systemd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/fleet-rebuild/fleet/core"
)

// tempPattern names the temporary files of write; no unit name matches it.
const tempPattern = ".fleet-*.tmp"

// unitDir is the directory fleet owns. Every path it hands out is a valid unit
// name joined to the directory, checked to stay inside it.
type unitDir struct {
	path string // absolute and clean
}

// unitFile is one file found in the directory.
type unitFile struct {
	name string
	hash core.Hash
}

// file returns the path of name's unit file, refusing any name that is not a
// valid unit name (core.ValidateName, which also bounds it to systemd's 255
// bytes) or would leave the directory.
func (d unitDir) file(name string) (string, error) {
	if err := core.ValidateName(name); err != nil {
		return "", err
	}
	p := filepath.Join(d.path, name)
	if filepath.Dir(p) != d.path || filepath.Base(p) != name {
		return "", &core.NameError{Name: name, Reason: "name would leave fleet's unit directory"}
	}
	return p, nil
}

// write replaces name's file atomically: a temporary file in the same directory
// (whose name is never a valid unit name, and which is created, never opened
// through a link), then a rename, which replaces whatever entry has the name
// without following it. The file is mode 0644 whatever the umask.
func (d unitDir) write(name string, data []byte) error {
	p, err := d.file(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.path, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(d.path, tempPattern)
	if err != nil {
		return err
	}
	merr := tmp.Chmod(0o644)
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(merr, werr, cerr); err != nil {
		return errors.Join(err, os.Remove(tmp.Name()))
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return errors.Join(err, os.Remove(tmp.Name()))
	}
	return nil
}

// read returns name's file contents, and false if it has no file.
func (d unitDir) read(name string) ([]byte, bool, error) {
	p, err := d.file(name)
	if err != nil {
		return nil, false, err
	}
	data, err := readNoFollow(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return data, err == nil, err
}

// has reports whether name has a regular file in the directory.
func (d unitDir) has(name string) (bool, error) {
	p, err := d.file(name)
	if err != nil {
		return false, err
	}
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	}
	return fi.Mode().IsRegular(), nil
}

// remove deletes name's file; a file already gone is not an error.
func (d unitDir) remove(name string) error {
	p, err := d.file(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// list returns the unit files in the directory, sorted by name, with the hash
// of their bytes. Anything else in it (temporary files, other names, links,
// directories) is skipped. A missing directory is empty.
func (d unitDir) list() ([]unitFile, error) {
	entries, err := os.ReadDir(d.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]unitFile, 0, len(entries))
	for _, e := range entries {
		if !e.Type().IsRegular() || core.ValidateName(e.Name()) != nil {
			continue
		}
		data, err := readNoFollow(filepath.Join(d.path, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed while listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, unitFile{name: e.Name(), hash: core.HashBytes(data)})
	}
	return out, nil
}

// readNoFollow reads a regular file. It refuses to follow a symbolic link put
// in its place, and anything else that is not a regular file (a FIFO would
// block the open, a directory the read).
func readNoFollow(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link, which fleet does not follow", path)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	return io.ReadAll(f)
}

// removeTemps deletes the temporary files that writes cut short (by a crash)
// left behind. Only the Manager that owns the directory writes there, so at
// Open none is in use.
func (d unitDir) removeTemps() error {
	temps, err := filepath.Glob(filepath.Join(d.path, tempPattern))
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range temps {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// danglingLinks returns, sorted and without repeats, the names of the units
// that have a link in linkDir or in one of its subdirectories (foo.target.wants
// and the like) pointing to a file of this directory that no longer exists:
// units removed whose links were never undone.
func (d unitDir) danglingLinks(linkDir string) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	err := filepath.WalkDir(linkDir, func(p string, e fs.DirEntry, err error) error {
		switch {
		case err != nil && p == linkDir && errors.Is(err, fs.ErrNotExist):
			return fs.SkipAll
		case err != nil:
			return err
		case e.IsDir() && p != linkDir && filepath.Dir(p) != linkDir:
			return fs.SkipDir
		case e.Type()&fs.ModeSymlink == 0:
			return nil
		}
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		name := filepath.Base(target)
		if filepath.Dir(target) != d.path || seen[name] || strings.HasPrefix(name, ".") {
			return nil
		}
		if ok, err := d.has(name); err != nil || ok {
			return nil // not a name fleet writes, or its file is there
		}
		seen[name] = true
		names = append(names, name)
		return nil
	})
	sort.Strings(names)
	return names, err
}
