package main

// The Kubernetes manifests in deploy/kubernetes, rendered with kustomize as
// "kubectl apply -k" renders them, and checked against this binary's own
// flag definitions and admin mux, so that a changed default (a port, a
// path, the shutdown timeout) or a kustomization that does not build fails
// here rather than in a cluster. The test lives in cmd/h2cgw to read the
// unexported defaults.
//
// YAML comes from go.yaml.in/yaml/v3, the YAML organisation's continuation
// of gopkg.in/yaml.v3 (already in the module graph through the Prometheus
// client); a test-only import, not linked into the binary.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"
)

const (
	manifestDir = "../../deploy/kubernetes/base"
	overlayDir  = "../../deploy/kubernetes/overlays/proxy-protocol"
	// kustomizeHint installs the kustomize the tests render with.
	kustomizeHint = "go install sigs.k8s.io/kustomize/kustomize/v5@v5.8.2 (or ./scripts/install-test-tools.sh)"
)

// The parts of the Kubernetes objects the checks read.
type (
	k8sMeta struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
	k8sSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	k8sObject struct {
		APIVersion string    `yaml:"apiVersion"`
		Kind       string    `yaml:"kind"`
		Metadata   k8sMeta   `yaml:"metadata"`
		Spec       yaml.Node `yaml:"spec"`
	}
	kustomization struct {
		APIVersion string   `yaml:"apiVersion"`
		Kind       string   `yaml:"kind"`
		Resources  []string `yaml:"resources"`
		Patches    []struct {
			Path string `yaml:"path"`
		} `yaml:"patches"`
		Images []struct {
			Name    string `yaml:"name"`
			NewName string `yaml:"newName"`
			NewTag  string `yaml:"newTag"`
		} `yaml:"images"`
	}

	deploymentSpec struct {
		Replicas *int        `yaml:"replicas"`
		Selector k8sSelector `yaml:"selector"`
		Strategy struct {
			RollingUpdate struct {
				MaxUnavailable *int `yaml:"maxUnavailable"`
			} `yaml:"rollingUpdate"`
		} `yaml:"strategy"`
		Template struct {
			Metadata k8sMeta `yaml:"metadata"`
			Spec     podSpec `yaml:"spec"`
		} `yaml:"template"`
	}
	podSpec struct {
		TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               struct {
			RunAsNonRoot *bool `yaml:"runAsNonRoot"`
			RunAsUser    *int  `yaml:"runAsUser"`
		} `yaml:"securityContext"`
		Containers []container `yaml:"containers"`
	}
	container struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Env   []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
			Protocol      string `yaml:"protocol"`
		} `yaml:"ports"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		Lifecycle      struct {
			PreStop *struct {
				Sleep *struct {
					Seconds int `yaml:"seconds"`
				} `yaml:"sleep"`
			} `yaml:"preStop"`
		} `yaml:"lifecycle"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"` // a number or a port name
		} `yaml:"httpGet"`
	}
	serviceSpec struct {
		Type     string            `yaml:"type"`
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Protocol   string `yaml:"protocol"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"` // a number or a port name
		} `yaml:"ports"`
	}
	pdbSpec struct {
		MaxUnavailable *int        `yaml:"maxUnavailable"`
		MinAvailable   *int        `yaml:"minAvailable"`
		Selector       k8sSelector `yaml:"selector"`
	}
	hpaSpec struct {
		ScaleTargetRef struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicas int `yaml:"minReplicas"`
		MaxReplicas int `yaml:"maxReplicas"`
	}
)

// readYAML decodes one YAML document from file into v, strictly enough that
// a file with two documents or trailing garbage fails.
func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		t.Fatalf("%s: more than one document; want one object a file", file)
	}
}

// render builds the kustomization in dir with kustomize and returns its
// objects by kind; two objects of one kind fail.
func render(t *testing.T, dir string) map[string]k8sObject {
	t.Helper()
	bin := kustomizeBin(t)
	cmd := exec.Command(bin, "build", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kustomize build %s: %v\n%s", dir, err, stderr.String())
	}
	byKind := map[string]k8sObject{}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("kustomize build %s: output: %v", dir, err)
		}
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			t.Errorf("%s: apiVersion %q kind %q name %q; want all three", dir, o.APIVersion, o.Kind, o.Metadata.Name)
		}
		if _, dup := byKind[o.Kind]; dup {
			t.Errorf("%s: a second %s", dir, o.Kind)
		}
		byKind[o.Kind] = o
	}
	return byKind
}

