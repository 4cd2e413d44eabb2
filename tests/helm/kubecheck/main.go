// kubecheck: the manifest checker of the chart test (tests/helm/), built
// by scripts/setup.d/40-helm.sh.
//
//	kubecheck check [-values FILE]... [-secrets FILE]... [-expect "replicas=3 minAvailable=2"] MANIFESTS...
//
// decodes every manifest `helm template` rendered strictly into the
// Kubernetes API types (k8s.io/api, and the Prometheus Operator's for
// ServiceMonitor, PodMonitor and PrometheusRule): unknown fields, a field
// in the wrong case, duplicate keys and values of the wrong type are
// errors. Then it checks what Kubernetes cannot: selectors match the pods'
// labels, probes are the paths readmodel serves on the port --metrics-addr
// listens on, every Secret and key the pods read exists in the -secrets
// files (what the operator creates), no secret value reaches an argument,
// and each container's arguments and environment pass
// `readmodel ... --check-config` (READMODEL_BIN). -values are the values
// files in the order helm merged them (values.yaml first).
//
//	kubecheck kubectl ARGS...
//
// runs kubectl (k8s.io/kubectl) itself, for the runbook test to run the
// README's `kubectl create secret ... --dry-run=client -o yaml` commands.
//
//	kubecheck values-doc CHART_DIR
//
// prints the chart's README.md, generated from Chart.yaml and the `# -- `
// comments of values.yaml (every value must have one).
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kubectl "k8s.io/kubectl/pkg/cmd"
	"sigs.k8s.io/yaml"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	if len(os.Args) > 1 && os.Args[1] == "kubectl" {
		os.Args = append([]string{"kubectl"}, os.Args[2:]...)
		if err := kubectl.NewDefaultKubectlCommand().Execute(); err != nil {
			os.Exit(1)
		}
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "values-doc" {
		doc, err := valuesDoc(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "values-doc:", err)
			os.Exit(1)
		}
		fmt.Print(doc)
		return
	}
	if len(os.Args) < 2 || os.Args[1] != "check" {
		fmt.Fprintln(os.Stderr, "usage: kubecheck check [-values F]... [-secrets F]... [-readme F] [-expect S] [-mount-root D] MANIFESTS... | kubecheck kubectl ARGS... | kubecheck values-doc CHART_DIR")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	var valueFiles, secretFiles listFlag
	fs.Var(&valueFiles, "values", "values file, in helm's merge order (repeat)")
	fs.Var(&secretFiles, "secrets", "file of Secret manifests the operator creates (repeat)")
	readme := fs.String("readme", "", "README whose headings the alerts' runbook_url anchors must name")
	expect := fs.String("expect", "", `what the values promise, e.g. "replicas=3 minAvailable=2"`)
	mountRoot := fs.String("mount-root", "", "directory standing in for / under /etc/readmodel/ when --check-config runs: where the test put the files the pod mounts (TLS files from Secrets)")
	_ = fs.Parse(os.Args[2:])

	c := &checker{secrets: map[string]map[string]string{}, readmodel: os.Getenv("READMODEL_BIN")}
	values := map[string]interface{}{}
	for _, f := range valueFiles {
		values = merge(values, loadValues(c, f))
	}
	c.secretName = str(values, "secrets", "existingSecret")
	c.opensearchURL = str(values, "opensearch", "url")
	c.opensearchAuth = str(values, "secrets", "opensearchUsernameKey") != ""
	c.runbookBase = str(values, "prometheusRule", "runbookBaseUrl")
	c.mountRoot = *mountRoot
	c.redisTLS = str(values, "redis", "tls", "secretName") != ""
	c.redisTLSKeys = [2]string{str(values, "redis", "tls", "caKey"), str(values, "redis", "tls", "certKey")}
	if *readme != "" {
		a, err := readmeAnchors(*readme)
		if err != nil {
			c.problem("%v", err)
		}
		c.readmeAnchors = a
	}

	for _, f := range secretFiles {
		objs, errs := decodeFile(f)
		c.problems = append(c.problems, errs...)
		for _, o := range objs {
			s, ok := o.value.(*corev1.Secret)
			if !ok {
				c.problem("%s: %s in a Secret file", o.source, o.kind)
				continue
			}
			kv := map[string]string{}
			for k, v := range s.Data {
				kv[k] = string(v)
			}
			for k, v := range s.StringData {
				kv[k] = v
			}
			c.secrets[s.Name] = kv
		}
	}
	var objs []object
	for _, f := range fs.Args() {
		o, errs := decodeFile(f)
		c.problems = append(c.problems, errs...)
		objs = append(objs, o...)
	}
	if len(objs) == 0 {
		c.problem("no manifests")
		report(c)
	}
	m := c.sort(objs)
	c.checkAll(m, values, *expect)
	report(c)
}

