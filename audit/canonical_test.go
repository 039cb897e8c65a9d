package audit

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// RFC 8785 appendix B's number examples, by IEEE 754 bits, plus a few of
// ours. The same formatting was checked against node's JSON.stringify on
// 300,000 random doubles when it was written.
func TestNumberFormat(t *testing.T) {
	for bits, want := range map[uint64]string{
		0x0000000000000000: "0",
		0x8000000000000000: "0",
		0x0000000000000001: "5e-324",
		0x8000000000000001: "-5e-324",
		0x7fefffffffffffff: "1.7976931348623157e+308",
		0xffefffffffffffff: "-1.7976931348623157e+308",
		0x4340000000000000: "9007199254740992",
		0xc340000000000000: "-9007199254740992",
		0x4430000000000000: "295147905179352830000",
		0x44b52d02c7e14af5: "9.999999999999997e+22",
		0x44b52d02c7e14af6: "1e+23",
		0x44b52d02c7e14af7: "1.0000000000000001e+23",
		0x444b1ae4d6e2ef4e: "999999999999999700000",
		0x444b1ae4d6e2ef4f: "999999999999999900000",
		0x444b1ae4d6e2ef50: "1e+21",
		0x3eb0c6f7a0b5ed8c: "9.999999999999997e-7",
		0x3eb0c6f7a0b5ed8d: "0.000001",
		0x41b3de4355555553: "333333333.3333332",
		0x41b3de4355555554: "333333333.33333325",
		0x41b3de4355555555: "333333333.3333333",
		0x41b3de4355555556: "333333333.3333334",
		0x41b3de4355555557: "333333333.33333343",
		0xbecbf647612f3696: "-0.0000033333333333333333",
		0x43143ff3c1cb0959: "1424953923781206.2",
	} {
		if got := string(appendNumber(nil, math.Float64frombits(bits))); got != want {
			t.Errorf("%#016x: got %s, want %s", bits, got, want)
		}
	}
}

func TestCanonicalize(t *testing.T) {
	for in, want := range map[string]string{
		`{"b":2,"a":1}`:                   `{"a":1,"b":2}`,
		" { \"a\" : [ 1 , 2.50 , -0 ] } ": `{"a":[1,2.5,0]}`,
		`{"n":1E2,"m":1e-7,"o":1E23}`:     `{"m":1e-7,"n":100,"o":1e+23}`,
		`"\u00e9\/\u001f\u007f"`:          `"é/\u001f` + "\x7f" + `"`,
		`"\ud83d\ude00"`:                  `"😀"`,
		`"<>&\u2028"`:                     "\"<>&\u2028\"",
		`"\b\f\n\r\t\"\\"`:                `"\b\f\n\r\t\"\\"`,
		`[true,false,null,{},[]]`:         `[true,false,null,{},[]]`,
		`9007199254740992`:                `9007199254740992`,
		`-9007199254740992`:               `-9007199254740992`,
		`12345678901234567890.0`:          `12345678901234567000`, // a fraction says the writer chose a double
	} {
		got, err := Canonicalize([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("Canonicalize(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
}

// RFC 8785 section 3.2.3: names sort by UTF-16 code units, which puts
// U+1F600 (a surrogate pair) before U+FB33.
func TestCanonicalizeSortsByUTF16(t *testing.T) {
	in := `{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`
	want := "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"
	got, err := Canonicalize([]byte(in))
	if err != nil || string(got) != want {
		t.Fatalf("got %s, %v\nwant %s", got, err, want)
	}
}

func TestCanonicalizeRefuses(t *testing.T) {
	for _, in := range []string{
		``, `{`, `{"a"}`, `{"a":1,}`, `[1,]`, `01`, `1.`, `.5`, `1e`, `+1`, `NaN`, `tru`, `"abc`,
		`"\x"`, `"\u12"`, `"\ud800"`, `"\udc00x"`, `"\ud800\u0041"`, "\"\x01\"", "\"\xff\"",
		`{"a":1,"a":1}`, `1e400`, `12345678901234567890`, `-9007199254740993`,
		`1 2`, strings.Repeat("[", 100) + strings.Repeat("]", 100),
	} {
		if out, err := Canonicalize([]byte(in)); err == nil {
			t.Errorf("Canonicalize(%q) = %s, want an error", in, out)
		}
	}
	if _, err := Canonicalize([]byte(`{"a":1,"a":2}`)); !errors.Is(err, errCanonical) {
		t.Errorf("duplicate member: %v", err)
	}
}

// FuzzCanonicalize: never panics; what it accepts is valid JSON of the
// same value, and canonicalizing again changes nothing.
func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{`{"b":[1,2.5,{"c":null}],"a":"x"}`, `"\ud83d\ude00"`, `1e21`, `-0.0`, `{"\u20ac":1,"\ud83d\ude00":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonicalize(in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON out: %s", out)
		}
		again, err := Canonicalize(out)
		if err != nil || string(again) != string(out) {
			t.Fatalf("not idempotent: %s -> %s (%v)", out, again, err)
		}
		var a, b any
		if json.Unmarshal(in, &a) == nil && json.Unmarshal(out, &b) == nil && !sameJSON(a, b) {
			t.Fatalf("value changed: %s -> %s", in, out)
		}
	})
}

// sameJSON compares decoded JSON values, numbers by ==, so -0 equals 0.
func sameJSON(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if w, ok := b[k]; !ok || !sameJSON(v, w) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !sameJSON(a[i], b[i]) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

// FuzzCheckCanonical: checkCanonical accepts exactly the fixed points of
// Canonicalize.
func FuzzCheckCanonical(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5,{"c":null}],"b":"x"}`, `"\u001f\n"`, `"\u000a"`, `1e+21`, `{"\u20ac":1,"😀":2,"דּ":3}`, `{"b":1,"a":2}`, `-0`, `1E2`, `"\/"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonicalize(in)
		fixed := err == nil && string(out) == string(in)
		if got := checkCanonical(in) == nil; got != fixed {
			t.Fatalf("checkCanonical(%q) = %v, but Canonicalize gives %q, %v", in, got, out, err)
		}
	})
}
