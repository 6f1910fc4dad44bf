package deployments_test

import (
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/outreach/outreach/dedupe"
	httpapi "github.com/outreach/outreach/http"
)

// TestHelmLint runs helm lint --strict with the default and the cluster
// values.
func TestHelmLint(t *testing.T) {
	for _, args := range [][]string{nil, {"-f", chart + "/ci/cluster-values.yaml"}} {
		if out, err := runHelm(t, append([]string{"lint", "--strict", chart, "--kube-version", kubeVersion}, args...)...); err != nil {
			t.Errorf("helm lint %v: %v\n%s", args, err, out)
		}
	}
}

// TestHelmChartDefaults renders the chart with its default values.
func TestHelmChartDefaults(t *testing.T) {
	m := render(t)
	want := []string{"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service", "ServiceAccount"}
	if got := sorted(m.kinds); !slices.Equal(got, want) {
		t.Errorf("kinds %v, want %v", got, want)
	}
	d, c := m.deployment(t)
	checkPod(t, m, d, c)
	if cm := m.configMaps["outreach-policy"]; cm.Data["policy.yaml"] != string(readFile(t, "policy.yaml")) {
		t.Errorf("the policy ConfigMap does not hold deployments/policy.yaml:\n%s", cm.Data["policy.yaml"])
	}
	if v, key := mountedFile(t, d, c, env(c)["OUTREACH_API_KEYS_FILE"]); v.Secret == nil || v.Secret.SecretName != "outreach-api-keys" || key != "api-keys.txt" {
		t.Errorf("OUTREACH_API_KEYS_FILE is not api-keys.txt of the Secret outreach-api-keys: %+v %s", v, key)
	}
	if d.Spec.Replicas != nil {
		t.Errorf("with the autoscaler on, the Deployment must not set replicas (an upgrade would reset them)")
	}
	hpa := m.hpas[0]
	partitions, _ := strconv.Atoi(env(c)["OUTREACH_KAFKA_PARTITIONS"])
	if hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != d.Name ||
		len(hpa.Spec.Metrics) != 1 || hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
		t.Errorf("the autoscaler must scale the Deployment on CPU: %+v", hpa.Spec)
	}
	if hpa.Spec.MaxReplicas > int32(partitions) {
		t.Errorf("autoscaler max %d is above the %d partitions: replicas beyond them do not ingest", hpa.Spec.MaxReplicas, partitions)
	}
}

// TestHelmChartCluster renders the chart for an external Redis Cluster with a
// password, three brokers, presets and a chart-made keys Secret.
func TestHelmChartCluster(t *testing.T) {
	m := render(t, "-f", chart+"/ci/cluster-values.yaml")
	want := []string{"ConfigMap", "ConfigMap", "Deployment", "PodDisruptionBudget", "Secret", "Service", "ServiceAccount"}
	if got := sorted(m.kinds); !slices.Equal(got, want) {
		t.Errorf("kinds %v, want %v", got, want)
	}
	d, c := m.deployment(t)
	checkPod(t, m, d, c)
	e := env(c)
	if e["OUTREACH_REDIS_CLUSTER"] != "true" || len(strings.Split(e["OUTREACH_REDIS_ADDR"], ",")) != 6 {
		t.Errorf("want a six-node Redis Cluster, got OUTREACH_REDIS_ADDR=%s OUTREACH_REDIS_CLUSTER=%s", e["OUTREACH_REDIS_ADDR"], e["OUTREACH_REDIS_CLUSTER"])
	}
	if len(strings.Split(e["OUTREACH_KAFKA_BROKERS"], ",")) != 3 {
		t.Errorf("want three brokers, got %s", e["OUTREACH_KAFKA_BROKERS"])
	}
	if v, key := mountedFile(t, d, c, e["OUTREACH_REDIS_PASSWORD_FILE"]); v.Secret == nil || v.Secret.SecretName != "redis-auth" || key != "redis-password" {
		t.Errorf("OUTREACH_REDIS_PASSWORD_FILE is not redis-password of the Secret redis-auth: %+v %s", v, key)
	}
	v, key := mountedFile(t, d, c, e["OUTREACH_API_KEYS_FILE"])
	secret, ok := m.secrets[v.Secret.SecretName]
	if !ok {
		t.Fatalf("OUTREACH_API_KEYS_FILE is on the Secret %s, which the chart does not make", v.Secret.SecretName)
	}
	if _, err := httpapi.ParseKeys(secret.Data[key]); err != nil {
		t.Errorf("the keys Secret is not a valid keys file: %v", err)
	}
	presets, _ := mountedFile(t, d, c, e["OUTREACH_POLICY_PRESETS"]+"/winter-campaign.yaml")
	cm := m.configMaps[presets.ConfigMap.Name]
	if len(cm.Data) != 1 {
		t.Errorf("want one preset, got %v", slices.Collect(maps.Keys(cm.Data)))
	}
	for name, text := range cm.Data {
		if _, err := dedupe.ParsePolicy([]byte(text)); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("with the autoscaler off, want replicas: 3, got %v", d.Spec.Replicas)
	}
}