func report(c *checker) {
	if len(c.problems) > 0 {
		for _, p := range c.problems {
			fmt.Fprintln(os.Stderr, "PROBLEM:", p)
		}
		fmt.Printf("kubecheck: %d problem(s)\n", len(c.problems))
		os.Exit(1)
	}
	fmt.Println("kubecheck: every manifest decoded strictly and checked")
	os.Exit(0)
}

func loadValues(c *checker, path string) map[string]interface{} {
	b, err := os.ReadFile(path)
	if err != nil {
		c.problem("%v", err)
		return nil
	}
	v := map[string]interface{}{}
	if err := yaml.Unmarshal(b, &v); err != nil {
		c.problem("%s: %v", path, err)
	}
	return v
}

// merge overlays src on dst as helm does with -f: maps merge, the rest replaces.
func merge(dst, src map[string]interface{}) map[string]interface{} {
	for k, v := range src {
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok {
				dst[k] = merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
	return dst
}

func str(o interface{}, path ...string) string {
	for _, k := range path {
		m, ok := o.(map[string]interface{})
		if !ok {
			return ""
		}
		o = m[k]
	}
	s, _ := o.(string)
	return s
}

func (c *checker) checkAll(m manifests, values map[string]interface{}, expect string) {
	if len(m.deployments) != 1 {
		c.problem("expected one Deployment, got %d", len(m.deployments))
		return
	}
	dep := m.deployments[0]
	podLabels := dep.Spec.Template.Labels
	if dep.Spec.Selector == nil || !selects(dep.Spec.Selector.MatchLabels, podLabels) || len(dep.Spec.Selector.MatchExpressions) > 0 {
		c.problem("Deployment: selector %v does not match pod labels %v", dep.Spec.Selector, podLabels)
	}
	c.checkPod("Deployment "+dep.Name, dep.Spec.Template, true)
	replicas := int32(1)
	if dep.Spec.Replicas != nil {
		replicas = *dep.Spec.Replicas
	}
	for _, h := range m.hpas {
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != dep.Name {
			c.problem("HPA does not target the Deployment")
		}
		if dep.Spec.Replicas != nil {
			c.problem("Deployment sets replicas while an HPA scales it (they would fight on every upgrade)")
		}
		replicas = 1
		if h.Spec.MinReplicas != nil {
			replicas = *h.Spec.MinReplicas
		}
		if replicas < 1 || replicas > h.Spec.MaxReplicas {
			c.problem("HPA: minReplicas %d, maxReplicas %d", replicas, h.Spec.MaxReplicas)
		}
		if len(h.Spec.Metrics) == 0 {
			c.problem("HPA: no metrics")
		}
	}
	for _, p := range m.pdbs {
		if p.Spec.Selector == nil || !selects(p.Spec.Selector.MatchLabels, podLabels) {
			c.problem("PDB: selector does not match the Deployment's pods")
		}
		if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			c.problem("PDB: exactly one of minAvailable and maxUnavailable")
		}
		if p.Spec.MinAvailable != nil && p.Spec.MinAvailable.IntValue() >= int(replicas) {
			c.problem("PDB: minAvailable %s with %d replicas blocks every node drain", p.Spec.MinAvailable.String(), replicas)
		}
	}
	c.checkServices(m, dep)
	c.checkRules(m)
	c.checkJobs(m, values, podLabels, dep)
	c.checkExpect(m, replicas, expect)
	if sa := dep.Spec.Template.Spec.ServiceAccountName; sa != "" && sa != "default" {
		found := false
		for _, a := range m.accounts {
			found = found || a.Name == sa
		}
		if !found && (values["serviceAccount"] == nil || values["serviceAccount"].(map[string]interface{})["create"] == true) {
			c.problem("Deployment: serviceAccountName %q is not rendered", sa)
		}
	}
}

func (c *checker) checkServices(m manifests, dep *appsv1.Deployment) {
	svcPorts := map[string]bool{}
	var svcLabels map[string]string
	container := dep.Spec.Template.Spec.Containers[0]
	for _, s := range m.services {
		svcLabels = s.Labels
		if !selects(s.Spec.Selector, dep.Spec.Template.Labels) {
			c.problem("Service: selector %v does not match the Deployment's pods", s.Spec.Selector)
		}
		for _, p := range s.Spec.Ports {
			svcPorts[p.Name] = true
			if _, ok := portNames(container)[p.TargetPort.StrVal]; !ok {
				c.problem("Service: targetPort %q is not a container port name", p.TargetPort.String())
			}
		}
	}
	for _, sm := range m.svcMonitors {
		if !selects(sm.Spec.Selector.MatchLabels, svcLabels) {
			c.problem("ServiceMonitor: selector does not match the Service's labels")
		}
		for _, e := range sm.Spec.Endpoints {
			if !svcPorts[e.Port] {
				c.problem("ServiceMonitor: port %q is not a Service port", e.Port)
			}
		}
	}
}

// checkRules: every alert an on-call engineer can act on: a summary, a
// description, a runbook_url at prometheusRule.runbookBaseUrl whose anchor
// is a heading of the README, and an expression scoped by namespace (one
// alert per release).
func (c *checker) checkRules(m manifests) {
	for _, r := range m.rules {
		if len(r.Spec.Groups) == 0 {
			c.problem("PrometheusRule: no groups")
		}
		for _, g := range r.Spec.Groups {
			for _, rule := range g.Rules {
				if rule.Expr.String() == "" || (rule.Alert == "" && rule.Record == "") {
					c.problem("PrometheusRule: a rule without expr or alert/record")
				}
				if rule.Alert == "" {
					continue
				}
				for _, a := range []string{"summary", "description", "runbook_url"} {
					if strings.TrimSpace(rule.Annotations[a]) == "" {
						c.problem("alert %s: no %s annotation", rule.Alert, a)
					}
				}
				if !strings.Contains(rule.Expr.String(), "by (namespace, job") {
					c.problem("alert %s: not aggregated by (namespace, job, ...): one alert per pod or across releases", rule.Alert)
				}
				url := rule.Annotations["runbook_url"]
				base, anchor, _ := strings.Cut(url, "#")
				if c.runbookBase != "" && base != strings.TrimSuffix(c.runbookBase, "/") {
					c.problem("alert %s: runbook_url %s is not at prometheusRule.runbookBaseUrl %s", rule.Alert, url, c.runbookBase)
				}
				if c.readmeAnchors != nil && !c.readmeAnchors[anchor] {
					c.problem("alert %s: runbook_url %s: the README has no heading with anchor %q", rule.Alert, url, anchor)
				}
			}
		}
	}
}

// readmeAnchors: the anchors a git host gives the headings of a Markdown
// file (lower case, punctuation dropped, spaces as hyphens).
func readmeAnchors(path string) (map[string]bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	anchors := map[string]bool{}
	fence := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
		}
		if fence || !strings.HasPrefix(line, "#") {
			continue
		}
		var a strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#"))) {
			switch {
			case r == ' ':
				a.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				a.WriteRune(r)
			}
		}
		anchors[a.String()] = true
	}
	return anchors, nil
}

