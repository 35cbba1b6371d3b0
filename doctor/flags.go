package doctor

import "strings"

// flags are what makes each client work against this server, from what
// the checks found.
func (d *run) flags() map[string]string {
	tlsOn := d.o.Scheme != "ftp"
	passiveOK := d.pasvWorks || !d.activeWorks
	curl, lftp, rclone, py, ferry := []string{}, []string{}, []string{}, []string{}, []string{}
	if tlsOn {
		curl = append(curl, "--ssl-reqd")
		lftp = append(lftp, "set ftp:ssl-force true", "set ftp:ssl-protect-data true")
		if d.o.Scheme == "ftps" {
			curl = []string{"(URL ftps://)"}
			rclone = append(rclone, "--ftp-tls")
			py = append(py, "implicit TLS: ftplib has no FTPS on port 990; wrap the socket yourself")
		} else {
			rclone = append(rclone, "--ftp-explicit-tls")
			py = append(py, "ftplib.FTP_TLS(); login(); prot_p()")
		}
		if d.certTrusted && d.o.CAFile != "" {
			curl = append(curl, "--cacert "+d.o.CAFile)
			lftp = append(lftp, "set ssl:ca-file "+d.o.CAFile)
			rclone = append(rclone, "--ca-cert "+d.o.CAFile)
			py = append(py, "context=ssl.create_default_context(cafile=\""+d.o.CAFile+"\")")
			ferry = append(ferry, "--ca-file "+d.o.CAFile)
		}
		if !d.certTrusted {
			curl = append(curl, "--cacert CA.pem (or -k)")
			lftp = append(lftp, "set ssl:ca-file CA.pem (or ssl:verify-certificate no)")
			rclone = append(rclone, "--ftp-no-check-certificate")
			py = append(py, "context=ssl.create_default_context(cafile=\"CA.pem\")")
			ferry = append(ferry, "--fingerprint "+d.certPin)
		}
		if d.reuseNeeded {
			py = append(py, "data connections must reuse the TLS session: subclass FTP_TLS so ntransfercmd wraps with session=self.sock.session")
		}
	}
	if !passiveOK {
		curl = append(curl, "--ftp-port -")
		lftp = append(lftp, "set ftp:passive-mode off")
		rclone = append(rclone, "(rclone has no active mode: fix passive)")
		py = append(py, "set_pasv(False)")
		ferry = append(ferry, "--active")
	}
	if d.epsvBroken {
		curl = append(curl, "--disable-epsv")
		lftp = append(lftp, "set ftp:prefer-epsv no")
		rclone = append(rclone, "--ftp-disable-epsv")
	}
	if d.pasvAddrBad {
		curl = append(curl, "--ftp-skip-pasv-ip (the default since 7.74)")
		lftp = append(lftp, "set ftp:ignore-pasv-address yes")
		py = append(py, "trust_server_pasv_ipv4_address = False (the default)")
	}
	if len(lftp) == 0 {
		lftp = []string{"no settings needed"}
	}
	if len(py) == 0 {
		py = []string{"ftplib.FTP() as it is"}
	}
	join := func(parts []string, none string) string {
		if len(parts) == 0 {
			return none
		}
		return strings.Join(parts, " ")
	}
	return map[string]string{
		"curl":   join(curl, "no flags needed"),
		"lftp":   strings.Join(lftp, "; "),
		"rclone": join(rclone, "no flags needed"),
		"python": strings.Join(py, "; "),
		"ferry":  join(ferry, "no flags needed"),
	}
}
