package compose

import (
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/source"
)

// Fields can come from files the user did not name: an `include:`d file,
// or the service an `extends:` names (in another file or the same one).
// compose-go merges them; for the report to name the file and line a
// field was written on, and to report the fields it drops, those files
// are tracked too, as auxiliary files placed before the given ones (a
// given file's own value of a field wins, as it does in compose).

// maxAux bounds the files include: and extends: may bring in.
const maxAux = 64

// addAuxFiles puts the included and extended files in front of pr.files.
// A file that cannot be read or parsed is skipped: compose-go has loaded
// the project already, so it was readable then or not needed.
func (pr *project) addAuxFiles() {
	aux := pr.included()
	var extended []rawFile
	for _, f := range append(append([]rawFile(nil), aux...), pr.files...) {
		extended = append(extended, pr.extendedServices(f)...)
	}
	all := append(append(extended, aux...), pr.files...)
	if len(all) > len(pr.files)+maxAux {
		all = all[len(all)-len(pr.files)-maxAux:]
	}
	pr.main = len(all) - len(pr.files)
	pr.files = all
}

// included returns the files the given files include, at any depth, each
// once, those it includes first; unreadable and unparsable ones are
// skipped. They are read once: scanIncluded and addAuxFiles both use them.
func (pr *project) included() []rawFile {
	if pr.includes != nil {
		return *pr.includes
	}
	var out []rawFile
	seen := map[string]bool{}
	var include func(f rawFile, depth int)
	include = func(f rawFile, depth int) {
		if depth > 10 || len(out) >= maxAux {
			return
		}
		for _, p := range pr.includePaths(f) {
			abs, err := filepath.Abs(p)
			if err != nil || seen[abs] {
				continue
			}
			seen[abs] = true
			data, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			rf, ok := auxFile(p, data)
			if !ok {
				continue
			}
			include(rf, depth+1)
			out = append(out, rf)
		}
	}
	for _, f := range pr.files {
		include(f, 0)
	}
	pr.includes = &out
	return out
}

// scanIncluded runs interpolation over copies of the included files,
// which compose-go reads itself, before it does: the variables they leave
// unset where no value to fill can stand (a port, a size) are to be blank
// there, as compose would leave them, and are reported as left out; the
// others become values to fill as in the named files.
func (pr *project) scanIncluded() {
	for _, rf := range pr.included() {
		var doc yaml.Node
		if yaml.Unmarshal(rf.Data, &doc) != nil {
			continue
		}
		before := len(pr.ip.omitted)
		// An error is compose-go's to report when it loads the file.
		_, _ = pr.ip.prepare(rf.Path, rf.pos, &doc)
		for _, o := range pr.ip.omitted[before:] {
			for _, v := range o.Vars {
				pr.ip.blank[v] = true
			}
		}
	}
}

