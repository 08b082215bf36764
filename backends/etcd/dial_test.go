package etcd

import (
	"net"
	"sync"
	"testing"
	"time"
)

// blackHole accepts TCP connections on loopback and never answers, as a frozen
// or partitioned member would; it returns its URL.
func blackHole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + l.Addr().String()
}

// TestDialSomeEndpointsDown: Dial succeeds whenever a live member answers,
// whatever the order of the endpoints and whether the dead ones refuse
// connections or never answer; the client then works.
func TestDialSomeEndpointsDown(t *testing.T) {
	closed, err := loopbackURL("http") // nothing listens there
	must(t, err)
	alive := shared.srv.Endpoints()[0]
	for name, eps := range map[string][]string{
		"refused first": {closed, alive},
		"silent first":  {blackHole(t), alive},
		"silent last":   {alive, blackHole(t)},
		"two dead":      {blackHole(t), closed, alive},
	} {
		start := time.Now()
		cli, err := Dial(t.Context(), ClientConfig{Endpoints: eps, DialTimeout: 2 * time.Second})
		if err != nil {
			t.Errorf("Dial %s %v: %v after %v", name, eps, err, time.Since(start))
			continue
		}
		reg, err := New(cli, WithPrefix(freshPrefix()))
		must(t, err)
		for i := range 5 {
			if _, err := reg.Units(t.Context()); err != nil {
				t.Errorf("Dial %s: listing %d: %v", name, i, err)
			}
		}
		cli.Close()
	}
}
