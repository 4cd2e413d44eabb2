package main

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// checker holds what the manifests are checked against.
type checker struct {
	problems   []string
	configMaps map[string]map[string]string
	secrets    map[string]map[string]string // name -> key -> value
	// what every container must be configured with (from the values)
	opensearchURL  string
	opensearchAuth bool
	secretName     string
	readmodel      string
	runbookBase    string                            // prometheusRule.runbookBaseUrl
	mountRoot      string                            // stands in for / under /etc/readmodel/ ("": none)
	redisTLS       bool                              // redis.tls.secretName is set
	redisTLSKeys   [2]string                         // redis.tls.caKey, certKey
	readmeAnchors  map[string]bool                   // nil: not checked
	pods           map[string]corev1.PodTemplateSpec // every pod template, by where
}

func (c *checker) problem(format string, args ...interface{}) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// isSecretValue: a value that must never reach an argument or a log (the
// test Secret marks its passwords with "S3cret"; the runbook's placeholders
// are any value of a key naming a password).
func isSecretValue(key, v string) bool {
	return len(v) >= 4 && (strings.Contains(v, "S3cret") || strings.Contains(key, "password"))
}

func selects(sel map[string]string, podLabels map[string]string) bool {
	return len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(podLabels))
}

func portNames(c corev1.Container) map[string]int32 {
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	return ports
}

func argValue(args []string, flag string) (string, bool) {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// secretRef checks that a Secret the pod reads exists with that key in what
// the operator creates (the test Secret, or the runbook's Secrets).
func (c *checker) secretRef(where, name, key string, optional *bool) (string, bool) {
	if optional != nil && *optional {
		return "", false
	}
	s, ok := c.secrets[name]
	if !ok {
		c.problem("%s: reads Secret %q, which is never created", where, name)
		return "", false
	}
	if key == "" {
		return "", true
	}
	v, ok := s[key]
	if !ok {
		keys := make([]string, 0, len(s))
		for k := range s {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		c.problem("%s: reads key %q of Secret %q, which has only %v", where, key, name, keys)
	}
	return v, ok
}

// checkPod checks a pod template and runs its containers' command lines
// through `readmodel ... --check-config` with the environment the kubelet
// would give them.
func (c *checker) checkPod(where string, pod corev1.PodTemplateSpec, isServe bool) {
	spec := pod.Spec
	if c.pods == nil {
		c.pods = map[string]corev1.PodTemplateSpec{}
	}
	c.pods[where] = pod
	for _, tsc := range spec.TopologySpreadConstraints {
		sel, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector)
		if tsc.LabelSelector == nil || err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			c.problem("%s: topologySpreadConstraint on %s does not select the pods it spreads", where, tsc.TopologyKey)
		}
	}
	if len(spec.Containers) == 0 {
		c.problem("%s: no containers", where)
		return
	}
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		c.problem("%s: pod securityContext.runAsNonRoot is not true", where)
	}
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = true
		if v.Secret != nil {
			if _, ok := c.secretRef(where+" volume "+v.Name, v.Secret.SecretName, "", v.Secret.Optional); ok {
				for _, it := range v.Secret.Items {
					c.secretRef(where+" volume "+v.Name, v.Secret.SecretName, it.Key, v.Secret.Optional)
				}
			}
		}
		if v.ConfigMap != nil {
			if _, ok := c.configMaps[v.ConfigMap.Name]; !ok && (v.ConfigMap.Optional == nil || !*v.ConfigMap.Optional) {
				c.problem("%s: volume %s names ConfigMap %q, which is not rendered", where, v.Name, v.ConfigMap.Name)
			}
		}
	}
	for _, ct := range spec.Containers {
		c.checkContainer(where+"/"+ct.Name, spec, ct, volumes, isServe)
	}
}

