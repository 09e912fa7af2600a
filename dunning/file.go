package dunning

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// LoadPolicyFile reads BILLING_DUNNING_POLICY: a YAML or JSON document whose keys override
// DefaultPolicy (keys left out keep their default). Unknown keys, values of the wrong type and every
// Validate problem are reported together in one *PolicyError, prefixed with the file's path, so an
// operator fixes the file once rather than once per restart.
func LoadPolicyFile(path string) (Policy, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Policy{}, fmt.Errorf("dunning policy file: %w", err)
	}
	p, err := ParsePolicy(raw, DefaultPolicy())
	var pe *PolicyError
	if errors.As(err, &pe) {
		return Policy{}, &PolicyError{Source: path, Problems: pe.Problems}
	}
	return p, err
}

// ParsePolicy reads a policy document (YAML or JSON; JSON is YAML) over base and validates the result.
// An empty document yields base.
func ParsePolicy(doc []byte, base Policy) (Policy, error) {
	fields, err := documentFields(doc)
	if err != nil {
		return base, &PolicyError{Problems: []string{err.Error()}}
	}
	p, problems := overlay(base, fields)
	var invalid *PolicyError
	if errors.As(p.Validate(), &invalid) {
		problems = append(problems, invalid.Problems...)
	}
	if len(problems) > 0 {
		return base, &PolicyError{Problems: problems}
	}
	return p, nil
}

// documentFields parses doc into its top-level keys, each re-encoded as JSON so one decoder (Policy's
// JSON tags and Duration's UnmarshalJSON) serves both formats.
func documentFields(doc []byte) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil, nil
	}
	var top any
	if err := yaml.Unmarshal(doc, &top); err != nil {
		return nil, fmt.Errorf("not valid YAML or JSON: %v", err)
	}
	if top == nil {
		return nil, nil
	}
	m, ok := top.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the policy must be a mapping of keys to values, got %T", top)
	}
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", k, err)
		}
		out[k] = raw
	}
	return out, nil
}

// policyKeys maps each JSON key of Policy to its field index.
var policyKeys = func() map[string]int {
	t := reflect.TypeFor[Policy]()
	out := map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		out[name] = i
	}
	return out
}()

// PolicyKeys lists the keys a policy document may have, sorted.
func PolicyKeys() []string {
	keys := make([]string, 0, len(policyKeys))
	for k := range policyKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// overlay decodes each field onto base, collecting a problem per unknown key and per bad value.
func overlay(base Policy, fields map[string]json.RawMessage) (Policy, []string) {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	var problems []string
	v := reflect.ValueOf(&base).Elem()
	for _, k := range names {
		i, known := policyKeys[k]
		if !known {
			problems = append(problems, fmt.Sprintf("unknown key %q (known keys: %s)", k, strings.Join(PolicyKeys(), ", ")))
			continue
		}
		f := v.Field(i)
		dst := reflect.New(f.Type())
		dec := json.NewDecoder(bytes.NewReader(fields[k]))
		dec.DisallowUnknownFields() // a typo inside a rule or a window is as wrong as one at the top
		if err := dec.Decode(dst.Interface()); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s", k, valueError(err, f.Type())))
			continue
		}
		f.Set(dst.Elem())
	}
	return base, problems
}

func valueError(err error, t reflect.Type) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		switch t.Kind() {
		case reflect.Int:
			return "must be a whole number"
		case reflect.String:
			return "must be a string"
		}
	}
	return err.Error()
}
