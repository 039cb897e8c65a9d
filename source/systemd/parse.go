package systemd

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cutoverhq/cutover/source"
)

// The parser is cutover's own rather than go-systemd's unit package,
// because the report and errors name the line of every key, and
// go-systemd's deserializer keeps none.

// entry is one Key=Value assignment of a unit file.
type entry struct {
	File    string
	Line    int
	Section string
	Key     string
	Value   string
	// used is set when the importer reported the entry.
	used bool
}

// Field is the entry's name in the report: "Service.ExecStart".
func (e *entry) Field() string { return e.Section + "." + e.Key }

// unitFile is one parsed unit file (or drop-in).
type unitFile struct {
	Path     string
	Sections map[string]int // section name → line of its header
	Entries  []*entry
}

// maxLine bounds one logical line, continuations included, as systemd's
// LONG_LINE_MAX does.
const maxLine = 1 << 20

// parseUnit parses the unit file syntax of systemd.syntax(7): sections,
// Key=Value lines, # and ; comments, and lines continued with a trailing
// backslash (comment lines inside a continuation are skipped).
func parseUnit(path string, data []byte) (*unitFile, error) {
	if !utf8.Valid(data) {
		return nil, &source.InputError{File: path, Err: errors.New("cannot parse: not UTF-8 text")}
	}
	u := &unitFile{Path: path, Sections: map[string]int{}}
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	section := ""
	for i := 0; i < len(lines); i++ {
		start := i + 1
		line := strings.TrimSpace(lines[i])
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		// Join continuation lines.
		for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
			line = strings.TrimSuffix(line, "\\") + " "
			i++
			next := strings.TrimSpace(lines[i])
			for next != "" && (next[0] == '#' || next[0] == ';') && i+1 < len(lines) {
				i++
				next = strings.TrimSpace(lines[i])
			}
			if next != "" && (next[0] == '#' || next[0] == ';') {
				next = ""
			}
			line += next
			if len(line) > maxLine {
				return nil, &source.InputError{File: path, Line: start, Err: errors.New("cannot parse: line too long")}
			}
		}
		// A lone backslash on the last line continues nothing.
		line = strings.TrimSpace(strings.TrimSuffix(line, "\\"))
		if line == "" {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return nil, &source.InputError{File: path, Line: start, Err: fmt.Errorf("cannot parse: malformed section header %q", line)}
			}
			section = line[1 : len(line)-1]
			if strings.ContainsAny(section, "[]") {
				return nil, &source.InputError{File: path, Line: start, Err: fmt.Errorf("cannot parse: malformed section header %q", line)}
			}
			if _, seen := u.Sections[section]; !seen {
				u.Sections[section] = start
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return nil, &source.InputError{File: path, Line: start, Field: section, Err: fmt.Errorf("cannot parse: %q is not a Key=Value assignment", clip(line))}
		}
		if section == "" {
			return nil, &source.InputError{File: path, Line: start, Field: key, Err: errors.New("cannot parse: assignment outside of any [Section]")}
		}
		u.Entries = append(u.Entries, &entry{File: path, Line: start, Section: section, Key: key, Value: strings.TrimSpace(value)})
	}
	return u, nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// splitWords splits a value into words the way systemd does for command