// checkExpect: what a values file promises, e.g. "replicas=3 minAvailable=2".
func (c *checker) checkExpect(m manifests, replicas int32, expect string) {
	for _, kv := range strings.Fields(expect) {
		k, v, _ := strings.Cut(kv, "=")
		want, _ := strconv.Atoi(v)
		switch k {
		case "replicas":
			if int(replicas) < want {
				c.problem("at least %d replicas expected, the chart runs %d", want, replicas)
			}
		case "minAvailable":
			if len(m.pdbs) != 1 || m.pdbs[0].Spec.MinAvailable == nil || m.pdbs[0].Spec.MinAvailable.IntValue() != want {
				c.problem("a PDB with minAvailable %d expected", want)
			}
		case "priorityClassName", "podAnnotation":
			for where, pod := range c.pods {
				if k == "priorityClassName" && pod.Spec.PriorityClassName != v {
					c.problem("%s: priorityClassName %q, the values say %q", where, pod.Spec.PriorityClassName, v)
				}
				if _, ok := pod.Annotations[v]; k == "podAnnotation" && !ok {
					c.problem("%s: no pod annotation %s", where, v)
				}
			}
		case "saAnnotation":
			found := false
			for _, a := range m.accounts {
				_, ok := a.Annotations[v]
				found = found || ok
			}
			if !found {
				c.problem("the ServiceAccount has no annotation %s", v)
			}
		case "spread":
			if n := len(m.deployments[0].Spec.Template.Spec.TopologySpreadConstraints); n != want {
				c.problem("the Deployment has %d topologySpreadConstraints, %d expected", n, want)
			}
		case "env": // an extraEnv variable every container has
			for where, pod := range c.pods {
				found := false
				for _, e := range pod.Spec.Containers[0].Env {
					found = found || e.Name == v
				}
				if !found {
					c.problem("%s: no environment variable %s (extraEnv)", where, v)
				}
			}
		case "envFrom":
			for where, pod := range c.pods {
				if n := len(pod.Spec.Containers[0].EnvFrom); n != want {
					c.problem("%s: %d envFrom sources, %d expected", where, n, want)
				}
			}
		default:
			c.problem("unknown -expect %s", k)
		}
	}
}

