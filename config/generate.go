package config

//go:generate go run ./gendoc
