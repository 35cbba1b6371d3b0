// Package peers configures the C FTP servers that Debian ships — pure-ftpd,
// ProFTPD and vsftpd — for the integration tests and the benchmarks. The
// three conflict as packages; .ci/run unpacks them side by side under
// $FERRY_PEERS (apt-get download, dpkg -x). Each function writes a server's
// configuration and account into a directory of its own and returns its
// command, not started: the caller runs it as it runs its processes.
// The servers chroot and drop privileges, so they run as root.
package peers

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// Options place one server.
type Options struct {
	Bin  string // the server's binary
	Dir  string // a directory of its own: configuration, account, files
	Host string
	Port int
	Pasv [2]int // its passive port range
	// User and Crypt are the account of pure-ftpd and ProFTPD, Crypt its
	// password hashed by SHA512Crypt. vsftpd's account is anonymous.
	User, Crypt string
}

// Setup is a configured server.
type Setup struct {
	Cmd      *exec.Cmd // not started
	Addr     string    // its control address
	User     string    // "anonymous" for vsftpd, else Options.User
	Base     string    // the FTP directory the account may write in
	Disk     string    // that directory on disk
	UID, GID int       // owner of Disk, the server's unprivileged user
}

// Find finds bin of the Debian package pkg unpacked under dir.
func Find(dir, pkg, bin string) (string, error) {
	for _, sub := range []string{"usr/sbin", "usr/bin"} {
		p := filepath.Join(dir, pkg, sub, bin)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s (Debian package %s) is not unpacked under %q (see .ci/run)", bin, pkg, dir)
}

// ModuleDir is the directory of the loadable modules of the proftpd binary.
func ModuleDir(proftpd string) string {
	return filepath.Join(filepath.Dir(filepath.Dir(proftpd)), "lib", "proftpd")
}

// SHA512Crypt hashes pw in the crypt(3) format the servers read, with the
// given Python (which must have the crypt module).
func SHA512Crypt(python, pw string) (string, error) {
	out, err := exec.Command(python, "-W", "ignore", "-c",
		"import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_SHA512)))", pw).Output()
	if err != nil {
		return "", fmt.Errorf("crypt: %v", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// SystemUser is an unprivileged system account (with an existing home,
// which vsftpd needs) that owns the files the servers write.
func SystemUser() (uid, gid int, name string, err error) {
	for _, name := range []string{"daemon", "bin", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(u.HomeDir); err == nil && fi.IsDir() {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			return uid, gid, name, nil
		}
	}
	return 0, 0, "", fmt.Errorf("no unprivileged system user with a home directory")
}

// OwnedDir makes parent/files, owned by uid, and opens the way down to it
// (temporary directories are made 0700).
func OwnedDir(parent string, uid, gid int) (string, error) {
	d := filepath.Join(parent, "files")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", err
	}
	for p := parent; p != os.TempDir() && p != "/" && p != "."; p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	return d, os.Chown(d, uid, gid)
}

// home makes the account's directory under o.Dir and the setup around it.
func (o Options) home() (*Setup, error) {
	uid, gid, _, err := SystemUser()
	if err != nil {
		return nil, err
	}
	d, err := OwnedDir(o.Dir, uid, gid)
	if err != nil {
		return nil, err
	}
	return &Setup{Addr: net.JoinHostPort(o.Host, strconv.Itoa(o.Port)), User: o.User, Base: "/", Disk: d, UID: uid, GID: gid}, nil
}

// PureFTPd configures pure-ftpd with o's account in a users database made
// by purePW (pure-pw), chrooted, FXP open to everyone, and extra arguments.
func PureFTPd(o Options, purePW string, extra ...string) (*Setup, error) {
	s, err := o.home()
	if err != nil {
		return nil, err
	}
	// The users file written directly with a SHA-512 crypt hash: pure-pw
	// would pick a deliberately slow argon2id, and every login would pay it.
	passwd := filepath.Join(o.Dir, "passwd")
	line := fmt.Sprintf("%s:%s:%d:%d::%s/./::::::::::::\n", o.User, o.Crypt, s.UID, s.GID, s.Disk)
	if err := os.WriteFile(passwd, []byte(line), 0o600); err != nil {
		return nil, err
	}
	db := filepath.Join(o.Dir, "pure.pdb")
	if out, err := exec.Command(purePW, "mkdb", db, "-f", passwd).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pure-pw mkdb: %v: %s", err, out)
	}
	// -W: FXP for everyone; -E: no anonymous; -A: chroot; -H: no DNS.
	args := append([]string{"-S", o.Host + "," + strconv.Itoa(o.Port), "-l", "puredb:" + db,
		"-E", "-A", "-H", "-W", "-u", "1", "-p", fmt.Sprintf("%d:%d", o.Pasv[0], o.Pasv[1])}, extra...)
	s.Cmd = exec.Command(o.Bin, args...)
	return s, nil
}

// ProFTPD configures ProFTPD with o's account in its own users file,
// chrooted, FXP and restarts allowed, and extra configuration lines.
func ProFTPD(o Options, extra string) (*Setup, error) {
	s, err := o.home()
	if err != nil {
		return nil, err
	}
	os.WriteFile(filepath.Join(o.Dir, "passwd"), fmt.Appendf(nil, "%s:%s:%d:%d::%s:/bin/false\n", o.User, o.Crypt, s.UID, s.GID, s.Disk), 0o600)
	os.WriteFile(filepath.Join(o.Dir, "group"), fmt.Appendf(nil, "ftpusers:x:%d:\n", s.GID), 0o600)
	conf := fmt.Sprintf(`ServerType standalone
ServerName "ferry-peer"
DefaultAddress %[1]s
Port %[2]d
UseIPv6 off
User nobody
Group nogroup
PidFile %[3]s/proftpd.pid
ScoreboardFile %[3]s/scoreboard
DelayTable none
WtmpLog off
TransferLog none
SystemLog %[3]s/proftpd.log
AuthOrder mod_auth_file.c
AuthUserFile %[3]s/passwd
AuthGroupFile %[3]s/group
RequireValidShell off
DefaultRoot ~
PassivePorts %[4]d %[5]d
AllowForeignAddress on
AllowOverwrite on
AllowStoreRestart on
AllowRetrieveRestart on
UseReverseDNS off
`, o.Host, o.Port, o.Dir, o.Pasv[0], o.Pasv[1]) + extra
	cf := filepath.Join(o.Dir, "proftpd.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	s.Cmd = exec.Command(o.Bin, "-n", "-q", "-c", cf)
	return s, nil
}

// Vsftpd configures vsftpd for anonymous users who may write in /files
// (its local users would need PAM and system accounts, which tests should
// not create), FXP open (the promiscuous options), and extra lines.
func Vsftpd(o Options, extra string) (*Setup, error) {
	uid, gid, name, err := SystemUser()
	if err != nil {
		return nil, err
	}
	root := filepath.Join(o.Dir, "root")
	os.MkdirAll(filepath.Join(o.Dir, "empty"), 0o755)
	os.MkdirAll(root, 0o755)
	pub, err := OwnedDir(root, uid, gid)
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`listen=YES
listen_address=%s
listen_port=%d
background=NO
anonymous_enable=YES
local_enable=NO
no_anon_password=YES
anon_root=%s
ftp_username=%s
nopriv_user=%s
write_enable=YES
anon_upload_enable=YES
anon_mkdir_write_enable=YES
anon_other_write_enable=YES
anon_umask=022
pasv_min_port=%d
pasv_max_port=%d
port_promiscuous=YES
pasv_promiscuous=YES
connect_from_port_20=NO
seccomp_sandbox=NO
isolate_network=NO
secure_chroot_dir=%s
xferlog_enable=NO
syslog_enable=NO
mdtm_write=YES
`, o.Host, o.Port, root, name, name, o.Pasv[0], o.Pasv[1], filepath.Join(o.Dir, "empty")) + extra
	cf := filepath.Join(o.Dir, "vsftpd.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	return &Setup{Cmd: exec.Command(o.Bin, cf), Addr: net.JoinHostPort(o.Host, strconv.Itoa(o.Port)),
		User: "anonymous", Base: "/files", Disk: pub, UID: uid, GID: gid}, nil
}