// TestHelmPolicyChangeRollsPods checks that the policy value goes into the
// ConfigMap and that a change of it changes the pod template, which rolls
// the pods.
func TestHelmPolicyChangeRollsPods(t *testing.T) {
	const policy = "claim_ttl: 10m\n"
	before, _ := render(t).deployment(t)
	m := render(t, "--set-string", "policy="+policy)
	after, _ := m.deployment(t)
	if got := m.configMaps["outreach-policy"].Data["policy.yaml"]; got != policy {
		t.Errorf("policy.yaml = %q, want %q", got, policy)
	}
	a, b := before.Spec.Template.Annotations["checksum/policy"], after.Spec.Template.Annotations["checksum/policy"]
	if a == b {
		t.Errorf("checksum/policy did not change with the policy: %s", a)
	}
}

// TestHelmAuthOff renders the chart with auth off: no keys file at all.
func TestHelmAuthOff(t *testing.T) {
	m := render(t, "--set", "auth=off")
	d, c := m.deployment(t)
	e := env(c)
	if e["OUTREACH_AUTH"] != "off" || e["OUTREACH_API_KEYS_FILE"] != "" || len(m.secrets) != 0 {
		t.Errorf("auth off: want OUTREACH_AUTH=off and no keys file, got %v and secrets %v", e, m.secrets)
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			t.Errorf("auth off mounts the Secret %s", v.Secret.SecretName)
		}
	}
}

