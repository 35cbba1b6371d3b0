module github.com/ferryftp/ferry

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/jlaffaye/ftp v0.2.4
	golang.org/x/crypto v0.59.0
	golang.org/x/term v0.48.0
)

require golang.org/x/sys v0.50.0 // indirect
