package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// object is a decoded manifest: its typed value and its metadata.
type object struct {
	source string // file and document number, for messages
	kind   string
	meta   *metav1.ObjectMeta
	value  interface{}
}

// newTyped returns an empty typed object of the API group/version and kind,
// and its ObjectMeta; nil for a kind the chart must not render.
func newTyped(apiVersion, kind string) (interface{}, *metav1.ObjectMeta) {
	switch apiVersion + " " + kind {
	case "v1 ConfigMap":
		o := &corev1.ConfigMap{}
		return o, &o.ObjectMeta
	case "v1 Secret":
		o := &corev1.Secret{}
		return o, &o.ObjectMeta
	case "v1 Service":
		o := &corev1.Service{}
		return o, &o.ObjectMeta
	case "v1 ServiceAccount":
		o := &corev1.ServiceAccount{}
		return o, &o.ObjectMeta
	case "apps/v1 Deployment":
		o := &appsv1.Deployment{}
		return o, &o.ObjectMeta
	case "autoscaling/v2 HorizontalPodAutoscaler":
		o := &autoscalingv2.HorizontalPodAutoscaler{}
		return o, &o.ObjectMeta
	case "policy/v1 PodDisruptionBudget":
		o := &policyv1.PodDisruptionBudget{}
		return o, &o.ObjectMeta
	case "batch/v1 CronJob":
		o := &batchv1.CronJob{}
		return o, &o.ObjectMeta
	case "batch/v1 Job":
		o := &batchv1.Job{}
		return o, &o.ObjectMeta
	case "monitoring.coreos.com/v1 ServiceMonitor":
		o := &monitoringv1.ServiceMonitor{}
		return o, &o.ObjectMeta
	case "monitoring.coreos.com/v1 PodMonitor":
		o := &monitoringv1.PodMonitor{}
		return o, &o.ObjectMeta
	case "monitoring.coreos.com/v1 PrometheusRule":
		o := &monitoringv1.PrometheusRule{}
		return o, &o.ObjectMeta
	}
	return nil, nil
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

// decodeFile decodes every YAML document of a file strictly: duplicate
// keys, unknown fields (also a field in the wrong case) and values of the
// wrong type are errors, as the API server's strict field validation
// (kubectl --validate=strict) reports them.
func decodeFile(path string) ([]object, []string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, []string{err.Error()}
	}
	var objs []object
	var errs []string
	for i, part := range docSep.Split(string(b), -1) {
		src := fmt.Sprintf("%s#%d", path, i)
		if strings.TrimSpace(stripComments(part)) == "" {
			continue
		}
		o, problems := decodeDoc(src, []byte(part))
		errs = append(errs, problems...)
		if o != nil {
			objs = append(objs, *o)
		}
	}
	return objs, errs
}

func stripComments(s string) string {
	var out bytes.Buffer
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out.WriteString(l + "\n")
		}
	}
	return out.String()
}

func decodeDoc(src string, doc []byte) (*object, []string) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, []string{fmt.Sprintf("%s: not YAML (or a duplicate key): %v", src, err)}
	}
	var tm metav1.TypeMeta
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &tm); err != nil {
		return nil, []string{fmt.Sprintf("%s: %v", src, err)}
	}
	typed, meta := newTyped(tm.APIVersion, tm.Kind)
	if typed == nil {
		return nil, []string{fmt.Sprintf("%s: apiVersion %q kind %q is not one this chart may render (or not the current version)", src, tm.APIVersion, tm.Kind)}
	}
	strict, err := sigsjson.UnmarshalStrict(js, typed, sigsjson.DisallowUnknownFields)
	if err != nil {
		return nil, []string{fmt.Sprintf("%s: %s: %v", src, tm.Kind, err)}
	}
	var problems []string
	for _, e := range strict {
		problems = append(problems, fmt.Sprintf("%s: %s %s: strict decoding: %v", src, tm.Kind, meta.Name, e))
	}
	problems = append(problems, validateMeta(src, tm.Kind, meta)...)
	return &object{source: src, kind: tm.Kind, meta: meta, value: typed}, problems
}

// validateMeta checks the name, labels and annotations as the API server does.
func validateMeta(src, kind string, m *metav1.ObjectMeta) []string {
	var p []string
	add := func(what string, errs []string) {
		for _, e := range errs {
			p = append(p, fmt.Sprintf("%s: %s %s: %s: %s", src, kind, m.Name, what, e))
		}
	}
	if m.Name == "" {
		p = append(p, fmt.Sprintf("%s: %s without metadata.name", src, kind))
	}
	switch kind {
	case "Service":
		add("name", validation.IsDNS1035Label(m.Name))
	case "CronJob":
		add("name", validation.IsDNS1123Subdomain(m.Name))
		if len(m.Name) > 52 { // the Job names it creates get 11 characters
			p = append(p, fmt.Sprintf("%s: CronJob %s: name longer than 52 characters", src, m.Name))
		}
	default:
		add("name", validation.IsDNS1123Subdomain(m.Name))
	}
	add("labels", validateLabels(m.Labels))
	for k := range m.Annotations {
		add("annotation "+k, validation.IsQualifiedName(strings.ToLower(k)))
	}
	return p
}

func validateLabels(labels map[string]string) []string {
	var errs []string
	for k, v := range labels {
		for _, e := range validation.IsQualifiedName(k) {
			errs = append(errs, "key "+k+": "+e)
		}
		for _, e := range validation.IsValidLabelValue(v) {
			errs = append(errs, k+"="+v+": "+e)
		}
	}
	return errs
}