func (c *checker) checkContainer(where string, spec corev1.PodSpec, ct corev1.Container, volumes map[string]bool, isServe bool) {
	if ct.Name == "" || ct.Image == "" {
		c.problem("%s: a container without name or image", where)
	}
	sc := ct.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		c.problem("%s: securityContext must make the root filesystem read-only and forbid privilege escalation", where)
	}
	for _, m := range ct.VolumeMounts {
		if !volumes[m.Name] {
			c.problem("%s: volumeMount %s has no volume", where, m.Name)
		}
	}
	args := ct.Args
	if len(args) == 0 {
		c.problem("%s: no arguments", where)
		return
	}
	ports := portNames(ct)
	addr, ok := argValue(args, "--metrics-addr")
	if !ok {
		c.problem("%s: no --metrics-addr", where)
	} else if want := addr[strings.LastIndex(addr, ":")+1:]; strconv.Itoa(int(ports["metrics"])) != want {
		c.problem("%s: port 'metrics' is %d but --metrics-addr is %s", where, ports["metrics"], addr)
	}
	if isServe {
		c.checkProbes(where, spec, ct, ports)
	}
	if _, ok := argValue(args, "--workers"); !ok {
		c.problem("%s: %s does not set --workers (it would size itself from the node)", where, args[0])
	}
	env, secretValues := c.containerEnv(where, ct)
	for _, a := range args {
		for _, s := range secretValues {
			if strings.Contains(a, s) {
				c.problem("%s: a secret value is in the arguments (visible in ps)", where)
			}
		}
	}
	c.checkConfig(where, args, env, secretValues)
}

func (c *checker) checkProbes(where string, spec corev1.PodSpec, ct corev1.Container, ports map[string]int32) {
	probes := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"startupProbe", ct.StartupProbe, "/livez"}, {"livenessProbe", ct.LivenessProbe, "/livez"}, {"readinessProbe", ct.ReadinessProbe, "/readyz"}}
	for _, p := range probes {
		if p.probe == nil || p.probe.HTTPGet == nil {
			c.problem("%s: no %s httpGet", where, p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			c.problem("%s: %s path %q, readmodel serves %s", where, p.name, p.probe.HTTPGet.Path, p.path)
		}
		port := p.probe.HTTPGet.Port
		if port.Type != intstr.String || ports[port.StrVal] == 0 {
			c.problem("%s: %s port %v is not a named container port", where, p.name, port.String())
		}
	}
	if sp := ct.StartupProbe; sp != nil && sp.PeriodSeconds*sp.FailureThreshold < 300 {
		c.problem("%s: the startup probe allows less than five minutes", where)
	}
	var grace int64
	if spec.TerminationGracePeriodSeconds != nil {
		grace = *spec.TerminationGracePeriodSeconds
	}
	st, _ := argValue(ct.Args, "--shutdown-timeout")
	if s, _ := strconv.ParseInt(st, 10, 64); grace <= s+5 {
		c.problem("%s: terminationGracePeriodSeconds %d must exceed --shutdown-timeout %s plus a flush", where, grace, st)
	}
}

// containerEnv is the environment as the kubelet would set it, and the
// secret values in it.
func (c *checker) containerEnv(where string, ct corev1.Container) ([]string, []string) {
	env := []string{"PATH=" + os.Getenv("PATH")}
	var secretValues []string
	for _, ef := range ct.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, ok := c.configMaps[ef.ConfigMapRef.Name]
			if !ok {
				c.problem("%s: envFrom names ConfigMap %q, which the chart does not render", where, ef.ConfigMapRef.Name)
			}
			for k, v := range cm {
				env = append(env, ef.Prefix+k+"="+v)
			}
		case ef.SecretRef != nil:
			if _, ok := c.secretRef(where+" envFrom", ef.SecretRef.Name, "", ef.SecretRef.Optional); ok {
				for k, v := range c.secrets[ef.SecretRef.Name] {
					env = append(env, ef.Prefix+k+"="+v)
					if isSecretValue(k, v) {
						secretValues = append(secretValues, v)
					}
				}
			}
		}
	}
	for _, e := range ct.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if c.secretName != "" && ref.Name != c.secretName && strings.HasPrefix(e.Name, "READMODEL_") {
				c.problem("%s: env %s reads Secret %q, not secrets.existingSecret %q", where, e.Name, ref.Name, c.secretName)
			}
			if v, ok := c.secretRef(where+" env "+e.Name, ref.Name, ref.Key, ref.Optional); ok {
				env = append(env, e.Name+"="+v)
				if isSecretValue(ref.Key, v) {
					secretValues = append(secretValues, v)
				}
			}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			v, ok := c.configMaps[ref.Name][ref.Key]
			if !ok && (ref.Optional == nil || !*ref.Optional) {
				c.problem("%s: env %s reads key %q of ConfigMap %q, which is not rendered", where, e.Name, ref.Key, ref.Name)
			}
			env = append(env, e.Name+"="+v)
		default: // fieldRef, resourceFieldRef: a value only the kubelet knows
			env = append(env, e.Name+"=x")
		}
	}
	return env, secretValues
}

