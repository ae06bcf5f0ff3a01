package proxy

// The bound on new upstream connections (Config.DialRate).

import (
	"context"
	"sync"
	"time"
)

// dialLimiter is a token bucket: rate tokens a second, as many at most; a
// dial takes one, waiting for it when there is none.
type dialLimiter struct {
	rate   float64
	mu     sync.Mutex
	tokens float64
	at     time.Time
}

func newDialLimiter(rate float64) *dialLimiter {
	return &dialLimiter{rate: rate, tokens: max(rate, 1), at: time.Now()}
}

// wait takes a token, waiting until one is due; it gives up, and gives the
// token back, when ctx ends first.
func (l *dialLimiter) wait(ctx context.Context) error {
	l.mu.Lock()
	now := time.Now()
	l.tokens = min(l.tokens+now.Sub(l.at).Seconds()*l.rate, max(l.rate, 1))
	l.at = now
	l.tokens--
	short := -l.tokens
	l.mu.Unlock()
	if short <= 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(short / l.rate * float64(time.Second)))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		l.tokens++
		l.mu.Unlock()
		return ctx.Err()
	}
}
