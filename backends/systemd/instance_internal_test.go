package systemd

import "testing"

func TestProcStartTime(t *testing.T) {
	fields := " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21\n"
	for _, tt := range []struct {
		stat string
		want uint64
		ok   bool
	}{
		{"1234 (systemd)" + fields, 424242, true},
		{"1234 (a) b (c) d)" + fields, 424242, true},
		{"1234 (systemd) S 1 2", 0, false},
		{"1234 systemd S 1 2 3", 0, false},
		{"1234 (systemd) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 -5 20", 0, false},
		{"", 0, false},
	} {
		got, err := procStartTime([]byte(tt.stat))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("procStartTime(%q) = %d, %v; want %d, ok=%t", tt.stat, got, err, tt.want, tt.ok)
		}
	}
}