func (c *checker) checkConfig(where string, args, env, secretValues []string) {
	if c.readmodel == "" {
		c.problem("READMODEL_BIN is not set: cannot run --check-config")
		return
	}
	if c.mountRoot != "" { // the files the pod mounts, where the test put them
		at := func(v string) string {
			return strings.ReplaceAll(v, "/etc/readmodel/", c.mountRoot+"/etc/readmodel/")
		}
		args = append([]string{}, args...)
		for i := range args {
			args[i] = at(args[i])
		}
		env = append([]string{}, env...)
		for i := range env {
			env[i] = at(env[i])
		}
	}
	cmd := exec.Command(c.readmodel, append(append([]string{}, args...), "--check-config")...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.problem("%s: readmodel %s --check-config: %v\n%s", where, strings.Join(args, " "), err, out)
		return
	}
	for _, s := range secretValues {
		if strings.Contains(string(out), s) {
			c.problem("%s: --check-config printed a secret value", where)
		}
	}
	// With opensearch.url set, every container runs with the index
	// configured, and with the Secret's credentials when keys are given.
	if c.opensearchURL != "" && !strings.Contains(string(out), "opensearch="+c.opensearchURL+" ") {
		c.problem("%s: opensearch.url is set but readmodel does not see it:\n%s", where, out)
	}
	// With redis.tls.secretName set, the files of the mounted Secret that
	// the values name reach readmodel (which found them readable PEM files).
	if c.redisTLS {
		dir := c.mountRoot + "/etc/readmodel/redis-tls/"
		for _, f := range [][2]string{{"redis-ca-file=", c.redisTLSKeys[0]}, {"redis-cert-file=", c.redisTLSKeys[1]}} {
			if f[1] != "" && !strings.Contains(string(out), f[0]+dir+f[1]+"\n") {
				c.problem("%s: redis.tls names %s but readmodel does not get %s%s%s:\n%s", where, f[1], f[0], dir, f[1], out)
			}
		}
		if !strings.Contains(string(out), "TLS on") {
			c.problem("%s: redis.tls is set but readmodel does not use TLS:\n%s", where, out)
		}
	}
	if c.opensearchAuth && !strings.Contains(string(out), "opensearch-auth=basic user") {
		c.problem("%s: OpenSearch credentials from the Secret do not reach readmodel", where)
	}
	fmt.Printf("  %s: readmodel %s --check-config: ok\n", where, args[0])
}

// manifests is the rendered chart, by kind.
type manifests struct {
	deployments []*appsv1.Deployment
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	pdbs        []*policyv1.PodDisruptionBudget
	services    []*corev1.Service
	cronJobs    []*batchv1.CronJob
	svcMonitors []*monitoringv1.ServiceMonitor
	podMonitors []*monitoringv1.PodMonitor
	rules       []*monitoringv1.PrometheusRule
	accounts    []*corev1.ServiceAccount
}

func (c *checker) sort(objs []object) manifests {
	var m manifests
	c.configMaps = map[string]map[string]string{}
	for _, o := range objs {
		switch v := o.value.(type) {
		case *corev1.ConfigMap:
			c.configMaps[v.Name] = v.Data
		case *appsv1.Deployment:
			m.deployments = append(m.deployments, v)
		case *autoscalingv2.HorizontalPodAutoscaler:
			m.hpas = append(m.hpas, v)
		case *policyv1.PodDisruptionBudget:
			m.pdbs = append(m.pdbs, v)
		case *corev1.Service:
			m.services = append(m.services, v)
		case *batchv1.CronJob:
			m.cronJobs = append(m.cronJobs, v)
		case *monitoringv1.ServiceMonitor:
			m.svcMonitors = append(m.svcMonitors, v)
		case *monitoringv1.PodMonitor:
			m.podMonitors = append(m.podMonitors, v)
		case *monitoringv1.PrometheusRule:
			m.rules = append(m.rules, v)
		case *corev1.ServiceAccount:
			m.accounts = append(m.accounts, v)
		case *corev1.Secret:
			c.problem("%s: the chart renders a Secret (%s): it must only reference an existing one", o.source, v.Name)
		}
		fmt.Printf("  %s %s\n", o.kind, o.meta.Name)
	}
	return m
}