// kustomizeBin finds kustomize on PATH or where go install puts it. A
// missing one skips the test, and fails it in CI (CI=true).
func kustomizeBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("kustomize"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "kustomize")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("kustomize is not installed: %s", kustomizeHint)
	}
	t.Skipf("kustomize is not installed: %s", kustomizeHint)
	return ""
}

// readKustomization reads dir's kustomization.yaml.
func readKustomization(t *testing.T, dir string) kustomization {
	t.Helper()
	var k kustomization
	readYAML(t, filepath.Join(dir, "kustomization.yaml"), &k)
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("%s/kustomization.yaml: %s %s; want kustomize.config.k8s.io/v1beta1 Kustomization", dir, k.APIVersion, k.Kind)
	}
	return k
}

func decodeSpec(t *testing.T, o k8sObject, v any) {
	t.Helper()
	if err := o.Spec.Decode(v); err != nil {
		t.Fatalf("%s %s: spec: %v", o.Kind, o.Metadata.Name, err)
	}
}

// portOf returns the port number of a listen address such as ":8080".
func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return n
}

// containerPort resolves a probe's or a Service's port, a number or the
// name of one of c's ports.
func containerPort(t *testing.T, c container, port string) int {
	t.Helper()
	if n, err := strconv.Atoi(port); err == nil {
		return n
	}
	for _, p := range c.Ports {
		if p.Name == port {
			return p.ContainerPort
		}
	}
	t.Fatalf("port %q is neither a number nor a port of container %s", port, c.Name)
	return 0
}

// checkContainer checks what ties the container to the binary: its args
// parse; the probes, the container ports and the grace period agree with
// them and with the flag defaults. It returns the parsed flags.
func checkContainer(t *testing.T, c container, grace *int) config {
	t.Helper()
	cfg, err := parseFlags(c.Args, env(nil))
	if err != nil {
		t.Fatalf("container %s args %q: %v", c.Name, c.Args, err)
	}
	def := defaultConfig()

	// The admin listener: reachable by the kubelet, on the default port.
	if cfg.AdminListen == "" {
		t.Fatalf("args %q disable the admin listener; the probes need it", c.Args)
	}
	adminPort := portOf(t, cfg.AdminListen)
	if host, _, _ := net.SplitHostPort(cfg.AdminListen); host != "" {
		t.Errorf("--admin-listen %q: want all interfaces (e.g. :%d), the kubelet probes the pod's IP", cfg.AdminListen, adminPort)
	}
	if want := portOf(t, def.AdminListen); adminPort != want {
		t.Errorf("admin port %d in args; want the binary's default port %d", adminPort, want)
	}

	// Probes on the admin port, on paths the admin mux serves: readiness
	// is the one that turns 503 at shutdown, liveness the one that
	// does not.
	rd := &readiness{}
	mux := adminHandler(newMetrics("test").reg, rd, zerolog.Nop(), adminOptions{})
	status := func(path string) int {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	for _, p := range []struct {
		name              string
		probe             *probe
		serving, draining int
	}{
		{"readinessProbe", c.ReadinessProbe, http.StatusOK, http.StatusServiceUnavailable},
		{"livenessProbe", c.LivenessProbe, http.StatusOK, http.StatusOK},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("container %s has no %s.httpGet", c.Name, p.name)
			continue
		}
		if got := containerPort(t, c, p.probe.HTTPGet.Port); got != adminPort {
			t.Errorf("%s port %d; want the admin port %d", p.name, got, adminPort)
		}
		rd.draining.Store(false)
		serving := status(p.probe.HTTPGet.Path)
		rd.draining.Store(true)
		draining := status(p.probe.HTTPGet.Path)
		if serving != p.serving || draining != p.draining {
			t.Errorf("%s path %s answers %d, then %d at shutdown; want %d, then %d",
				p.name, p.probe.HTTPGet.Path, serving, draining, p.serving, p.draining)
		}
	}

	// The traffic port.
	if got, want := portOf(t, cfg.Listen), portOf(t, def.Listen); got != want {
		t.Errorf("--listen port %d; want the binary's default %d (the Service and docs assume it)", got, want)
	}
	if got := containerPort(t, c, "http"); got != portOf(t, cfg.Listen) {
		t.Errorf("container port http = %d; want the --listen port %d", got, portOf(t, cfg.Listen))
	}

	// The grace period covers the preStop sleep and the whole drain.
	if c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds <= 0 {
		t.Fatalf("container %s has no preStop sleep; the pod would drain before it leaves the endpoints", c.Name)
	}
	stop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds)*time.Second + cfg.ShutdownTimeout
	switch {
	case grace == nil:
		t.Errorf("no terminationGracePeriodSeconds; want more than the preStop sleep plus --shutdown-timeout (%v)", stop)
	case time.Duration(*grace)*time.Second <= stop:
		t.Errorf("terminationGracePeriodSeconds %d; want more than the preStop sleep plus --shutdown-timeout (%v)", *grace, stop)
	}
	return cfg
}

