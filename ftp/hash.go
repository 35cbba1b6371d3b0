package ftp

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"hash/crc32"
	"strings"
)

// Hash algorithms as HASH names them (draft-bryan-ftp-hash), also behind
// XSHA256, XSHA512, XSHA1, XMD5 and XCRC.
const (
	HashSHA256 = "SHA-256"
	HashSHA512 = "SHA-512"
	HashSHA1   = "SHA-1"
	HashMD5    = "MD5"
	HashCRC32  = "CRC32"
)

// HashNames lists the algorithms, best first.
var HashNames = []string{HashSHA256, HashSHA512, HashSHA1, HashMD5, HashCRC32}

// NewHash returns a hash for the algorithm name (any case), or nil.
func NewHash(name string) hash.Hash {
	switch strings.ToUpper(name) {
	case HashSHA256:
		return sha256.New()
	case HashSHA512:
		return sha512.New()
	case HashSHA1:
		return sha1.New()
	case HashMD5:
		return md5.New()
	case HashCRC32:
		return crc32.NewIEEE()
	}
	return nil
}
