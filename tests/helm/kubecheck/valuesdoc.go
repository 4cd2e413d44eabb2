package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// valuesDoc writes the chart's README.md from Chart.yaml and the comments
// of values.yaml: a value's description is its `# -- ` comment (the
// helm-docs convention). A map or list with such a comment is one row
// (its default shown whole); a map without one is a section whose keys
// are rows. A value without a description is an error: every value is
// documented.
func valuesDoc(chartDir string) (string, error) {
	var chart struct {
		Name        string `yaml:"name"`
		Description string `yaml:"description"`
		Version     string `yaml:"version"`
		AppVersion  string `yaml:"appVersion"`
		KubeVersion string `yaml:"kubeVersion"`
	}
	b, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return "", err
	}
	if err := yaml.Unmarshal(b, &chart); err != nil {
		return "", err
	}
	b, err = os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return "", err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return "", err
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return "", fmt.Errorf("values.yaml is not a mapping")
	}
	var rows []string
	var missing []string
	walkValues(doc.Content[0], "", &rows, &missing)
	if len(missing) > 0 {
		return "", fmt.Errorf("values without a `# -- ` description: %s", strings.Join(missing, ", "))
	}
	var out strings.Builder
	fmt.Fprintf(&out, "# %s chart\n\n", chart.Name)
	out.WriteString("<!-- Generated from Chart.yaml and the `# -- ` comments of values.yaml by\n" +
		"     `kubecheck values-doc deploy/helm/readmodel > deploy/helm/readmodel/README.md`\n" +
		"     (tests/helm/kubecheck, built by scripts/setup.d/40-helm.sh). Do not edit:\n" +
		"     CTest helm_chart fails when this file is not what values.yaml gives. -->\n\n")
	fmt.Fprintf(&out, "%s\n\n", strings.TrimSpace(chart.Description))
	fmt.Fprintf(&out, "Chart version %s, readmodel %s (the default image tag), Kubernetes `%s`.\n\n",
		chart.Version, chart.AppVersion, chart.KubeVersion)
	out.WriteString("How to build the image, create the Secrets, install, check and operate a\n" +
		"release: the repository README, \"Kubernetes\" and its \"Runbook (Kubernetes)\"\n" +
		"(every command there is run by the test suite). `values.schema.json`\n" +
		"rejects a misspelt or mistyped value at install.\n\n" +
		"After an install, `helm status RELEASE` prints how to check the release.\n\n")
	out.WriteString("## Values\n\n| Key | Type | Default | Description |\n|---|---|---|---|\n")
	for _, r := range rows {
		out.WriteString(r + "\n")
	}
	return out.String(), nil
}

// description: the text after the `-- ` marker of a head comment.
func description(comment string) (string, bool) {
	var lines []string
	found := false
	for _, l := range strings.Split(comment, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "#"))
		if strings.HasPrefix(l, "-- ") {
			found = true
			lines = nil // only the last marked block describes the key
			l = strings.TrimPrefix(l, "-- ")
		}
		if found && l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, " "), found
}

func walkValues(m *yaml.Node, prefix string, rows, missing *[]string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key := prefix + k.Value
		desc, ok := description(k.HeadComment)
		if v.Kind == yaml.MappingNode && len(v.Content) > 0 && !ok {
			walkValues(v, key+".", rows, missing)
			continue
		}
		if !ok {
			*missing = append(*missing, key)
			continue
		}
		*rows = append(*rows, fmt.Sprintf("| `%s` | %s | %s | %s |", key, valueType(v), cell(defaultOf(v)), cell(desc)))
	}
}

func valueType(v *yaml.Node) string {
	switch v.Kind {
	case yaml.MappingNode:
		return "object"
	case yaml.SequenceNode:
		return "list"
	}
	switch v.Tag {
	case "!!int":
		return "int"
	case "!!bool":
		return "bool"
	case "!!float":
		return "float"
	}
	return "string"
}

func defaultOf(v *yaml.Node) string {
	var x interface{}
	if err := v.Decode(&x); err != nil {
		return "?"
	}
	b, err := json.Marshal(x)
	if err != nil {
		return "?"
	}
	return "`" + string(b) + "`"
}

func cell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}
