//go:build !linux

package server

import (
	"sync"
	"syscall"
	"time"
)

// Elsewhere an idle session keeps its goroutine, waiting in the network
// poller (park.go).
const canPark = false

type poller struct {
	mu        sync.Mutex
	parked    map[uint64]*session
	deadlines parkHeap
	timer     *time.Timer
	sweep     *time.Timer
	churn     int
}

var thePoller poller

func (p *poller) start() error                           { return errNoPark }
func (p *poller) register(syscall.RawConn, uint64) error { return errNoPark }
func (p *poller) deregister(syscall.RawConn)             {}
