package deployments_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	k8sjson "sigs.k8s.io/json"
	k8syaml "sigs.k8s.io/yaml"
)

const (
	helmVersion = "v3.22.0"
	chart       = "helm/outreach"
	kubeVersion = "1.30.0"
)

var helmOnce struct {
	sync.Once
	path string
	err  error
}

// helm returns the Helm binary that install-tools.sh builds into the user's
// cache directory, building it there first if it is missing (a few minutes,
// once). Without it the test skips, except in CI.
func helm(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() { helmOnce.path, helmOnce.err = buildHelm() })
	if helmOnce.err != nil {
		missing(t, "helm "+helmVersion+" could not be built: "+helmOnce.err.Error())
	}
	return helmOnce.path
}

// buildHelm builds Helm from the Go module proxy into the cache directory,
// unless it is there already, and returns its path.
func buildHelm() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "outreach-tools", "helm-"+helmVersion)
	bin := filepath.Join(dir, "helm")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "build")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "install", "helm.sh/helm/v3/cmd/helm@"+helmVersion)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v\n%s", err, out)
	}
	// Built aside and renamed, so that a broken build never sits at bin.
	return bin, os.Rename(filepath.Join(tmp, "helm"), bin)
}

// render runs helm template on the chart with args and decodes every
// manifest into its Kubernetes API type as the API server would: YAML 1.1
// (a bare NO is false), field names matched case-sensitively, and unknown
// fields rejected.
func render(t *testing.T, args ...string) manifests {
	t.Helper()
	out, err := runHelm(t, append([]string{"template", "outreach", chart, "--namespace", "outreach", "--kube-version", kubeVersion}, args...)...)
	if err != nil {
		t.Fatalf("helm template %s: %v", strings.Join(args, " "), err)
	}
	var m manifests
	for _, doc := range regexp.MustCompile(`(?m)^---$`).Split(string(out), -1) {
		data, err := k8syaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("rendered manifest: %v\n%s", err, doc)
		}
		if string(data) != "null" {
			m.decode(t, data)
		}
	}
	return m
}

// runHelm runs helm and returns its standard output, or an error with its
// standard error.
func runHelm(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helm(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, errors.New(err.Error() + ": " + stderr.String())
	}
	return stdout.Bytes(), nil
}

// manifests are the objects of one render, by kind.
type manifests struct {
	kinds       []string
	deployments []appsv1.Deployment
	services    []corev1.Service
	configMaps  map[string]corev1.ConfigMap
	secrets     map[string]corev1.Secret
	accounts    []corev1.ServiceAccount
	pdbs        []policyv1.PodDisruptionBudget
	hpas        []autoscalingv2.HorizontalPodAutoscaler
}

func (m *manifests) decode(t *testing.T, data []byte) {
	t.Helper()
	var meta struct{ Kind string }
	if err := json.Unmarshal(data, &meta); err != nil {
		t.Fatal(err)
	}
	m.kinds = append(m.kinds, meta.Kind)
	switch meta.Kind {
	case "Deployment":
		m.deployments = append(m.deployments, strictDecode[appsv1.Deployment](t, data))
	case "Service":
		m.services = append(m.services, strictDecode[corev1.Service](t, data))
	case "ServiceAccount":
		m.accounts = append(m.accounts, strictDecode[corev1.ServiceAccount](t, data))
	case "PodDisruptionBudget":
		m.pdbs = append(m.pdbs, strictDecode[policyv1.PodDisruptionBudget](t, data))
	case "HorizontalPodAutoscaler":
		m.hpas = append(m.hpas, strictDecode[autoscalingv2.HorizontalPodAutoscaler](t, data))
	case "ConfigMap":
		cm := strictDecode[corev1.ConfigMap](t, data)
		m.configMaps = mapSet(m.configMaps, cm.Name, cm)
	case "Secret":
		s := strictDecode[corev1.Secret](t, data)
		m.secrets = mapSet(m.secrets, s.Name, s)
	default:
		t.Fatalf("the chart renders a %q, which this test does not know", meta.Kind)
	}
}

// strictDecode decodes one manifest, as JSON, into its API type, and fails
// the test on unknown or miscased fields and on wrong types.
func strictDecode[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	strict, err := k8sjson.UnmarshalStrict(data, &v)
	if err = errors.Join(append(strict, err)...); err != nil {
		t.Errorf("not a valid %T: %v\n%s", v, err, data)
	}
	return v
}

func mapSet[V any](m map[string]V, k string, v V) map[string]V {
	if m == nil {
		m = map[string]V{}
	}
	m[k] = v
	return m
}

// deployment returns the one Deployment and its outreachd container.
func (m manifests) deployment(t *testing.T) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	if len(m.deployments) != 1 || len(m.deployments[0].Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want one Deployment with one container, got kinds %v", m.kinds)
	}
	d := &m.deployments[0]
	return d, &d.Spec.Template.Spec.Containers[0]
}

// env returns the container's environment as a map.
func env(c *corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		out[e.Name] = e.Value
	}
	return out
}

// mountedFile returns the volume that holds the file at path in the
// container, and the file's key in that volume's ConfigMap or Secret.
func mountedFile(t *testing.T, d *appsv1.Deployment, c *corev1.Container, path string) (corev1.Volume, string) {
	t.Helper()
	for _, vm := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(path, strings.TrimSuffix(vm.MountPath, "/")+"/")
		if !ok {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == vm.Name {
				return v, rel
			}
		}
	}
	t.Fatalf("%s is on no mounted volume", path)
	return corev1.Volume{}, ""
}
