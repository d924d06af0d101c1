package clock

import (
	"testing"
	"time"
)

func TestFakeTimersAndTickers(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(start)
	timer := f.NewTimer(2 * time.Second)
	ticker := f.NewTicker(time.Second)
	defer ticker.Stop()

	f.Advance(1500 * time.Millisecond)
	select {
	case <-timer.C():
		t.Fatal("timer fired early")
	default:
	}
	if got := <-ticker.C(); !got.Equal(start.Add(time.Second)) {
		t.Fatalf("ticker fired at %v", got)
	}
	f.Advance(time.Second)
	if got := <-timer.C(); !got.Equal(start.Add(2 * time.Second)) {
		t.Fatalf("timer fired at %v", got)
	}
	if timer.Stop() {
		t.Fatal("Stop of a fired timer reported pending")
	}
	if !f.Now().Equal(start.Add(2500 * time.Millisecond)) {
		t.Fatalf("now %v", f.Now())
	}
	if f.Waiters() != 1 {
		t.Fatalf("waiters %d, want the ticker only", f.Waiters())
	}
	stopped := f.NewTimer(time.Hour)
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer reported fired")
	}
	if !f.BlockUntil(1) {
		t.Fatal("BlockUntil gave up")
	}
}

func TestFakeZeroTimerFiresAtOnce(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	select {
	case <-f.NewTimer(0).C():
	default:
		t.Fatal("zero timer did not fire")
	}
}
