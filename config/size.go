package config

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseSize reads an octet count: a number with an optional binary suffix
// K, M, G or T (KiB, MiB, GiB, TiB; "500M", "2G", "0").
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	shift := 0
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			shift = 10
		case 'M':
			shift = 20
		case 'G':
			shift = 30
		case 'T':
			shift = 40
		}
		if shift > 0 {
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || v < 0 || v > (1<<62)>>shift {
		return 0, fmt.Errorf("size %q: want a number of octets with an optional K, M, G or T suffix", s)
	}
	return v << shift, nil
}
