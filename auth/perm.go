package auth

import (
	"fmt"
	"path"
	"strings"
)

// Perm is a set of things a user may do in a directory.
type Perm uint16

// The permissions, as the users file names them.
const (
	PermList      Perm = 1 << iota // LIST, NLST, MLSD, MLST, STAT of a path
	PermDownload                   // RETR, HASH and the X* hashes
	PermUpload                     // STOR, STOU, APPE of a new file
	PermOverwrite                  // STOR, APPE over an existing file; MFMT, SITE CHMOD
	PermDelete                     // DELE, RMD
	PermRename                     // RNFR/RNTO (and overwrite to replace a file)
	PermMkdir                      // MKD

	PermNone     Perm = 0
	PermReadOnly      = PermList | PermDownload
	PermAll           = PermList | PermDownload | PermUpload | PermOverwrite | PermDelete | PermRename | PermMkdir
)

var permNames = []struct {
	name string
	p    Perm
}{
	{"list", PermList}, {"download", PermDownload}, {"upload", PermUpload}, {"overwrite", PermOverwrite},
	{"delete", PermDelete}, {"rename", PermRename}, {"mkdir", PermMkdir},
	{"all", PermAll}, {"none", PermNone}, {"read-only", PermReadOnly},
}

// ParsePerm reads a comma- or space-separated list of permission names:
// list, download, upload, overwrite, delete, rename, mkdir, and the
// shorthands all, none and read-only (list and download).
func ParsePerm(s string) (Perm, error) {
	var p Perm
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		found := false
		for _, n := range permNames {
			if strings.EqualFold(w, n.name) {
				p, found = p|n.p, true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown permission %q (list, download, upload, overwrite, delete, rename, mkdir, all, none)", w)
		}
	}
	return p, nil
}

// String names the permissions in p, comma-separated ("none" for none).
func (p Perm) String() string {
	var out []string
	for _, n := range permNames[:7] {
		if p&n.p != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ",")
}

// DirPerm gives the permissions in a directory and below it, down to a
// deeper DirPerm.
type DirPerm struct {
	Path string // virtual, absolute and clean: "/incoming"
	Perm Perm
}

// At returns the permissions at the virtual path p: those of the deepest
// DirPerm that holds p, else all (Write) or read-only.
func (ps Permissions) At(p string) Perm {
	best, perm := -1, PermReadOnly
	if ps.Write {
		perm = PermAll
	}
	for _, d := range ps.Dirs {
		if len(d.Path) > best && within(p, d.Path) {
			best, perm = len(d.Path), d.Perm
		}
	}
	return perm
}

// within reports whether p is dir or below it (both clean and absolute).
func within(p, dir string) bool {
	return dir == "/" || p == dir || strings.HasPrefix(p, dir+"/")
}

// CleanDir makes a rule's path absolute and clean.
func CleanDir(p string) string {
	return path.Clean("/" + p)
}

// IsAnonymous says whether name is one of the anonymous logins
// ("anonymous" and "ftp", RFC 1635).
func IsAnonymous(name string) bool { return name == "anonymous" || name == "ftp" }
