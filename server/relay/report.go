package relay

import "sync"

// maxPendingReports bounds the reports a reporter holds. Past it the loop
// makes them itself, and waits for them as it did before reporters: a
// log that stays stuck then slows the relays down rather than growing
// acceptd's memory without end.
const maxPendingReports = 4096

// report is one relay's end, to be told to its Done.
type report struct {
	done func(Result)
	r    Result
}

// reporter calls the Done functions of a loop's relays on a goroutine of
// its own. Done logs the connection, and a log write can block (a stderr
// pipe whose reader, journald say, has stopped reading): on the loop's
// goroutine that stopped every relay of the loop, where a goroutine per
// connection stalled only the one that ended.
//
// The loop hands its reports over in batches, once per turn (see
// loop.flushReports), so under load one wake-up of the reporter covers
// many connections.
type reporter struct {
	mu      sync.Mutex
	pending []report
	wake    chan struct{} // capacity 1: "pending is not empty"
	stopped chan struct{}
}

func newReporter() *reporter {
	return &reporter{wake: make(chan struct{}, 1), stopped: make(chan struct{})}
}

// hand passes batch on (the caller keeps the slice, which hand clears).
// It reports false, keeping nothing, when the reporter is too far behind:
// the caller then calls the batch's Done functions itself.
func (rp *reporter) hand(batch []report) bool {
	rp.mu.Lock()
	if len(rp.pending)+len(batch) > maxPendingReports {
		rp.mu.Unlock()
		return false
	}
	rp.pending = append(rp.pending, batch...)
	rp.mu.Unlock()
	clear(batch)
	select {
	case rp.wake <- struct{}{}:
	default: // already told
	}
	return true
}

// run calls Done functions until close; what was handed before close is
// still called.
func (rp *reporter) run() {
	defer close(rp.stopped)
	var batch []report
	for range rp.wake {
		rp.mu.Lock()
		batch, rp.pending = rp.pending, batch[:0]
		rp.mu.Unlock()
		for i := range batch {
			batch[i].done(batch[i].r)
			batch[i] = report{}
		}
	}
	// wake is closed: hand is not called any more.
	for _, b := range rp.pending {
		b.done(b.r)
	}
	rp.pending = nil
}

// close ends run once it has called everything handed to it, and waits
// for that.
func (rp *reporter) close() {
	close(rp.wake)
	<-rp.stopped
}
