// Package source holds what every importer shares: the Importer interface,
// the registry that maps a format name to its importer, file-kind
// detection, the typed input error that names file, line and field, and a
// position index that finds the line of any field in a JSON or YAML file.
//
// Each format lives in its own package (source/ecs, source/lambda,
// source/compose, source/systemd) and registers itself at init.
package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/cutoverhq/cutover/internal/registry"
	"github.com/cutoverhq/cutover/service"
)

// File is one input file.
type File struct {
	// Path is the file's name as the user gave it; findings and errors
	// quote it.
	Path string
	Data []byte
}

// Options are the settings an importer may need that the input cannot say.
type Options struct {
	// Image is the container image for inputs that have none (systemd).
	// "" means a value the user fills.
	Image string
	// Env is the process environment used for interpolation (compose);
	// nil means none: unset variables become values to fill.
	Env map[string]string
	// Profiles are the compose profiles to enable.
	Profiles []string
	// Envs are the environments the output renders, in promotion order
	// (convert passes the render options'). An importer whose input
	// resolves differently per deployment (a Serverless stage) resolves
	// such values once per environment. Nil: no environment is known, and
	// such values resolve for the input's default deployment.
	Envs []string
}

// Importer turns the files of one format into services.
type Importer interface {
	// Detect reports whether the file looks like this importer's format.
	// It must be cheap and must not fail: bad content is Import's to report.
	Detect(f File) bool
	// Import reads all the files of this format the user named, groups the
	// ones that describe the same service (a task definition and its ECS
	// service, a function and its event source mappings), and returns one
	// Service per workload. An error is an *InputError where the input is
	// to blame.
	Import(ctx context.Context, files []File, opts Options) ([]*service.Service, error)
}

var importers = registry.New[Importer]("input format")

// Register makes an importer available under name. It panics on a
// duplicate name: that is a programming error.
func Register(name string, imp Importer) { importers.Register(name, imp) }

// ErrUnknownFormat is returned (wrapped) by Lookup for a name nobody
// registered.
var ErrUnknownFormat = errors.New("unknown input format")

// Lookup returns the importer registered under name, or an error that
// lists the known names. It never falls back to another importer.
func Lookup(name string) (Importer, error) {
	imp, err := importers.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownFormat, name, strings.Join(importers.Names(), ", "))
	}
	return imp, nil
}

// Names returns the registered format names, sorted.
func Names() []string { return importers.Names() }

// Detect returns the name of the first importer, in registration order,
// that recognises the file, or an error saying none did.
func Detect(f File) (string, error) {
	for _, name := range importers.InOrder() {
		imp, _ := importers.Lookup(name)
		if imp.Detect(f) {
			return name, nil
		}
	}
	if err := jsonSyntax(f); err != nil {
		return "", err
	}
	return "", &InputError{File: f.Path, Err: fmt.Errorf("cannot tell the input format; name it with --from (%s)", strings.Join(importers.Names(), ", "))}
}

// jsonSyntax returns the syntax error of a .json file that does not
// parse, with its line: no importer recognises such a file, and "cannot
// tell the input format" would hide the comment or trailing comma that is
// the real fault.
func jsonSyntax(f File) error {
	if !strings.EqualFold(filepath.Ext(f.Path), ".json") {
		return nil
	}
	var v any
	err := json.Unmarshal(f.Data, &v)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return nil
	}
	return &InputError{File: f.Path, Line: LineOfOffset(f.Data, se.Offset), Err: fmt.Errorf("invalid JSON: %s", strings.TrimPrefix(se.Error(), "json: "))}
}

// DetectAll returns the names of every importer, in registration order,
// that recognises the file: a CloudFormation template (cdk synth's, most
// often) may hold an ECS service and Lambda functions side by side, and
// each importer converts its own resources. It returns Detect's error when
// none does.
func DetectAll(f File) ([]string, error) {
	var names []string
	for _, name := range importers.InOrder() {
		imp, _ := importers.Lookup(name)
		if imp.Detect(f) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		_, err := Detect(f)
		return nil, err
	}
	return names, nil
}

// InputError is an error in the user's input: it names the file, the line
// (when known) and the field path.
type InputError struct {
	File  string
	Line  int
	Field string
	Err   error
}

func (e *InputError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *InputError) Unwrap() error { return e.Err }

// Errorf builds an InputError, taking the line from pos when it knows the
// field.
func Errorf(file string, pos *Positions, field, format string, args ...any) error {
	return &InputError{File: file, Line: pos.Line(field), Field: field, Err: fmt.Errorf(format, args...)}
}
