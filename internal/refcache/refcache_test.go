package refcache

import "testing"

func TestCache(t *testing.T) {
	c := New[int](2)
	c.Add(map[[32]byte]int{{1}: 10})
	if v, ok := c.Get([32]byte{1}); !ok || v != 10 {
		t.Errorf("Get(1) = %d, %v; want 10, true", v, ok)
	}
	if _, ok := c.Get([32]byte{2}); ok {
		t.Errorf("Get(2) found an entry never added")
	}
	c.Add(map[[32]byte]int{{2}: 20, {3}: 30, {4}: 40})
	if n := c.Len(); n != 2 {
		t.Errorf("Len() after adding past the limit = %d, want the limit 2", n)
	}
	if v, ok := c.Get([32]byte{1}); !ok || v != 10 {
		t.Errorf("Get(1) after the limit = %d, %v; want the first entry kept", v, ok)
	}
}