// includePaths returns the files f's include: entries name, resolved
// against f's directory.
func (pr *project) includePaths(f rawFile) []string {
	dir := filepath.Dir(f.Path)
	var out []string
	add := func(n *yaml.Node) {
		n = resolve(n)
		if n == nil || n.Kind != yaml.ScalarNode || n.Value == "" {
			return
		}
		p := pr.interpolated(n.Value)
		if p == "" {
			return
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		out = append(out, p)
	}
	inc := resolve(f.node("include"))
	if inc == nil || inc.Kind != yaml.SequenceNode {
		return nil
	}
	for _, e := range inc.Content {
		e = resolve(e)
		switch {
		case e == nil:
		case e.Kind == yaml.ScalarNode:
			add(e)
		case e.Kind == yaml.MappingNode:
			for _, kv := range source.MapEntries(e) {
				if kv[0].Value != "path" {
					continue
				}
				if v := resolve(kv[1]); v != nil && v.Kind == yaml.SequenceNode {
					for _, c := range v.Content {
						add(c)
					}
				} else {
					add(kv[1])
				}
			}
		}
	}
	return out
}

// extendedServices returns, for each service of f that extends another,
// the other service's text as a document of its own in which it bears
// the extending service's name, its lines where they are in its file:
// the report then names the line each inherited field was written on.
// A chain of extends gives one document per link, the farthest first.
func (pr *project) extendedServices(f rawFile) []rawFile {
	services := resolve(f.node("services"))
	if services == nil || services.Kind != yaml.MappingNode {
		return nil
	}
	var out []rawFile
	for _, kv := range source.MapEntries(services) {
		out = append(out, pr.extendChain(f, kv[0].Value, kv[0].Value, 0)...)
	}
	return out
}

// extendChain follows the extends of service svc of f, for the service
// name that inherits it all.
func (pr *project) extendChain(f rawFile, svc, name string, depth int) []rawFile {
	if depth > 10 {
		return nil
	}
	prefix := "services." + svc
	if f.derived {
		prefix = "services." + name
	}
	ext := resolve(f.node(prefix + ".extends"))
	if ext == nil {
		return nil
	}
	base, file := "", f.Path
	switch ext.Kind {
	case yaml.ScalarNode:
		base = ext.Value
	case yaml.MappingNode:
		for _, e := range source.MapEntries(ext) {
			v := resolve(e[1])
			if v == nil || v.Kind != yaml.ScalarNode {
				continue
			}
			switch e[0].Value {
			case "service":
				base = v.Value
			case "file":
				p := pr.interpolated(v.Value)
				if p == "" {
					continue
				}
				if !filepath.IsAbs(p) {
					p = filepath.Join(filepath.Dir(f.Path), p)
				}
				file = p
			}
		}
	}
	if base == "" {
		return nil
	}
	var data []byte
	if file == f.Path && !f.derived {
		data = f.Data
	} else {
		var err error
		if data, err = os.ReadFile(file); err != nil {
			return nil
		}
	}
	rf, ok := serviceOnly(file, data, base, name)
	if !ok {
		return nil
	}
	return append(pr.extendChain(rf, base, name, depth+1), rf)
}

// serviceOnly returns the document of data reduced to its x- extensions
// (which anchors may be defined in) and service base renamed to name,
// every other line blank so each line keeps its number.
func serviceOnly(file string, data []byte, base, name string) (rawFile, bool) {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return rawFile{}, false
	}
	lines := strings.Split(string(data), "\n")
	keep := make([]bool, len(lines)+1)
	top := doc.Content[0]
	if top.Style == yaml.FlowStyle {
		return rawFile{}, false
	}
	// span marks the lines of the i-th entry of m: from its key to the
	// line before the next key (or the end of m's parent range).
	span := func(m *yaml.Node, i, end int) {
		from := m.Content[i].Line
		to := end
		if i+2 < len(m.Content) {
			to = m.Content[i+2].Line - 1
		}
		for l := from; l <= to && l < len(keep); l++ {
			keep[l] = true
		}
	}
	renamed := -1
	for i := 0; i+1 < len(top.Content); i += 2 {
		k := top.Content[i].Value
		end := len(lines)
		if i+2 < len(top.Content) {
			end = top.Content[i+2].Line - 1
		}
		if strings.HasPrefix(k, "x-") {
			span(top, i, end)
			continue
		}
		if k != "services" {
			continue
		}
		svcs := top.Content[i+1]
		if svcs.Kind != yaml.MappingNode || svcs.Style == yaml.FlowStyle {
			return rawFile{}, false
		}
		keep[top.Content[i].Line] = true
		for j := 0; j+1 < len(svcs.Content); j += 2 {
			if svcs.Content[j].Value == base {
				span(svcs, j, end)
				renamed = j
			}
		}
		if renamed >= 0 {
			key := svcs.Content[renamed]
			l, c := key.Line-1, key.Column-1
			if l < len(lines) && c <= len(lines[l]) {
				rest := lines[l][c:]
				if at := strings.Index(rest, base); at >= 0 && at <= 1 {
					lines[l] = lines[l][:c] + rest[:at] + name + rest[at+len(base):]
				}
			}
		}
	}
	if renamed < 0 {
		return rawFile{}, false
	}
	for i := range lines {
		if !keep[i+1] {
			lines[i] = ""
		}
	}
	rf, ok := auxFile(file, []byte(strings.Join(lines, "\n")))
	rf.derived = true
	return rf, ok
}

// auxFile parses an auxiliary file for tracking.
func auxFile(path string, data []byte) (rawFile, bool) {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return rawFile{}, false
	}
	if expandedSize(&root, map[*yaml.Node]int{}, 0) > maxNodes {
		return rawFile{}, false
	}
	pos, err := source.ParsePositions(path, data)
	if err != nil {
		return rawFile{}, false
	}
	return rawFile{File: source.File{Path: path, Data: data}, pos: pos, root: root.Content[0]}, true
}
