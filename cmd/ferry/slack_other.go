//go:build !linux

package main

// slackTimers: the timer slack is Linux's (see slack_linux.go).
func slackTimers() {}
