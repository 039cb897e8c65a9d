package compose

import (
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

// reporter is what both a source.Tracker and an ftrack do.
type reporter interface {
	Mapped(field, target string)
	Warn(field, target, msg string)
	Drop(field, msg string)
	Fill(field, target, msg string)
}

var (
	_ reporter = (*ftrack)(nil)
	_ reporter = (*source.Tracker)(nil)
)

// ftrack reports a field against the file that set it: with an override
// file, `services.web.image` may come from either. It wraps one
// source.Tracker per file of the project, all writing to one report.
type ftrack struct {
	pr     *project
	ts     []*source.Tracker
	prefix string
}

func (pr *project) track(r *service.Report) *ftrack {
	t := &ftrack{pr: pr}
	for _, f := range pr.files {
		t.ts = append(t.ts, source.NewTracker(f.Path, f.pos, r))
	}
	return t
}

// At returns a tracker whose paths are relative to prefix.
func (t *ftrack) At(prefix string) *ftrack {
	c := &ftrack{pr: t.pr, prefix: source.JoinPath(t.prefix, prefix)}
	for _, tr := range t.ts {
		c.ts = append(c.ts, tr.At(prefix))
	}
	return c
}

// pick returns the index of the last file that has field: the one whose
// value compose used.
func (t *ftrack) pick(field string) int {
	full := source.JoinPath(t.prefix, field)
	for i := len(t.pr.files) - 1; i >= 0; i-- {
		if t.pr.files[i].node(full) != nil {
			return i
		}
	}
	return t.pr.main
}

func (t *ftrack) each(field string, f func(tr *source.Tracker)) {
	i := t.pick(field)
	for j, tr := range t.ts {
		if j != i {
			tr.Use(field)
		}
	}
	f(t.ts[i])
}

func (t *ftrack) Mapped(field, target string) {
	t.each(field, func(tr *source.Tracker) { tr.Mapped(field, target) })
}

func (t *ftrack) Warn(field, target, msg string) {
	t.each(field, func(tr *source.Tracker) { tr.Warn(field, target, msg) })
}

func (t *ftrack) Drop(field, msg string) {
	t.each(field, func(tr *source.Tracker) { tr.Drop(field, msg) })
}

func (t *ftrack) Fill(field, target, msg string) {
	t.each(field, func(tr *source.Tracker) { tr.Fill(field, target, msg) })
}

// Use marks field handled in every file.
func (t *ftrack) Use(field string) {
	for _, tr := range t.ts {
		tr.Use(field)
	}
}

// Has reports whether any file gives field a value.
func (t *ftrack) Has(field string) bool {
	for _, tr := range t.ts {
		if tr.Has(field) {
			return true
		}
	}
	return false
}

// Line returns the line of field in the file that set it.
func (t *ftrack) Line(field string) int { return t.ts[t.pick(field)].Line(field) }

// File returns the name of the file that set field.
func (t *ftrack) File(field string) string { return t.pr.files[t.pick(field)].Path }

// Finish reports the fields under the prefix nobody covered, in every file.
func (t *ftrack) Finish() {
	for _, tr := range t.ts {
		tr.Finish()
	}
}

// items returns, for the list or map at field in every file (base first),
// the path of each entry and its node: "environment[2]" or
// "environment.KEY". Entries of a mapping come with their key node.
type item struct {
	file int
	path string
	key  *yaml.Node // for mapping entries
	val  *yaml.Node
}

func (t *ftrack) items(field string) []item {
	full := source.JoinPath(t.prefix, field)
	var out []item
	for i, f := range t.pr.files {
		n := f.node(full)
		if n == nil {
			continue
		}
		switch n.Kind {
		case yaml.SequenceNode:
			for j, c := range n.Content {
				out = append(out, item{file: i, path: field + "[" + strconv.Itoa(j) + "]", val: resolve(c)})
			}
		case yaml.MappingNode:
			for _, kv := range source.MapEntries(n) {
				out = append(out, item{file: i, path: field + "." + kv[0].Value, key: kv[0], val: resolve(kv[1])})
			}
		case yaml.ScalarNode:
			out = append(out, item{file: i, path: field, val: n})
		}
	}
	return out
}

// in returns the tracker of one file.
func (t *ftrack) in(file int) *source.Tracker { return t.ts[file] }

// node returns the raw node at a report path ("services.web.ports[0]"),
// following aliases and merge keys, or nil.
func (f rawFile) node(path string) *yaml.Node {
	n := f.root
	for _, part := range splitPath(path) {
		n = resolve(n)
		if n == nil {
			return nil
		}
		if strings.HasPrefix(part, "[") {
			i, err := strconv.Atoi(strings.Trim(part, "[]"))
			if err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
				return nil
			}
			n = n.Content[i]
			continue
		}
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for _, kv := range source.MapEntries(n) {
			if kv[0].Value == part {
				next = kv[1]
				break
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return resolve(n)
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// keyed indexes the entries of the list or map at field by key; a later
// file's entry wins, as in compose's merge.
func (t *ftrack) keyed(field string, keyOf func(it item) string) (map[string]item, []string) {
	out := map[string]item{}
	var order []string
	for _, it := range t.items(field) {
		k := keyOf(it)
		if k == "" {
			continue
		}
		if _, seen := out[k]; !seen {
			order = append(order, k)
		}
		out[k] = it
	}
	return out, order
}

// at returns where to report an entry: its own file and path when it was
// found, else the field in the file that set it.
func (t *ftrack) at(it item, ok bool, field string) (reporter, string) {
	if ok {
		return t.in(it.file), it.path
	}
	return t, field
}

// entryKey is the key of a map entry, or of a "KEY=value" list item, or a
// list item itself.
func entryKey(it item) string {
	switch {
	case it.key != nil:
		return it.key.Value
	case it.val != nil && it.val.Kind == yaml.ScalarNode:
		k, _, _ := strings.Cut(it.val.Value, "=")
		return k
	}
	return ""
}