// TestHelmRefusesBadValues checks that values that cannot work stop the
// render with a message naming them.
func TestHelmRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "redis.addr="}, "redis/addr"},
		{[]string{"--set", "kafka.brokers="}, "kafka/brokers"},
		{[]string{"--set", "auth=false"}, "auth"},
		{[]string{"--set", "defaultRegion=false"}, "defaultRegion"},
		{[]string{"--set", "extraEnv[0].name=REDIS_ADDR"}, "extraEnv"},
		{[]string{"--set-string", "apiKeys.existingSecret=keys,apiKeys.content=dialer x"}, "not both"},
	} {
		_, err := runHelm(t, append([]string{"template", "outreach", chart, "--kube-version", kubeVersion}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("helm template %v: got %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
}

// checkPod checks what every render must hold: probes, the security
// context, resources, real settings, the policy mount and the objects that
// select the pods.
func checkPod(t *testing.T, m manifests, d *appsv1.Deployment, c *corev1.Container) {
	t.Helper()
	pod := d.Spec.Template.Spec
	probes := map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe}
	for name, want := range map[string]string{"liveness": "/healthz", "readiness": "/readyz?role=api", "startup": "/healthz"} {
		p := probes[name]
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe %+v, want GET %s on the http port", name, p, want)
		}
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 || env(c)["OUTREACH_HTTP_ADDR"] != ":8080" {
		t.Errorf("want the http port 8080 that OUTREACH_HTTP_ADDR listens on, got %+v and %q", c.Ports, env(c)["OUTREACH_HTTP_ADDR"])
	}
	checkSecurity(t, pod.SecurityContext, c.SecurityContext)
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token; outreachd does not call the Kubernetes API")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("want CPU and memory requests (the autoscaler needs the CPU one) and a memory limit, got %+v", c.Resources)
	}

	e := env(c)
	var names []string
	for _, v := range c.Env {
		names = append(names, v.Name)
	}
	checkSettings(t, "the Deployment", names)
	if e["OUTREACH_REDIS_ADDR"] == "" || e["OUTREACH_KAFKA_BROKERS"] == "" || e["OUTREACH_DEFAULT_REGION"] != "NO" || e["OUTREACH_LOG_FORMAT"] != "json" {
		t.Errorf("env %v: want Redis and Kafka addresses, OUTREACH_DEFAULT_REGION=NO and json logs", e)
	}
	v, key := mountedFile(t, d, c, e["OUTREACH_POLICY"])
	if v.ConfigMap == nil {
		t.Fatalf("OUTREACH_POLICY is not on a ConfigMap volume: %+v", v)
	}
	if _, err := dedupe.ParsePolicy([]byte(m.configMaps[v.ConfigMap.Name].Data[key])); err != nil {
		t.Errorf("the policy ConfigMap %s does not hold a valid policy in %s: %v", v.ConfigMap.Name, key, err)
	}
	if sum := d.Spec.Template.Annotations["checksum/policy"]; !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(sum) {
		t.Errorf("want a checksum/policy annotation on the pods, got %q", sum)
	}
	checkSelectors(t, m, d)
}

func checkSecurity(t *testing.T, pod *corev1.PodSecurityContext, c *corev1.SecurityContext) {
	t.Helper()
	if pod == nil || pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot || pod.RunAsUser == nil || *pod.RunAsUser == 0 {
		t.Errorf("the pod must run as a non-root user: %+v", pod)
	}
	if c == nil || c.ReadOnlyRootFilesystem == nil || !*c.ReadOnlyRootFilesystem ||
		c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation ||
		c.Capabilities == nil || !slices.Contains(c.Capabilities.Drop, "ALL") {
		t.Errorf("the container must have a read-only root, no privilege escalation and drop ALL capabilities: %+v", c)
	}
}

// checkSelectors checks that the Service, the PodDisruptionBudget and the
// Deployment's own selector select the Deployment's pods.
func checkSelectors(t *testing.T, m manifests, d *appsv1.Deployment) {
	t.Helper()
	labels := d.Spec.Template.Labels
	selects := func(sel map[string]string) bool {
		for k, v := range sel {
			if labels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if !selects(d.Spec.Selector.MatchLabels) {
		t.Errorf("the Deployment's selector %v does not select its pods %v", d.Spec.Selector.MatchLabels, labels)
	}
	if len(m.services) != 1 || !selects(m.services[0].Spec.Selector) || m.services[0].Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("want one Service that selects the pods on their http port, got %+v", m.services)
	}
	if len(m.pdbs) != 1 || !selects(m.pdbs[0].Spec.Selector.MatchLabels) {
		t.Errorf("want one PodDisruptionBudget that selects the pods, got %+v", m.pdbs)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestHelmNotes renders NOTES.txt, which helm template leaves out, through a
// copy of the chart where it is an ordinary template.
func TestHelmNotes(t *testing.T) {
	dir := t.TempDir()
	err := filepath.WalkDir(chart, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path) // follows files/policy.yaml's link
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, strings.TrimPrefix(path, chart))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	notes := readFile(t, filepath.Join(chart, "templates", "NOTES.txt"))
	tpl := "{{- define \"test.notes\" -}}\n" + string(notes) + "{{- end -}}\n"
	check := "notes: |\n  {{- include \"test.notes\" . | nindent 2 }}\n"
	if os.WriteFile(filepath.Join(dir, "templates", "_notes_check.tpl"), []byte(tpl), 0o644) != nil ||
		os.WriteFile(filepath.Join(dir, "templates", "notes-check.yaml"), []byte(check), 0o644) != nil {
		t.Fatal("cannot write the notes check")
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"create secret generic outreach-api-keys --from-file=api-keys.txt=keys.txt", "port-forward svc/outreach 8080:80"}},
		{[]string{"--set", "auth=off,autoscaling.maxReplicas=20"}, []string{"WARNING: auth is off", "up to 20 replicas but 12 partitions"}},
	} {
		out, err := runHelm(t, append([]string{"template", "outreach", dir, "--namespace", "outreach", "--kube-version", kubeVersion,
			"--show-only", "templates/notes-check.yaml"}, tc.args...)...)
		if err != nil {
			t.Fatalf("NOTES.txt %v: %v", tc.args, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("NOTES.txt %v does not say %q:\n%s", tc.args, w, out)
			}
		}
	}
}
