package ecs

import (
	"bytes"
	"reflect"
	"strings"
)

// encoding/json matches keys without regard to case, and so do the tools
// built on it: Terraform accepted "entrypoint" or "Memory" where ECS says
// "entryPoint" and "memory", and the task ran with them. cutover reads
// such a key as ECS's own, and so that the report speaks of the field the
// file holds, the key is respelt in place before anything reads the file:
// same bytes, same lines.

// ecsKeys and awsKeys map the lower-case form of every field name the
// importer knows, in ECS's files and in Elastic Load Balancing's and
// Application Auto Scaling's (which spell their fields in PascalCase), to
// its spelling, for names that only one spelling has.
var (
	ecsKeys = knownKeys([]any{taskDefinition{}, ecsService{}}, true)
	awsKeys = knownKeys([]any{targetGroup{}, scalingPolicy{}, scalableTarget{}}, false)
)

func knownKeys(types []any, drops bool) map[string]string {
	seen := map[string]map[string]bool{}
	add := func(name string) {
		l := strings.ToLower(name)
		if seen[l] == nil {
			seen[l] = map[string]bool{}
		}
		seen[l][name] = true
	}
	var walk func(t reflect.Type, depth int)
	walk = func(t reflect.Type, depth int) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || depth > 8 {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			add(name)
			walk(f.Type, depth+1)
		}
	}
	for _, v := range types {
		walk(reflect.TypeOf(v), 0)
	}
	if drops {
		for _, d := range containerDrops {
			add(d.field[strings.LastIndex(d.field, ".")+1:])
		}
		for _, d := range taskDrops {
			add(d.field)
		}
		for _, d := range serviceDrops {
			add(d.field[strings.LastIndex(d.field, ".")+1:])
		}
	}
	out := map[string]string{}
	for l, names := range seen {
		if len(names) == 1 {
			for n := range names {
				out[l] = n
			}
		}
	}
	return out
}

// freeFormKeys hold maps whose keys are the user's own (log driver
// options, Docker labels): they are never respelt.
var freeFormKeys = map[string]bool{"options": true, "dockerLabels": true, "driverOpts": true, "labels": true}

// respellKeys returns data with every object key that differs from a
// known field name only in case spelt as that field, outside free-form
// maps, or nil when no key needed it. Only ASCII letters change, so every
// offset and line stays.
func respellKeys(data []byte) []byte {
	known := ecsKeys
	for _, k := range []string{`"TargetGroups"`, `"ScalingPolicies"`, `"ScalableTargets"`} {
		if bytes.Contains(data, []byte(k)) {
			known = awsKeys
		}
	}
	type frame struct {
		object, expectKey, free bool
		key                     string
	}
	var stack []frame
	var out []byte
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '{', '[':
			free := false
			if n := len(stack); n > 0 {
				top := stack[n-1]
				free = top.free || top.object && freeFormKeys[top.key]
			}
			stack = append(stack, frame{object: data[i] == '{', expectKey: data[i] == '{', free: free})
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case ':':
			if n := len(stack); n > 0 {
				stack[n-1].expectKey = false
			}
		case ',':
			if n := len(stack); n > 0 && stack[n-1].object {
				stack[n-1].expectKey = true
			}
		case '"':
			j := i + 1
			escaped := false
			for j < len(data) && data[j] != '"' {
				if data[j] == '\\' {
					escaped = true
					j++
				}
				j++
			}
			if j >= len(data) {
				return out
			}
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expectKey {
				key := string(data[i+1 : j])
				if c, ok := known[strings.ToLower(key)]; ok && !escaped && c != key && len(c) == len(key) && !stack[n-1].free {
					if out == nil {
						out = append([]byte{}, data...)
					}
					copy(out[i+1:j], c)
					key = c
				}
				stack[n-1].key = key
			}
			i = j
		}
	}
	return out
}

// containerKeys are the fields of an ECS container definition.
var containerKeys = func() map[string]bool {
	out := map[string]bool{}
	t := reflect.TypeOf(containerDef{})
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		out[name] = true
	}
	for _, d := range containerDrops {
		name, _, _ := strings.Cut(d.field, ".")
		out[name] = true
	}
	return out
}()
