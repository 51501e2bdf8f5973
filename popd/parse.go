package popd

import (
	"bytes"
	"errors"
	"strings"
)

// command is one parsed client line.
type command struct {
	name string // upper case keyword
	// arg is everything after the first space, unchanged (PASS takes the
	// rest of the line: RFC 1939 §7 notes passwords may contain spaces).
	arg string
}

var (
	errEmptyLine  = errors.New("empty command line")
	errBadKeyword = errors.New("invalid command keyword")
	errBadChars   = errors.New("command contains control characters")
)

// maxKeyword bounds keywords: RFC 1939 §3 says three or four characters; a
// little slack lets unknown extensions get a clean "unknown command".
const maxKeyword = 8

// parseCommand parses one line (with or without its CRLF). A bare LF ending
// is accepted: some clients and test scripts send one.
func parseCommand(line []byte) (command, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return command{}, errEmptyLine
	}
	for _, c := range line {
		// RFC 1939 §3: keywords and arguments are printable ASCII. UTF-8
		// passwords are common in practice, so only controls are refused.
		if c < 0x20 || c == 0x7f {
			return command{}, errBadChars
		}
	}
	kw, arg, _ := bytes.Cut(line, []byte(" "))
	if len(kw) == 0 || len(kw) > maxKeyword {
		return command{}, errBadKeyword
	}
	for _, c := range kw {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return command{}, errBadKeyword
		}
	}
	return command{name: strings.ToUpper(string(kw)), arg: string(arg)}, nil
}

// fields splits the arguments of commands other than PASS: single spaces
// separate them (RFC 1939 §3), extra spaces are tolerated.
func fields(arg string) []string { return strings.Fields(arg) }

// parseNumber parses a message number or TOP line count: decimal digits
// only, no sign, at most 9 digits (no overflow).
func parseNumber(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