func (c *checker) checkJobs(m manifests, values map[string]interface{}, _ map[string]string, dep *appsv1.Deployment) {
	seen := map[string]bool{}
	for _, cj := range m.cronJobs {
		pod := cj.Spec.JobTemplate.Spec.Template
		if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
			c.problem("CronJob %s: restartPolicy %q (podFailurePolicy needs Never)", cj.Name, pod.Spec.RestartPolicy)
		}
		component := pod.Labels["app.kubernetes.io/component"]
		seen[component] = true
		if component == "rebuild" && (cj.Spec.Suspend == nil || !*cj.Spec.Suspend) {
			c.problem("CronJob %s: the rebuild template must be suspended (run on demand)", cj.Name)
		}
		if selects(dep.Spec.Selector.MatchLabels, pod.Labels) {
			c.problem("CronJob %s: its pods match the Deployment's selector", cj.Name)
		}
		for _, pm := range m.podMonitors {
			sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
			if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
				c.problem("PodMonitor does not select the %s Job's pods", component)
			}
		}
		c.checkPod("CronJob "+cj.Name, pod, false)
	}
	if rb, _ := values["rebuild"].(map[string]interface{}); rb != nil && rb["enabled"] == true && !seen["rebuild"] {
		c.problem("rebuild.enabled but no rebuild CronJob")
	}
	if vf, _ := values["verify"].(map[string]interface{}); vf != nil && vf["enabled"] == true && !seen["verify"] {
		c.problem("verify.enabled but no verify CronJob")
	}
}
