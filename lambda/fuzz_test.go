package lambda

import (
	"encoding/base64"
	"encoding/json"
	"testing"
)

// FuzzErrorBody: whatever a runtime posts as an error (…/error,
// /init/error, a streaming trailer) becomes a FunctionError whose JSON is
// valid; never a panic.
func FuzzErrorBody(f *testing.F) {
	f.Add([]byte(`{"errorMessage":"boom","errorType":"errorString","stackTrace":[{"path":"main.go","line":3,"label":"main"}]}`))
	f.Add([]byte(`{"errorMessage":null,"errorType":"","stackTrace":"x"}`))
	f.Add([]byte(`Traceback (most recent call last)`))
	f.Add([]byte(`{"stackTrace":[`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		fe := &FunctionError{Type: "Unhandled"}
		parseErrorBody(fe, raw)
		if !json.Valid(fe.JSON()) {
			t.Fatalf("error JSON %q", fe.JSON())
		}
		te := trailerError("Runtime.StreamError", base64.StdEncoding.EncodeToString(raw))
		if !json.Valid(te.JSON()) {
			t.Fatalf("trailer error JSON %q", te.JSON())
		}
	})
}
