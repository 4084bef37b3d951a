package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestPushPopOrderAndDrops(t *testing.T) {
	tests := []struct {
		name        string
		capacity    int
		push        []int
		wantPops    []int
		wantDropped uint64
	}{
		{name: "under capacity", capacity: 4, push: []int{1, 2, 3}, wantPops: []int{1, 2, 3}},
		{name: "exactly full", capacity: 3, push: []int{1, 2, 3}, wantPops: []int{1, 2, 3}},
		{name: "drops oldest", capacity: 3, push: []int{1, 2, 3, 4, 5}, wantPops: []int{3, 4, 5}, wantDropped: 2},
		{name: "wraps many times", capacity: 2, push: []int{1, 2, 3, 4, 5, 6, 7}, wantPops: []int{6, 7}, wantDropped: 5},
		{name: "capacity zero raised to one", capacity: 0, push: []int{1, 2}, wantPops: []int{2}, wantDropped: 1},
		{name: "negative capacity raised to one", capacity: -5, push: []int{9}, wantPops: []int{9}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := New[int](tc.capacity)
			var reported uint64
			for _, v := range tc.push {
				if q.Push(v) {
					reported++
				}
			}
			if got := q.Len(); got != len(tc.wantPops) {
				t.Fatalf("Len() = %d, want %d", got, len(tc.wantPops))
			}
			for i, want := range tc.wantPops {
				got, ok, err := q.TryPop()
				if err != nil || !ok || got != want {
					t.Fatalf("pop %d: got (%d, %v, %v), want (%d, true, nil)", i, got, ok, err, want)
				}
			}
			if _, ok, err := q.TryPop(); ok || err != nil {
				t.Fatalf("TryPop on empty queue: ok=%v err=%v, want false nil", ok, err)
			}
			if q.Dropped() != tc.wantDropped || reported != tc.wantDropped {
				t.Fatalf("Dropped() = %d, Push reported %d, want %d", q.Dropped(), reported, tc.wantDropped)
			}
		})
	}
}

func TestPopWaitsForPush(t *testing.T) {
	q := New[string](2)
	got := make(chan string)
	go func() {
		v, err := q.Pop(context.Background())
		if err != nil {
			v = "error: " + err.Error()
		}
		got <- v
	}()
	q.Push("hello")
	if v := <-got; v != "hello" {
		t.Fatalf("Pop = %q, want hello", v)
	}
}

func TestPopHonoursContext(t *testing.T) {
	q := New[int](1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := q.Pop(ctx)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Pop after cancel = %v, want context.Canceled", err)
	}
}

func TestCloseDrainsThenErrors(t *testing.T) {
	q := New[int](4)
	q.Push(1)
	q.Push(2)
	q.Close()
	q.Close() // idempotent
	if !q.Closed() {
		t.Fatal("Closed() = false after Close")
	}
	if !q.Push(3) {
		t.Fatal("Push after Close reported no drop")
	}
	for _, want := range []int{1, 2} {
		v, err := q.Pop(context.Background())
		if err != nil || v != want {
			t.Fatalf("Pop = (%d, %v), want (%d, nil)", v, err, want)
		}
	}
	if _, err := q.Pop(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Pop on drained closed queue = %v, want ErrClosed", err)
	}
	if _, _, err := q.TryPop(); !errors.Is(err, ErrClosed) {
		t.Fatalf("TryPop on drained closed queue = %v, want ErrClosed", err)
	}
	if q.Dropped() != 1 {
		t.Fatalf("Dropped() = %d, want 1", q.Dropped())
	}
}

func TestCloseWakesAllWaitingReaders(t *testing.T) {
	q := New[int](1)
	const readers = 8
	var started, finished sync.WaitGroup
	errs := make(chan error, readers)
	started.Add(readers)
	finished.Add(readers)
	for range readers {
		go func() {
			defer finished.Done()
			started.Done()
			_, err := q.Pop(context.Background())
			errs <- err
		}()
	}
	started.Wait()
	q.Close()
	finished.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("reader got %v, want ErrClosed", err)
		}
	}
}

// Every pushed item is either popped exactly once or counted as dropped, with
// many writers and readers racing.
func TestConcurrentAccounting(t *testing.T) {
	const (
		writers   = 4
		readers   = 3
		perWriter = 5000
	)
	q := New[int](16)
	var wg sync.WaitGroup
	var popped [readers]int
	var readersWG sync.WaitGroup
	for r := range readers {
		readersWG.Add(1)
		go func() {
			defer readersWG.Done()
			for {
				_, err := q.Pop(context.Background())
				if err != nil {
					return
				}
				popped[r]++
			}
		}()
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				q.Push(w*perWriter + i)
			}
		}()
	}
	wg.Wait()
	q.Close()
	readersWG.Wait()
	total := 0
	for _, n := range popped {
		total += n
	}
	if got := uint64(total) + q.Dropped(); got != writers*perWriter {
		t.Fatalf("popped %d + dropped %d = %d, want %d", total, q.Dropped(), got, writers*perWriter)
	}
}

