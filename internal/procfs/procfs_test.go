package procfs

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestParseStat(t *testing.T) {
	// Fields 3..24 of a real line; 14, 15 and 22 carry recognisable values.
	fields := " S 1 2 3 4 5 6 7 8 9 10 250 130 13 14 15 16 17 18 424242 20 21\n"
	for _, tt := range []struct {
		line string
		want Stat
		ok   bool
	}{
		{"1234 (systemd)" + fields, Stat{State: 'S', UTime: 250, STime: 130, StartTime: 424242}, true},
		{"1234 (a) b (c) d)" + fields, Stat{State: 'S', UTime: 250, STime: 130, StartTime: 424242}, true},
		{"1234 (systemd) S 1 2", Stat{}, false},
		{"1234 systemd S 1 2 3", Stat{}, false},
		{"1234 (systemd) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 -5 20", Stat{}, false},
		{"1234 (systemd) SS 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 5 20", Stat{}, false},
		{"", Stat{}, false},
	} {
		got, err := ParseStat([]byte(tt.line))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseStat(%q) = %+v, %v; want %+v, ok=%t", tt.line, got, err, tt.want, tt.ok)
		}
	}
	if got := (Stat{UTime: 250, STime: 130}).CPUSeconds(); got != 3.8 {
		t.Errorf("CPUSeconds = %v, want 3.8", got)
	}
}

func TestReadStatSelf(t *testing.T) {
	s, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.StartTime == 0 || s.Exited() {
		t.Errorf("this test's own process: %+v, want a start time and not exited", s)
	}
	again, err := ReadStat(os.Getpid())
	if err != nil || again.StartTime != s.StartTime {
		t.Errorf("start time changed between two reads: %d then %d (%v)", s.StartTime, again.StartTime, err)
	}
	if _, err := ReadStat(-1); err == nil {
		t.Error("ReadStat(-1) succeeded")
	}
}

func TestPeerCred(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cred, err := PeerCred(c)
	if err != nil {
		t.Fatal(err)
	}
	if int(cred.Pid) != os.Getpid() || int(cred.Uid) != os.Getuid() {
		t.Errorf("peer %+v, want this process (pid %d uid %d)", cred, os.Getpid(), os.Getuid())
	}
}
