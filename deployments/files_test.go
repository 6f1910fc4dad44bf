package deployments_test

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestFilesParse parses every YAML file (each document of a multi-document
// file) and every JSON file under deployments/. Helm templates are Go
// templates: TestHelmChart renders them.
func TestFilesParse(t *testing.T) {
	var n int
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasPrefix(path, filepath.Join("helm", "outreach", "templates")) {
			return nil
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml":
			n++
			if err := parseYAML(readFile(t, path)); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		case ".json":
			n++
			var v any
			if err := json.Unmarshal(readFile(t, path), &v); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("parsed only %d files", n)
	}
}

// parseYAML decodes every document of data.
func parseYAML(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var v any
		if err := dec.Decode(&v); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// TestYamllint runs yamllint over deployments/ with deployments/.yamllint.
func TestYamllint(t *testing.T) {
	yamllint := needTool(t, "yamllint")
	out, err := exec.Command(yamllint, "--strict", "-c", ".yamllint", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("yamllint: %v\n%s", err, out)
	}
}

// instruction is one Dockerfile instruction, its continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// dockerfile returns the instructions of deployments/Dockerfile, grouped by
// build stage.
func dockerfile(t *testing.T) [][]instruction {
	t.Helper()
	text := strings.ReplaceAll(string(readFile(t, "Dockerfile")), "\\\n", " ")
	var stages [][]instruction
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(cmd), strings.Join(strings.Fields(args), " ")}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			continue // ARG before the first FROM
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	return stages
}

// TestDockerfile checks the Dockerfile's shape: a build stage on the Go
// version of go.mod, and a final distroless stage that runs as a non-root
// user with a HEALTHCHECK.
func TestDockerfile(t *testing.T) {
	stages := dockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stage(s)", len(stages))
	}
	goMod := readFile(t, filepath.Join(root, "go.mod"))
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(goMod)
	if goVersion == nil || !bytes.Contains(readFile(t, "Dockerfile"), []byte("ARG GO_VERSION="+string(goVersion[1])+"\n")) {
		t.Errorf("the Dockerfile's ARG GO_VERSION is not go.mod's go version %s", goVersion[1])
	}
	final := stages[len(stages)-1]
	if from := final[0].args; !strings.HasPrefix(from, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %s, want a distroless static image", from)
	}
	got := map[string][]string{}
	for _, in := range final {
		got[in.cmd] = append(got[in.cmd], in.args)
	}
	users := got["USER"]
	if len(users) == 0 {
		t.Error("the final stage has no USER: it would run as root")
	}
	for _, u := range users {
		name, _, _ := strings.Cut(u, ":")
		if name == "root" || name == "0" || (name != "nonroot" && !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(name)) {
			t.Errorf("final stage USER %s, want nonroot or a non-zero uid", u)
		}
	}
	if hc := got["HEALTHCHECK"]; len(hc) != 1 || !strings.Contains(hc[0], `CMD ["/outreachd", "healthcheck"]`) {
		t.Errorf("final stage HEALTHCHECK %q, want one that runs /outreachd healthcheck", hc)
	}
	if ep := got["ENTRYPOINT"]; len(ep) != 1 || ep[0] != `["/outreachd"]` {
		t.Errorf("final stage ENTRYPOINT %q, want [\"/outreachd\"]", ep)
	}
	if len(dockerBuilds(t, stages)) != 2 {
		t.Errorf("want go build commands for outreachd and outreachctl in the build stages")
	}
}

// dockerBuilds returns the `go build` commands of the Dockerfile's RUN
// instructions, each as its words, variable assignments first.
func dockerBuilds(t *testing.T, stages [][]instruction) [][]string {
	t.Helper()
	var builds [][]string
	for _, stage := range stages[:len(stages)-1] {
		for _, in := range stage {
			if in.cmd != "RUN" {
				continue
			}
			for _, part := range strings.Split(in.args, "&&") {
				words := strings.Fields(part)
				// Skip RUN's --mount=... options.
				for len(words) > 0 && strings.HasPrefix(words[0], "--") {
					words = words[1:]
				}
				if i := slices.Index(words, "go"); i >= 0 && i+1 < len(words) && words[i+1] == "build" {
					builds = append(builds, words)
				}
			}
		}
	}
	return builds
}

// TestDockerBuildIsStatic runs the Dockerfile's own `go build` commands,
// with their CGO_ENABLED, GOOS and GOARCH, into a temporary directory and
// checks that each binary is statically linked, as distroless/static needs.
func TestDockerBuildIsStatic(t *testing.T) {
	builds := dockerBuilds(t, dockerfile(t))
	if len(builds) == 0 {
		t.Fatal("the Dockerfile has no go build command")
	}
	out := t.TempDir()
	vars := map[string]string{"TARGETOS": "linux", "TARGETARCH": runtime.GOARCH}
	for _, words := range builds {
		i := slices.Index(words, "go")
		env, args := words[:i], words[i+1:]
		if !slices.Contains(env, "CGO_ENABLED=0") || !slices.Contains(args, "-trimpath") {
			t.Errorf("%s: want CGO_ENABLED=0 and -trimpath", strings.Join(words, " "))
		}
		o := slices.Index(args, "-o")
		if o < 0 || o+1 >= len(args) {
			t.Fatalf("%s: no -o", strings.Join(words, " "))
		}
		bin := filepath.Join(out, filepath.Base(args[o+1]))
		args = slices.Clone(args)
		args[o+1] = bin
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		cmd.Env = os.Environ()
		for _, kv := range env {
			cmd.Env = append(cmd.Env, os.Expand(kv, func(k string) string { return vars[k] }))
		}
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, msg)
		}
		if err := notStatic(bin); err != nil {
			t.Error(err)
		}
	}
}

// notStatic returns why the ELF file at path is not statically linked, or
// nil if it is.
func notStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return fmt.Errorf("%s is dynamically linked: it has a %v program header", path, p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return fmt.Errorf("%s needs shared libraries %v", path, libs)
	}
	return nil
}

// TestNotStaticSeesDynamicBinaries keeps notStatic honest: the system's
// shell is dynamically linked on every Debian.
func TestNotStaticSeesDynamicBinaries(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	sh, _ := filepath.EvalSymlinks("/bin/sh")
	if err := notStatic(sh); err == nil {
		t.Errorf("notStatic(%s) = nil, want an error: it is a dynamic executable", sh)
	}
}
