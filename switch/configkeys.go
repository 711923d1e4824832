package switching

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// checkKeys walks a parsed YAML document against the Go type it is
// decoded into and reports every key the type does not have by its YAML
// path (ledger.max_pin_trys), suggesting the nearest known key. The YAML
// decoder's own message names Go types (switching.LedgerConfig), which
// tell an operator nothing. It also returns, for each line of the file,
// the YAML path of the value on it, so the decoder's type errors ("line
// 7: cannot unmarshal ...") can be given their path too.
func checkKeys(doc *yaml.Node, t reflect.Type) (lines map[int]string, err error) {
	lines = map[int]string{}
	var errs []error
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		walkKeys(doc.Content[0], t, "", lines, &errs)
	}
	return lines, errors.Join(errs...)
}

var (
	yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func walkKeys(n *yaml.Node, t reflect.Type, path string, lines map[int]string, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if path != "" {
		if _, seen := lines[n.Line]; !seen {
			lines[n.Line] = path
		}
	}
	// Types decoded by their own method: decode here too, so that their
	// error (a bad amount, an unknown holder type) gets its path.
	if pt := reflect.PointerTo(t); pt.Implements(yamlUnmarshaler) || pt.Implements(textUnmarshaler) {
		v := reflect.New(t).Interface()
		var err error
		if u, ok := v.(yaml.Unmarshaler); ok {
			err = u.UnmarshalYAML(n)
		} else if n.Kind == yaml.ScalarNode {
			err = v.(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value))
		}
		if err != nil {
			msg := strings.TrimPrefix(yamlLineRe.ReplaceAllString(err.Error(), ""), "ledger: ")
			*errs = append(*errs, fmt.Errorf("%s (line %d): %s", path, n.Line, msg))
		}
		return
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" {
				walkKeys(v, t, path, lines, errs)
				continue
			}
			sub := k.Value
			if path != "" {
				sub = path + "." + k.Value
			}
			lines[k.Line] = sub
			ft, ok := fields[k.Value]
			if !ok {
				msg := fmt.Sprintf("%s (line %d): unknown key", sub, k.Line)
				if near := nearestKey(k.Value, fields); near != "" {
					msg += fmt.Sprintf("; did you mean %s?", near)
				} else {
					msg += fmt.Sprintf("; %s has %s", orTop(path), strings.Join(sortedKeys(fields), ", "))
				}
				*errs = append(*errs, errors.New(msg))
				continue
			}
			walkKeys(v, ft, sub, lines, errs)
		}
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && n.Kind == yaml.SequenceNode:
		for i, v := range n.Content {
			walkKeys(v, t.Elem(), path+"["+strconv.Itoa(i)+"]", lines, errs)
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			sub := path + "." + k.Value
			lines[k.Line] = sub
			walkKeys(v, t.Elem(), sub, lines, errs)
		}
	}
}

func orTop(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

// yamlFields maps the YAML keys of a struct (inline structs flattened) to
// their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range yamlFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func sortedKeys(m map[string]reflect.Type) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// nearestKey returns the known key closest to a misspelt one, when it is
// close enough to be the likely intent: at most a third of the key's
// length in edits (at least 1, at most 3), or one key containing the
// other.
func nearestKey(k string, fields map[string]reflect.Type) string {
	best, bestD := "", 1<<30
	for _, cand := range sortedKeys(fields) {
		d := editDistance(strings.ToLower(k), cand)
		if d < bestD {
			best, bestD = cand, d
		}
	}
	limit := min(max(len(k)/3, 1), 3)
	if bestD <= limit {
		return best
	}
	for _, cand := range sortedKeys(fields) {
		if len(k) >= 3 && (strings.Contains(cand, strings.ToLower(k)) || strings.Contains(strings.ToLower(k), cand)) {
			return cand
		}
	}
	return ""
}

// editDistance is the Levenshtein distance of a and b, counting an
// adjacent transposition as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

var yamlLineRe = regexp.MustCompile(`line (\d+): `)

// withPaths rewrites the YAML decoder's errors ("line 7: cannot unmarshal
// !!str `abc` into int") to lead with the YAML path of that line, and
// drops the Go type names it mentions.
func withPaths(err error, lines map[int]string) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, 0, len(te.Errors))
		for _, e := range te.Errors {
			msgs = append(msgs, pathOfLine(e, lines))
		}
		return errors.New(strings.Join(msgs, "\n"))
	}
	return errors.New(pathOfLine(err.Error(), lines))
}

var goTypeRe = regexp.MustCompile(`(\[\])?\b(switching|ledger|routing|hsm|time)\.([A-Z]\w*)`)

func pathOfLine(msg string, lines map[int]string) string {
	msg = strings.TrimPrefix(msg, "yaml: ")
	if m := yamlLineRe.FindStringSubmatchIndex(msg); m != nil {
		line, _ := strconv.Atoi(msg[m[2]:m[3]])
		if p, ok := lines[line]; ok {
			msg = msg[:m[0]] + p + " (line " + msg[m[2]:m[3]] + "): " + msg[m[1]:]
		}
	}
	return goTypeRe.ReplaceAllStringFunc(msg, func(s string) string {
		switch {
		case strings.HasPrefix(s, "[]"):
			return "a list"
		case strings.HasSuffix(s, ".Duration"):
			return "a duration (30s, 5m)"
		case strings.HasSuffix(s, ".Fen"):
			return "an amount (12.34)"
		}
		return "a mapping of keys"
	})
}