func TestKubernetesManifests(t *testing.T) {
	k := readKustomization(t, manifestDir)
	objs := render(t, manifestDir)

	// Every manifest in the directory is a resource.
	files, _ := filepath.Glob(filepath.Join(manifestDir, "*.yaml"))
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" && !slices.Contains(k.Resources, b) {
			t.Errorf("%s is not in kustomization.yaml's resources", b)
		}
	}
	for _, kind := range []string{"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"} {
		if _, ok := objs[kind]; !ok {
			t.Fatalf("no %s among %q", kind, k.Resources)
		}
	}

	var d deploymentSpec
	decodeSpec(t, objs["Deployment"], &d)
	pod := d.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers; want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if len(k.Images) != 1 || c.Image != k.Images[0].NewName+":"+k.Images[0].NewTag {
		t.Errorf("rendered image %q; want the kustomization's one images entry %+v applied", c.Image, k.Images)
	}
	cfg := checkContainer(t, c, pod.TerminationGracePeriodSeconds)
	if cfg.ProxyProtocol {
		t.Errorf("the base enables --proxy-protocol; that is the overlay's")
	}
	if d.Replicas != nil {
		t.Errorf("the Deployment sets replicas; the HorizontalPodAutoscaler owns the count")
	}
	if mu := d.Strategy.RollingUpdate.MaxUnavailable; mu == nil || *mu != 0 {
		t.Errorf("rollingUpdate.maxUnavailable %v; want 0 (a new pod is ready before an old one drains)", mu)
	}
	labels := d.Template.Metadata.Labels
	if !subset(d.Selector.MatchLabels, labels) || len(d.Selector.MatchLabels) == 0 {
		t.Errorf("selector %v does not select the pod labels %v", d.Selector.MatchLabels, labels)
	}

	// Hardening.
	if v := pod.SecurityContext.RunAsNonRoot; v == nil || !*v {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	if v := pod.SecurityContext.RunAsUser; v == nil || *v == 0 {
		t.Error("pod securityContext.runAsUser is unset or 0")
	}
	sc := c.SecurityContext
	if v := sc.ReadOnlyRootFilesystem; v == nil || !*v {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if v := sc.AllowPrivilegeEscalation; v == nil || *v {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("capabilities.drop %q; want ALL", sc.Capabilities.Drop)
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			t.Errorf("no %s request", r)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		t.Error("no memory limit")
	}
	checkMemory(t, c, cfg)

	// The Service: TCP to the container's traffic port.
	var s serviceSpec
	decodeSpec(t, objs["Service"], &s)
	if !subset(s.Selector, labels) || len(s.Selector) == 0 {
		t.Errorf("Service selector %v does not select the pod labels %v", s.Selector, labels)
	}
	if len(s.Ports) != 1 {
		t.Fatalf("Service has %d ports; want 1", len(s.Ports))
	}
	sp := s.Ports[0]
	if sp.Protocol != "TCP" || sp.Port != portOf(t, cfg.Listen) {
		t.Errorf("Service port %s %d; want TCP %d", sp.Protocol, sp.Port, portOf(t, cfg.Listen))
	}
	if got := containerPort(t, c, sp.TargetPort); got != portOf(t, cfg.Listen) {
		t.Errorf("Service targetPort %q is %d; want the --listen port %d", sp.TargetPort, got, portOf(t, cfg.Listen))
	}

	var pdb pdbSpec
	decodeSpec(t, objs["PodDisruptionBudget"], &pdb)
	if !subset(pdb.Selector.MatchLabels, labels) || len(pdb.Selector.MatchLabels) == 0 {
		t.Errorf("PodDisruptionBudget selector %v does not select the pod labels %v", pdb.Selector.MatchLabels, labels)
	}
	if pdb.MaxUnavailable == nil && pdb.MinAvailable == nil {
		t.Error("PodDisruptionBudget sets neither maxUnavailable nor minAvailable")
	}

	var hpa hpaSpec
	decodeSpec(t, objs["HorizontalPodAutoscaler"], &hpa)
	if hpa.ScaleTargetRef.Kind != "Deployment" || hpa.ScaleTargetRef.Name != objs["Deployment"].Metadata.Name {
		t.Errorf("HPA targets %s %s; want the Deployment %s", hpa.ScaleTargetRef.Kind, hpa.ScaleTargetRef.Name, objs["Deployment"].Metadata.Name)
	}
	if hpa.MinReplicas < 2 || hpa.MaxReplicas < hpa.MinReplicas {
		t.Errorf("HPA replicas %d to %d; want at least 2, so that one can drain while another serves", hpa.MinReplicas, hpa.MaxReplicas)
	}
	if pdb.MaxUnavailable != nil && *pdb.MaxUnavailable >= hpa.MinReplicas {
		t.Errorf("PodDisruptionBudget maxUnavailable %d lets every pod of %d go at once", *pdb.MaxUnavailable, hpa.MinReplicas)
	}
}

// TestKubernetesProxyProtocolOverlay: the overlay's args (which replace the
// base's) turn the PROXY protocol on with trusted ranges, and keep what the
// base's checks hold; its Service asks the balancer for the header.
func TestKubernetesProxyProtocolOverlay(t *testing.T) {
	k := readKustomization(t, overlayDir)
	if !slices.Contains(k.Resources, "../../base") {
		t.Errorf("overlay resources %q; want the base ../../base", k.Resources)
	}
	base, objs := render(t, manifestDir), render(t, overlayDir)
	for kind := range base {
		if _, ok := objs[kind]; !ok {
			t.Errorf("the overlay renders no %s", kind)
		}
	}

	var d deploymentSpec
	decodeSpec(t, objs["Deployment"], &d)
	if len(d.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers; want 1", len(d.Template.Spec.Containers))
	}
	// The container as kustomize merged it: the base's, with the patch's
	// args, which must still hold what the base's checks hold.
	c := d.Template.Spec.Containers[0]
	cfg := checkContainer(t, c, d.Template.Spec.TerminationGracePeriodSeconds)
	if !cfg.ProxyProtocol || len(cfg.ProxyProtocolTrusted) == 0 {
		t.Errorf("overlay args %q; want --proxy-protocol with trusted ranges", c.Args)
	}
	if c.Image == "" || len(c.Ports) == 0 || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil {
		t.Errorf("the overlay's container lost the base's image, ports or probes: %+v", c)
	}

	s := objs["Service"]
	if s.Metadata.Name != base["Service"].Metadata.Name {
		t.Fatalf("the Service is %q; want the base's %q", s.Metadata.Name, base["Service"].Metadata.Name)
	}
	if got := s.Metadata.Annotations["service.beta.kubernetes.io/aws-load-balancer-proxy-protocol"]; got != "*" {
		t.Errorf("Service aws-load-balancer-proxy-protocol %q; want \"*\"", got)
	}
	var ss serviceSpec
	decodeSpec(t, s, &ss)
	if ss.Type != "LoadBalancer" || len(ss.Ports) != 1 {
		t.Errorf("Service type %q with %d ports; want LoadBalancer with the base's port", ss.Type, len(ss.Ports))
	}
}

// subset reports whether every label of sel is in labels.
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// checkMemory checks that the memory request, the limit, GOMEMLIMIT and the
// memory budget agree (README "Security"): the request is the limit,
// GOMEMLIMIT is what the binary would derive from it, and the budget is
// the default, half of GOMEMLIMIT. integration/attack_test.go runs the
// attacks against the binary set up this way (GOMEMLIMIT 230 MiB, peak RSS
// under 256 MiB): a change here goes there too.
func checkMemory(t *testing.T, c container, cfg config) {
	t.Helper()
	req, lim := c.Resources.Requests["memory"], c.Resources.Limits["memory"]
	if req != lim {
		t.Errorf("memory request %s, limit %s; want them equal: the budget is memory the pod must have", req, lim)
	}
	if lim != "256Mi" {
		t.Errorf("memory limit %s; integration/attack_test.go holds the binary to 256Mi", lim)
	}
	var gomem string
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" {
			gomem = e.Value
		}
	}
	limit := 256.0
	want := fmt.Sprintf("%dMiB", int64(limit*cgroupMemoryFraction))
	if gomem != want {
		t.Errorf("GOMEMLIMIT %q; want %s, %v of the limit, as the binary derives it", gomem, want, cgroupMemoryFraction)
	}
	if cfg.MemoryBudget != 0 {
		t.Errorf("--memory-budget %d; want the default, half of GOMEMLIMIT", cfg.MemoryBudget)
	}
}
