//go:build linux

package stats

import "strconv"

// Load is the JSON line bench/upgradeload prints on stdout and the harness
// reads: one type for both ends of the pipe, so that they cannot drift.
type Load struct {
	Mode       string         `json:"mode"`
	OK         int            `json:"ok"`       // exchanges completed with a response
	Errors     int            `json:"errors"`   // exchanges that failed
	Upgraded   int            `json:"upgraded"` // responses that came after a 101, on HTTP/2
	H1         int            `json:"h1"`       // responses on HTTP/1.1
	Open       int            `json:"open"`     // idle mode: connections held open
	ElapsedS   float64        `json:"elapsed_s"`
	Rate       float64        `json:"rate"` // OK per second of elapsed time
	Status     map[string]int `json:"status"`
	FirstError string         `json:"first_error,omitempty"`
}

// NewLoad is an empty result of mode, ready for Add and Record.
func NewLoad(mode string) *Load { return &Load{Mode: mode, Status: map[string]int{}} }

// Add adds o's counts to r: each worker counts alone, without a lock, and
// the parts are summed at the end.
func (r *Load) Add(o *Load) {
	r.OK += o.OK
	r.Errors += o.Errors
	r.Upgraded += o.Upgraded
	r.H1 += o.H1
	for k, v := range o.Status {
		r.Status[k] += v
	}
	if r.FirstError == "" {
		r.FirstError = o.FirstError
	}
}

// Record counts one exchange: an error, or a response with its status, on
// HTTP/2 after an upgrade or on HTTP/1.1. The first error is kept, as a
// sample of what went wrong.
func (r *Load) Record(status int, upgraded bool, err error) {
	if err != nil {
		r.Errors++
		if r.FirstError == "" {
			r.FirstError = err.Error()
		}
		return
	}
	r.OK++
	if upgraded {
		r.Upgraded++
	} else {
		r.H1++
	}
	r.Status[strconv.Itoa(status)]++
}
