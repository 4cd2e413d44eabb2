// Render test of the Helm chart, without helm (not packaged for Debian):
// the chart's templates are rendered with Go's text/template and sprig, as
// Helm does, implementing the Helm functions the chart uses (include, tpl,
// toYaml, required, .Files.Get). Then every manifest is checked for what
// Kubernetes requires and for consistency (selectors match labels, probes
// and ports match what readmodel serves), and each container's arguments
// and environment are run through `readmodel ... --check-config`.
//
// Usage: render CHART_DIR SECRET_FILE [VALUES_FILE...]
// Environment: READMODEL_BIN (the binary), RENDER_OUT (optional: write the
// rendered manifests there, for yamllint).
package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v3"
)

type obj = map[string]interface{}

var problems []string

func problem(format string, args ...interface{}) {
	problems = append(problems, fmt.Sprintf(format, args...))
}

func load(path string) obj {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	o := obj{}
	if err := yaml.Unmarshal(b, &o); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
		os.Exit(2)
	}
	return o
}

// merge overlays src on dst as Helm does with -f: maps merge, the rest replaces.
func merge(dst, src obj) obj {
	for k, v := range src {
		if sm, ok := v.(obj); ok {
			if dm, ok := dst[k].(obj); ok {
				dst[k] = merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
	return dst
}

// Files is .Files: Get reads a file of the chart.
type Files struct{ dir string }

func (f Files) Get(name string) string {
	b, err := os.ReadFile(filepath.Join(f.dir, name))
	if err != nil {
		return ""
	}
	return string(b)
}

func toYaml(v interface{}) string {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func render(chartDir string, values obj) (map[string]string, error) {
	chart := load(filepath.Join(chartDir, "Chart.yaml"))
	name := chart["name"].(string)
	top := obj{
		"Values":  values,
		"Chart":   obj{"Name": name, "Version": chart["version"], "AppVersion": chart["appVersion"]},
		"Release": obj{"Name": "readmodel", "Namespace": "booking", "Service": "Helm", "IsInstall": true, "Revision": 1},
		"Files":   Files{chartDir},
	}
	t := template.New("chart")
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env") // as Helm: templates do not read the environment
	delete(funcs, "expandenv")
	funcs["toYaml"] = toYaml
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil || v == "" {
			return nil, fmt.Errorf("%s", msg)
		}
		return v, nil
	}
	funcs["include"] = func(n string, data interface{}) (string, error) {
		var buf bytes.Buffer
		err := t.ExecuteTemplate(&buf, n, data)
		return buf.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		tt, err := t.Clone()
		if err != nil {
			return "", err
		}
		if tt, err = tt.New("tpl").Parse(text); err != nil {
			return "", err
		}
		var buf bytes.Buffer
		err = tt.Execute(&buf, data)
		return buf.String(), err
	}
	t.Funcs(funcs).Option("missingkey=zero")
	paths, _ := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	sort.Strings(paths)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if _, err := t.New(name + "/templates/" + filepath.Base(p)).Parse(string(b)); err != nil {
			return nil, err
		}
	}
	out := map[string]string{}
	for _, p := range paths {
		base := filepath.Base(p)
		if strings.HasPrefix(base, "_") {
			continue
		}
		n := name + "/templates/" + base
		data := obj{}
		for k, v := range top {
			data[k] = v
		}
		data["Template"] = obj{"Name": n, "BasePath": name + "/templates"}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, n, data); err != nil {
			return nil, err
		}
		out[base] = strings.ReplaceAll(buf.String(), "<no value>", "")
	}
	return out, nil
}

// get walks a path of keys and indexes ("spec", "template", 0, ...).
func get(o interface{}, path ...interface{}) interface{} {
	for _, k := range path {
		switch key := k.(type) {
		case string:
			m, ok := o.(obj)
			if !ok {
				return nil
			}
			o = m[key]
		case int:
			l, ok := o.([]interface{})
			if !ok || key >= len(l) {
				return nil
			}
			o = l[key]
		}
	}
	return o
}

func str(o interface{}, path ...interface{}) string {
	s, _ := get(o, path...).(string)
	return s
}

func list(o interface{}, path ...interface{}) []interface{} {
	l, _ := get(o, path...).([]interface{})
	return l
}

func subset(sel, labels obj) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

var dnsName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
var labelValue = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`)

var apiVersions = map[string]string{
	"ConfigMap": "v1", "Service": "v1", "ServiceAccount": "v1", "Deployment": "apps/v1",
	"HorizontalPodAutoscaler": "autoscaling/v2", "PodDisruptionBudget": "policy/v1",
	"CronJob": "batch/v1", "ServiceMonitor": "monitoring.coreos.com/v1",
	"PodMonitor": "monitoring.coreos.com/v1", "PrometheusRule": "monitoring.coreos.com/v1",
}

func argValue(args []string, flag string) (string, bool) {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

func asInt(v interface{}) int {
	switch n := v.(type) {
	case int:
		return n
	case string:
		i, _ := strconv.Atoi(n)
		return i
	}
	return -1
}

// checkPod checks a pod template and runs its container's command line.
func checkPod(where string, pod obj, configMaps map[string]obj, secretName string, secret obj, isServe bool) {
	spec, _ := pod["spec"].(obj)
	containers := list(spec, "containers")
	if len(containers) == 0 {
		problem("%s: no containers", where)
		return
	}
	if get(spec, "securityContext", "runAsNonRoot") != true {
		problem("%s: pod securityContext.runAsNonRoot is not true", where)
	}
	volumes := map[string]bool{}
	for _, v := range list(spec, "volumes") {
		volumes[str(v, "name")] = true
	}
	for _, c := range containers {
		cname := str(c, "name")
		if cname == "" || str(c, "image") == "" {
			problem("%s: a container without name or image", where)
		}
		if get(c, "securityContext", "readOnlyRootFilesystem") != true ||
			get(c, "securityContext", "allowPrivilegeEscalation") != false {
			problem("%s/%s: securityContext must make the root filesystem read-only and forbid privilege escalation", where, cname)
		}
		for _, m := range list(c, "volumeMounts") {
			if !volumes[str(m, "name")] {
				problem("%s/%s: volumeMount %s has no volume", where, cname, str(m, "name"))
			}
		}
		var args []string
		for _, a := range list(c, "args") {
			s, ok := a.(string)
			if !ok {
				problem("%s/%s: argument %v is not a string", where, cname, a)
			}
			args = append(args, s)
		}
		// ports: the metrics port is the one --metrics-addr listens on
		ports := map[string]int{}
		for _, p := range list(c, "ports") {
			ports[str(p, "name")] = asInt(get(p, "containerPort"))
		}
		addr, ok := argValue(args, "--metrics-addr")
		if !ok {
			problem("%s/%s: no --metrics-addr", where, cname)
		} else if want := addr[strings.LastIndex(addr, ":")+1:]; strconv.Itoa(ports["metrics"]) != want {
			problem("%s/%s: port 'metrics' is %d but --metrics-addr is %s", where, cname, ports["metrics"], addr)
		}
		if isServe {
			probes := map[string]string{"startupProbe": "/livez", "livenessProbe": "/livez", "readinessProbe": "/readyz"}
			for probe, path := range probes {
				if got := str(c, probe, "httpGet", "path"); got != path {
					problem("%s/%s: %s path %q, readmodel serves %s", where, cname, probe, got, path)
				}
				port := get(c, probe, "httpGet", "port")
				if ps, ok := port.(string); !ok || ports[ps] == 0 {
					problem("%s/%s: %s port %v is not a named container port", where, cname, probe, port)
				}
			}
			if asInt(get(c, "startupProbe", "periodSeconds"))*asInt(get(c, "startupProbe", "failureThreshold")) < 300 {
				problem("%s/%s: the startup probe allows less than five minutes", where, cname)
			}
			grace := asInt(get(spec, "terminationGracePeriodSeconds"))
			st, _ := argValue(args, "--shutdown-timeout")
			if s, _ := strconv.Atoi(st); grace <= s+5 {
				problem("%s: terminationGracePeriodSeconds %d must exceed --shutdown-timeout %s plus a flush", where, grace, st)
			}
		}
		// environment, as the kubelet would set it
		env := []string{"PATH=" + os.Getenv("PATH")}
		var secretValues []string
		for _, ef := range list(c, "envFrom") {
			cm, ok := configMaps[str(ef, "configMapRef", "name")]
			if !ok {
				problem("%s/%s: envFrom names ConfigMap %q, which the chart does not render", where, cname, str(ef, "configMapRef", "name"))
				continue
			}
			for k, v := range cm {
				env = append(env, k+"="+fmt.Sprint(v))
			}
		}
		for _, e := range list(c, "env") {
			n := str(e, "name")
			if ref := get(e, "valueFrom", "secretKeyRef"); ref != nil {
				if str(ref, "name") != secretName || secretName == "" {
					problem("%s/%s: env %s reads Secret %q, not secrets.existingSecret %q", where, cname, n, str(ref, "name"), secretName)
				}
				v, ok := secret[str(ref, "key")].(string)
				if !ok {
					problem("%s/%s: env %s reads key %q, absent from the test Secret", where, cname, n, str(ref, "key"))
				}
				if strings.Contains(v, "S3cret") { // the test Secret's passwords
					secretValues = append(secretValues, v)
				}
				env = append(env, n+"="+v)
			} else {
				env = append(env, n+"="+str(e, "value"))
			}
		}
		for _, a := range args {
			for _, s := range secretValues {
				if s != "" && strings.Contains(a, s) {
					problem("%s/%s: a secret value is in the arguments (visible in ps)", where, cname)
				}
			}
		}
		cmd := exec.Command(os.Getenv("READMODEL_BIN"), append(args, "--check-config")...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			problem("%s/%s: readmodel %s --check-config: %v\n%s", where, cname, strings.Join(args, " "), err, out)
			continue
		}
		for _, s := range secretValues {
			if strings.Contains(string(out), s) {
				problem("%s/%s: --check-config printed a secret value", where, cname)
			}
		}
		// With opensearch.url set, every container runs with the index
		// configured, and with the Secret's credentials when keys are given.
		if opensearchURL != "" && !strings.Contains(string(out), "opensearch="+opensearchURL+" ") {
			problem("%s/%s: opensearch.url is set but readmodel does not see it:\n%s", where, cname, out)
		}
		if opensearchAuth && !strings.Contains(string(out), "opensearch-auth=basic user") {
			problem("%s/%s: OpenSearch credentials from the Secret do not reach readmodel", where, cname)
		}
		fmt.Printf("  %s/%s: readmodel %s --check-config: ok\n", where, cname, args[0])
	}
}

// Set from the values in main: what every container must be configured with.
var opensearchURL string
var opensearchAuth bool

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: render CHART_DIR SECRET_FILE [VALUES_FILE...]")
		os.Exit(2)
	}
	chartDir := os.Args[1]
	secretDoc := load(os.Args[2])
	values := load(filepath.Join(chartDir, "values.yaml"))
	for _, f := range os.Args[3:] {
		values = merge(values, load(f))
	}
	files, err := render(chartDir, values)
	if err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
	secretName := str(values, "secrets", "existingSecret")
	opensearchURL = str(values, "opensearch", "url")
	opensearchAuth = str(values, "secrets", "opensearchUsernameKey") != ""
	secret, _ := secretDoc["stringData"].(obj)
	if secretName != "" && str(secretDoc, "metadata", "name") != secretName {
		problem("the test Secret is %q, values name %q", str(secretDoc, "metadata", "name"), secretName)
	}

	var docs []obj
	var all strings.Builder
	sep := regexp.MustCompile(`(?m)^---\s*$`)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !strings.HasSuffix(n, ".yaml") {
			continue
		}
		for _, part := range sep.Split(files[n], -1) {
			d := obj{}
			if err := yaml.Unmarshal([]byte(part), &d); err != nil {
				problem("%s: not YAML: %v\n%s", n, err, part)
				continue
			}
			if len(d) == 0 {
				continue
			}
			docs = append(docs, d)
			all.WriteString("---\n" + strings.TrimLeft(part, "\n"))
			if !strings.HasSuffix(part, "\n") {
				all.WriteString("\n")
			}
		}
	}
	if out := os.Getenv("RENDER_OUT"); out != "" {
		os.WriteFile(out, []byte(all.String()), 0o644)
	}

	byKind := map[string][]obj{}
	for _, d := range docs {
		kind, api, name := str(d, "kind"), str(d, "apiVersion"), str(d, "metadata", "name")
		if kind == "" || api == "" || name == "" {
			problem("a manifest without kind, apiVersion or metadata.name: %v", d)
			continue
		}
		if want, ok := apiVersions[kind]; !ok || want != api {
			problem("%s %s: apiVersion %s (expected %s)", kind, name, api, want)
		}
		if !dnsName.MatchString(name) || len(name) > 253 || (kind == "CronJob" && len(name) > 52) {
			problem("%s %s: not a valid name", kind, name)
		}
		for k, v := range get(d, "metadata", "labels").(obj) {
			if s := fmt.Sprint(v); len(s) > 63 || !labelValue.MatchString(s) {
				problem("%s %s: label %s=%q is not a valid label value", kind, name, k, s)
			}
		}
		byKind[kind] = append(byKind[kind], d)
		fmt.Printf("  %s %s\n", kind, name)
	}

	configMaps := map[string]obj{}
	for _, cm := range byKind["ConfigMap"] {
		data, _ := cm["data"].(obj)
		configMaps[str(cm, "metadata", "name")] = data
	}
	if len(byKind["Deployment"]) != 1 {
		problem("expected one Deployment, got %d", len(byKind["Deployment"]))
		report()
	}
	dep := byKind["Deployment"][0]
	depName := str(dep, "metadata", "name")
	podLabels, _ := get(dep, "spec", "template", "metadata", "labels").(obj)
	sel, _ := get(dep, "spec", "selector", "matchLabels").(obj)
	if !subset(sel, podLabels) {
		problem("Deployment: selector %v does not match pod labels %v", sel, podLabels)
	}
	checkPod("Deployment "+depName, get(dep, "spec", "template").(obj), configMaps, secretName, secret, true)
	replicas := asInt(get(dep, "spec", "replicas"))

	hpas := byKind["HorizontalPodAutoscaler"]
	for _, h := range hpas {
		if str(h, "spec", "scaleTargetRef", "kind") != "Deployment" || str(h, "spec", "scaleTargetRef", "name") != depName {
			problem("HPA does not target the Deployment")
		}
		if get(dep, "spec", "replicas") != nil {
			problem("Deployment sets replicas while an HPA scales it (they would fight on every upgrade)")
		}
		replicas = asInt(get(h, "spec", "minReplicas"))
		if replicas < 1 || replicas > asInt(get(h, "spec", "maxReplicas")) {
			problem("HPA: minReplicas %d, maxReplicas %v", replicas, get(h, "spec", "maxReplicas"))
		}
		if len(list(h, "spec", "metrics")) == 0 {
			problem("HPA: no metrics")
		}
	}
	for _, p := range byKind["PodDisruptionBudget"] {
		s, _ := get(p, "spec", "selector", "matchLabels").(obj)
		if !subset(s, podLabels) {
			problem("PDB: selector %v does not match the Deployment's pods", s)
		}
		minAv, maxUn := get(p, "spec", "minAvailable"), get(p, "spec", "maxUnavailable")
		if (minAv == nil) == (maxUn == nil) {
			problem("PDB: exactly one of minAvailable and maxUnavailable")
		}
		if n, ok := minAv.(int); ok && n >= replicas {
			problem("PDB: minAvailable %d with %d replicas blocks every node drain", n, replicas)
		}
	}
	svcPorts := map[string]bool{}
	var svcLabels obj
	for _, s := range byKind["Service"] {
		svcLabels, _ = get(s, "metadata", "labels").(obj)
		sel, _ := get(s, "spec", "selector").(obj)
		if !subset(sel, podLabels) {
			problem("Service: selector %v does not match the Deployment's pods", sel)
		}
		for _, p := range list(s, "spec", "ports") {
			svcPorts[str(p, "name")] = true
			tp := str(p, "targetPort")
			found := false
			for _, cp := range list(get(dep, "spec", "template", "spec", "containers", 0), "ports") {
				found = found || str(cp, "name") == tp
			}
			if !found {
				problem("Service: targetPort %q is not a container port name", tp)
			}
		}
	}
	for _, m := range byKind["ServiceMonitor"] {
		s, _ := get(m, "spec", "selector", "matchLabels").(obj)
		if !subset(s, svcLabels) {
			problem("ServiceMonitor: selector does not match the Service's labels")
		}
		for _, e := range list(m, "spec", "endpoints") {
			if !svcPorts[str(e, "port")] {
				problem("ServiceMonitor: port %q is not a Service port", str(e, "port"))
			}
		}
	}
	for _, r := range byKind["PrometheusRule"] {
		groups := list(r, "spec", "groups")
		if len(groups) == 0 {
			problem("PrometheusRule: no groups")
		}
		for _, g := range groups {
			for _, rule := range list(g, "rules") {
				if str(rule, "expr") == "" || (str(rule, "alert") == "" && str(rule, "record") == "") {
					problem("PrometheusRule: a rule without expr or alert/record")
				}
			}
		}
	}
	// RENDER_EXPECT="replicas=3 minAvailable=2": what a values file promises
	for _, kv := range strings.Fields(os.Getenv("RENDER_EXPECT")) {
		k, v, _ := strings.Cut(kv, "=")
		want, _ := strconv.Atoi(v)
		switch k {
		case "replicas":
			if replicas < want {
				problem("at least %d replicas expected, the chart runs %d", want, replicas)
			}
		case "minAvailable":
			pdbs := byKind["PodDisruptionBudget"]
			if len(pdbs) != 1 || asInt(get(pdbs[0], "spec", "minAvailable")) != want {
				problem("a PDB with minAvailable %d expected", want)
			}
		}
	}
	jobsSeen := map[string]bool{}
	for _, cj := range byKind["CronJob"] {
		n := str(cj, "metadata", "name")
		pod, _ := get(cj, "spec", "jobTemplate", "spec", "template").(obj)
		if pod == nil {
			problem("CronJob %s: no jobTemplate.spec.template", n)
			continue
		}
		if rp := str(pod, "spec", "restartPolicy"); rp != "Never" {
			problem("CronJob %s: restartPolicy %q (podFailurePolicy needs Never)", n, rp)
		}
		component := str(pod, "metadata", "labels", "app.kubernetes.io/component")
		jobsSeen[component] = true
		if component == "rebuild" && get(cj, "spec", "suspend") != true {
			problem("CronJob %s: the rebuild template must be suspended (run on demand)", n)
		}
		if subset(sel, get(pod, "metadata", "labels").(obj)) {
			problem("CronJob %s: its pods match the Deployment's selector", n)
		}
		for _, pm := range byKind["PodMonitor"] {
			matched := true
			for _, e := range list(pm, "spec", "selector", "matchExpressions") {
				v := fmt.Sprint(get(pod, "metadata", "labels", str(e, "key")))
				in := false
				for _, want := range list(e, "values") {
					in = in || fmt.Sprint(want) == v
				}
				matched = matched && in
			}
			if !matched {
				problem("PodMonitor does not select the %s Job's pods", component)
			}
		}
		checkPod("CronJob "+n, pod, configMaps, secretName, secret, false)
	}
	if v, _ := get(values, "rebuild", "enabled").(bool); v && !jobsSeen["rebuild"] {
		problem("rebuild.enabled but no rebuild CronJob")
	}
	report()
}

func report() {
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "PROBLEM:", p)
		}
		fmt.Printf("render: %d problem(s)\n", len(problems))
		os.Exit(1)
	}
	fmt.Println("render: every manifest checked")
	os.Exit(0)
}
