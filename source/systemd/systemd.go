// Package systemd imports systemd service units from a VM: one
// service.Service per .service unit, with its drop-ins, the .socket unit
// that activates it and the .timer unit that schedules it, and a report
// line for every key.
//
// A VM has no image: the image comes from source.Options.Image or is a
// value the user fills, and the report says what the image must contain
// (the binaries ExecStart runs, the files the unit reads).
package systemd

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

func init() { source.Register("systemd", Importer{}) }

// Importer reads systemd unit files.
type Importer struct{}

var _ source.Importer = Importer{}

// Detect reports whether f is a unit: a .service, .socket or .timer file
// name, a drop-in (.conf in a .service.d directory), or INI text with a
// [Service] section.
func (Importer) Detect(f source.File) bool {
	name := strings.TrimSuffix(filepath.Base(f.Path), ".in")
	switch filepath.Ext(name) {
	case ".service", ".socket", ".timer":
		return true
	case ".conf":
		if strings.HasSuffix(filepath.Base(filepath.Dir(f.Path)), ".service.d") {
			return true
		}
	}
	for _, line := range bytes.Split(f.Data, []byte("\n")) {
		if string(bytes.TrimSpace(line)) == "[Service]" {
			return true
		}
	}
	return false
}

// unit is a .service unit and what belongs to it.
type unit struct {
	// Name is the unit name: "nginx.service", "worker@.service".
	Name    string
	Main    *unitFile
	DropIns []*unitFile
	Socket  *unitFile
	Timer   *unitFile
}

// Import converts every .service unit among files. Drop-ins apply to the
// unit their directory names; a .socket or .timer applies to the unit its
// Service=/Unit= key names, by default the one with its own base name.
func (Importer) Import(ctx context.Context, files []source.File, opts source.Options) ([]*service.Service, error) {
	units := map[string]*unit{}
	var order []string
	get := func(name string) *unit {
		u, ok := units[name]
		if !ok {
			u = &unit{Name: name}
			units[name] = u
			order = append(order, name)
		}
		return u
	}
	var sockets, timers, dropins []*unitFile
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		uf, err := parseUnit(f.Path, f.Data)
		if err != nil {
			return nil, err
		}
		// A unit template of a source tree (haproxy.service.in) is the
		// unit it builds.
		name := strings.TrimSuffix(filepath.Base(f.Path), ".in")
		dir := filepath.Base(filepath.Dir(f.Path))
		switch {
		case strings.HasSuffix(dir, ".service.d") && strings.HasSuffix(name, ".conf"):
			dropins = append(dropins, uf)
		case strings.HasSuffix(name, ".socket"):
			sockets = append(sockets, uf)
		case strings.HasSuffix(name, ".timer"):
			timers = append(timers, uf)
		default:
			if !strings.HasSuffix(name, ".service") {
				name = strings.TrimSuffix(name, filepath.Ext(name)) + ".service"
			}
			u := get(name)
			if u.Main != nil {
				return nil, &source.InputError{File: f.Path, Err: errors.New("unit " + name + " given twice (also " + u.Main.Path + ")")}
			}
			u.Main = uf
		}
	}
	sort.Slice(dropins, func(i, j int) bool { return filepath.Base(dropins[i].Path) < filepath.Base(dropins[j].Path) })
	for _, d := range dropins {
		name := strings.TrimSuffix(filepath.Base(filepath.Dir(d.Path)), ".d")
		u, ok := units[name]
		if !ok {
			return nil, &source.InputError{File: d.Path, Err: errors.New("drop-in for " + name + ", which is not among the inputs")}
		}
		u.DropIns = append(u.DropIns, d)
	}
	for _, s := range sockets {
		target := triggered(s, "Socket", "Service", ".socket")
		u, ok := units[target]
		if !ok {
			return nil, &source.InputError{File: s.Path, Err: errors.New("socket for " + target + ", which is not among the inputs")}
		}
		u.Socket = s
	}
	for _, t := range timers {
		target := triggered(t, "Timer", "Unit", ".timer")
		u, ok := units[target]
		if !ok {
			return nil, &source.InputError{File: t.Path, Err: errors.New("timer for " + target + ", which is not among the inputs")}
		}
		u.Timer = t
	}
	var out []*service.Service
	for _, name := range order {
		svc, err := convert(units[name], opts)
		if err != nil {
			return nil, err
		}
		out = append(out, svc)
	}
	return out, nil
}

// triggered returns the service a socket or timer starts: its key (Service=
// or Unit=), else the unit of the same base name.
func triggered(uf *unitFile, section, key, ext string) string {
	for _, e := range uf.Entries {
		if e.Section == section && e.Key == key && e.Value != "" {
			return e.Value
		}
	}
	return strings.TrimSuffix(strings.TrimSuffix(filepath.Base(uf.Path), ".in"), ext) + ".service"
}
