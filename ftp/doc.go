// Package ftp holds the wire vocabulary of FTP with no sockets: command-line
// parsing, reply codes and the multi-line reply writer (RFC 959 §4.2), the
// PORT/EPRT/PASV/EPSV address codecs (RFC 959, RFC 2428), LIST and MLSx
// formatting (RFC 3659), and the quoting rules for path names (RFC 959
// appendix II, RFC 2640 §3.1).
//
// Everything here is pure and table-tested; the server and the client share it.
package ftp