func TestWriterNeverBlocksWithoutReader(t *testing.T) {
	q := New[[]byte](3)
	for i := range 1000 {
		q.Push(make([]byte, i%7))
	}
	if q.Len() != 3 || q.Dropped() != 997 || q.Cap() != 3 {
		t.Fatalf("Len=%d Dropped=%d Cap=%d, want 3 997 3", q.Len(), q.Dropped(), q.Cap())
	}
}

func TestPushEvictReturnsTheDiscardedItem(t *testing.T) {
	tests := []struct {
		name        string
		close       bool
		push        []string
		wantEvicted []string // per push, "" when nothing was evicted
	}{
		{name: "room left", push: []string{"a", "b"}, wantEvicted: []string{"", ""}},
		{name: "full evicts oldest", push: []string{"a", "b", "c", "d"}, wantEvicted: []string{"", "", "a", "b"}},
		{name: "closed returns the pushed item", close: true, push: []string{"x"}, wantEvicted: []string{"x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := New[string](2)
			if tc.close {
				q.Close()
			}
			for i, v := range tc.push {
				ev, dropped := q.PushEvict(v)
				if ev != tc.wantEvicted[i] || dropped != (tc.wantEvicted[i] != "") {
					t.Fatalf("push %q: evicted (%q, %v), want %q", v, ev, dropped, tc.wantEvicted[i])
				}
			}
		})
	}
}

// TestFair: a Fair queue keeps each key's order, serves the key served
// least, drops from the key with most waiting and never drops a pinned item
// while an unpinned one waits ("a1": key a; "a!": pinned).
func TestFair(t *testing.T) {
	key := func(s string) (string, bool) { return s[:1], s[1:] == "!" }
	for _, c := range []struct {
		name    string
		cap     int
		push    []string
		want    []string // popped, in order
		dropped []string
	}{
		{"least served key first, order within a key", 8, []string{"a1", "a2", "a3", "b1"}, []string{"a1", "b1", "a2", "a3"}, nil},
		{"full: the key with most waiting loses its oldest", 3, []string{"a1", "a2", "a3", "b1"}, []string{"a2", "b1", "a3"}, []string{"a1"}},
		{"a pinned item stays behind its key, then goes first", 8, []string{"a1", "a!", "b1", "b2"}, []string{"a1", "a!", "b1", "b2"}, nil},
		{"pinned never dropped while unpinned wait", 2, []string{"a1", "a!", "b1"}, []string{"a!", "b1"}, []string{"a1"}},
		{"only pinned: the oldest goes", 1, []string{"a!", "b!"}, []string{"b!"}, []string{"a!"}},
	} {
		q := New[string](c.cap)
		q.Fair(key)
		var dropped []string
		for _, s := range c.push {
			if old, d := q.PushEvict(s); d {
				dropped = append(dropped, old)
			}
		}
		if c.want == nil {
			continue
		}
		var got []string
		for {
			v, ok, _ := q.TryPop()
			if !ok {
				break
			}
			got = append(got, v)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) || fmt.Sprint(dropped) != fmt.Sprint(c.dropped) {
			t.Errorf("%s: popped %v dropped %v, want %v and %v", c.name, got, dropped, c.want, c.dropped)
		}
	}
	// served counts decide ties on waiting, and a pinned item resets its key
	q := New[string](2)
	q.Fair(key)
	q.Push("a1")
	q.Pop(context.Background()) // a served once
	q.Push("a2")
	q.Push("b1")
	if old, d := q.PushEvict("c1"); !d || old != "a2" {
		t.Errorf("tie on waiting: dropped %q, want a2 (a was served more)", old)
	}
	q2 := New[string](4)
	q2.Fair(key)
	for _, s := range []string{"a1", "a2", "a!"} {
		q2.Push(s)
	}
	for range 3 {
		q2.Pop(context.Background())
	}
	q2.Push("b1")
	q2.Push("a3") // a's count was forgotten with a!: a3 and b1 tie, b1 is older
	if v, _, _ := q2.TryPop(); v != "b1" {
		t.Errorf("after a pinned item: popped %q first, want b1", v)
	}
}