// lines and Environment=: whitespace separates words, double and single
// quotes group them, and C-style backslash escapes are decoded
// (extract_first_word with EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE).
func splitWords(s string) ([]string, error) {
	var words []string
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return words, nil
		}
		var b strings.Builder
		for i < len(s) && !isSpace(s[i]) {
			c := s[i]
			switch c {
			case '"', '\'':
				q := c
				i++
				closed := false
				for i < len(s) {
					if s[i] == q {
						closed = true
						i++
						break
					}
					if s[i] == '\\' && q == '"' || s[i] == '\\' && q == '\'' {
						n, r, err := unescape(s, i)
						if err != nil {
							return nil, err
						}
						b.WriteString(r)
						i += n
						continue
					}
					b.WriteByte(s[i])
					i++
				}
				if !closed {
					return nil, fmt.Errorf("unterminated %c quote", q)
				}
			case '\\':
				n, r, err := unescape(s, i)
				if err != nil {
					return nil, err
				}
				b.WriteString(r)
				i += n
			default:
				b.WriteByte(c)
				i++
			}
		}
		words = append(words, b.String())
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// unescape decodes the C escape at s[i] ('\\') and returns its length.
func unescape(s string, i int) (int, string, error) {
	if i+1 >= len(s) {
		return 1, "", errors.New("trailing backslash")
	}
	switch c := s[i+1]; c {
	case 'a':
		return 2, "\a", nil
	case 'b':
		return 2, "\b", nil
	case 'f':
		return 2, "\f", nil
	case 'n':
		return 2, "\n", nil
	case 'r':
		return 2, "\r", nil
	case 't':
		return 2, "\t", nil
	case 'v':
		return 2, "\v", nil
	case '\\', '"', '\'', ' ', ';', '$':
		return 2, string(c), nil
	case 's':
		return 2, " ", nil
	case 'x':
		if i+4 > len(s) {
			return 0, "", errors.New("short \\x escape")
		}
		n, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
		if err != nil || n == 0 {
			return 0, "", fmt.Errorf("invalid escape %q", s[i:i+4])
		}
		return 4, string(rune(n)), nil
	case 'u', 'U':
		size := 4
		if c == 'U' {
			size = 8
		}
		if i+2+size > len(s) {
			return 0, "", fmt.Errorf("short \\%c escape", c)
		}
		n, err := strconv.ParseUint(s[i+2:i+2+size], 16, 32)
		if err != nil || n == 0 || !utf8.ValidRune(rune(n)) {
			return 0, "", fmt.Errorf("invalid escape %q", s[i:i+2+size])
		}
		return 2 + size, string(rune(n)), nil
	case '0', '1', '2', '3':
		if i+4 > len(s) {
			return 0, "", errors.New("short octal escape")
		}
		n, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil || n == 0 {
			return 0, "", fmt.Errorf("invalid escape %q", s[i:i+4])
		}
		return 4, string(rune(n)), nil
	default:
		return 0, "", fmt.Errorf("invalid escape \\%c", c)
	}
}

// command is one Exec*= line, with its prefixes.
type command struct {
	Argv []string
	// IgnoreFailure is the "-" prefix: a failing exit is not an error.
	IgnoreFailure bool
	// Privileged is "+", "!" or "!!": run with privileges the rest of the
	// service does not have.
	Privileged string
	// Argv0 is the "@" prefix: the second word is argv[0], the first the
	// binary.
	Argv0 bool
	// NoEnv is the ":" prefix: no $VAR expansion.
	NoEnv bool
	// Binary is the program run: Argv[0], or the word before argv[0]
	// with "@".
	Binary string
}

// parseCommand parses an Exec*= value (systemd.service(5) "Command
// lines").
func parseCommand(value string) (*command, error) {
	c := &command{}
	v := strings.TrimLeft(value, " \t")
	for len(v) > 0 {
		switch {
		case strings.HasPrefix(v, "!!"):
			c.Privileged = "!!"
			v = v[2:]
			continue
		case v[0] == '-':
			c.IgnoreFailure = true
		case v[0] == '@':
			if loc := buildVarRe.FindStringIndex(v); loc != nil && loc[0] == 0 {
				// @SBINDIR@/app: a build-time placeholder, not the
				// argv[0] prefix.
				goto words
			}
			c.Argv0 = true
		case v[0] == ':':
			c.NoEnv = true
		case v[0] == '+' || v[0] == '!':
			c.Privileged = v[:1]
		case v[0] == '|':
			// "|" runs through the user's shell (systemd 255+).
		default:
			goto words
		}
		v = v[1:]
	}
words:
	argv, err := splitWords(v)
	if err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, errors.New("empty command line")
	}
	c.Binary = argv[0]
	if c.Argv0 {
		if len(argv) < 2 {
			return nil, errors.New("@ prefix without argv[0]")
		}
		// The binary runs with argv[1] as its argv[0]; a container runs
		// the binary with its own path as argv[0].
		argv = append([]string{argv[0]}, argv[2:]...)
	}
	c.Argv = argv
	return c, nil
}
