package cache

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestCache_getPutDelete(t *testing.T) {
	c := New[string, int](4, nil)
	if _, ok := c.Get("a"); ok {
		t.Fatal("hit on an empty cache")
	}
	c.Put("a", 1, 0)
	c.Put("a", 2, 0)
	if v, ok := c.Get("a"); !ok || v != 2 {
		t.Fatalf("Get(a) = %d, %v; want 2, true", v, ok)
	}
	c.Delete("a")
	if _, ok := c.Get("a"); ok || c.Len() != 0 {
		t.Fatalf("after Delete: hit or Len %d", c.Len())
	}
}

func TestCache_bounded(t *testing.T) {
	c := New[int, int](100, nil)
	for i := range 10_000 {
		c.Put(i, i, 0)
		if c.Len() > 100 {
			t.Fatalf("Len %d > 100 after %d puts", c.Len(), i+1)
		}
	}
	if _, ok := c.Get(9999); !ok {
		t.Fatal("the newest entry was evicted")
	}
	// Replacing an entry of a full cache evicts nothing.
	c.Put(9999, -1, 0)
	if c.Len() != 100 {
		t.Fatalf("Len %d after replacing, want 100", c.Len())
	}
}

func TestCache_expiry(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := New[string, string](2, clk.now)
	c.Put("short", "x", time.Second)
	c.Put("forever", "y", 0)
	clk.t = clk.t.Add(999 * time.Millisecond)
	if _, ok := c.Get("short"); !ok {
		t.Fatal("expired early")
	}
	clk.t = clk.t.Add(time.Millisecond)
	if _, ok := c.Get("short"); ok {
		t.Fatal("served after its expiry")
	}
	// A negative TTL is already expired: nothing stored, the old entry gone.
	c.Put("forever", "z", -time.Second)
	if _, ok := c.Get("forever"); ok {
		t.Fatal("an entry put with a negative TTL is served")
	}
	c.Put("forever", "y", 0)
	// Full: the expired entry goes first, the unexpiring one stays.
	c.Put("new", "z", 0)
	if _, ok := c.Get("forever"); !ok {
		t.Fatal("a live entry was evicted while an expired one was there")
	}
	if c.Len() != 2 {
		t.Fatalf("Len %d, want 2", c.Len())
	}
}

func TestCache_deleteFuncClear(t *testing.T) {
	c := New[string, int](10, nil)
	for i := range 6 {
		c.Put(strconv.Itoa(i), i, 0)
	}
	c.DeleteFunc(func(_ string, v int) bool { return v%2 == 0 })
	if c.Len() != 3 {
		t.Fatalf("Len %d after DeleteFunc, want 3", c.Len())
	}
	if _, ok := c.Get("1"); !ok {
		t.Fatal("odd entry removed")
	}
	c.Clear()
	if c.Len() != 0 {
		t.Fatal("Clear left entries")
	}
}

func TestCache_concurrent(t *testing.T) {
	c := New[int, int](64, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				c.Put(g*10000+i, i, time.Minute)
				c.Get(g*10000 + i/2)
			}
		})
	}
	wg.Wait()
	if c.Len() > 64 {
		t.Fatalf("Len %d > 64", c.Len())
	}
}

func BenchmarkCache_getParallel(b *testing.B) {
	c := New[string, []byte](1024, nil)
	for i := range 1024 {
		c.Put(strconv.Itoa(i), []byte("doc"), 0)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Get(strconv.Itoa(i & 1023))
			i++
		}
	})
}

func BenchmarkCache_putFull(b *testing.B) {
	c := New[int, int](100_000, nil)
	for i := range 100_000 {
		c.Put(i, i, time.Hour)
	}
	b.ResetTimer()
	for i := range b.N {
		c.Put(100_000+i, i, time.Hour)
	}
}
