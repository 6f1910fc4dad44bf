package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outreach/outreach/contact/redis"
	"github.com/outreach/outreach/dedupe"
	httpapi "github.com/outreach/outreach/http"
)

// presetSet is the what-if policies in force and their version.
type presetSet struct {
	policies map[string]*dedupe.Policy
	version  string
}

// loadConfigFiles loads the policy, the presets and the keys at start: any
// error stops the start.
func (m *Main) loadConfigFiles() error {
	if err := m.ReloadPolicy(); err != nil {
		return err
	}
	if err := m.ReloadPresets(); err != nil {
		return err
	}
	keys, err := m.readKeys()
	if err != nil {
		return err
	}
	m.keys = keys
	return nil
}

// Reload loads the policy, the presets and the keys again (SIGHUP). Each
// that is invalid keeps the one in force, and the error is logged.
func (m *Main) Reload() {
	m.ReloadPolicy()
	m.ReloadPresets()
	m.ReloadKeys()
	m.setVersions()
}

// ReloadPolicy loads the policy file, or the built-in policy without one.
// An invalid file keeps the policy in force and returns the error, which is
// also logged.
func (m *Main) ReloadPolicy() error {
	p := dedupe.DefaultPolicy()
	if f := m.Config.PolicyFile; f != "" {
		data, err := os.ReadFile(f)
		if err == nil {
			p, err = dedupe.ParsePolicy(data)
		}
		if err != nil {
			err = fmt.Errorf("OUTREACH_POLICY %s: %w", f, err)
			m.Logger.Error("policy not loaded; the previous one stays in force", "error", err)
			return err
		}
	}
	m.policy.Store(p)
	m.Logger.Info("policy loaded", "file", m.Config.PolicyFile, "version", p.Version())
	return nil
}

// ReloadPresets loads the what-if policies of OUTREACH_POLICY_PRESETS: each
// NAME.yaml file of the directory is the preset NAME. If any is invalid,
// the presets in force stay (none at start) and the error, naming the file,
// is returned and logged.
func (m *Main) ReloadPresets() error {
	set, err := m.readPresets()
	if err != nil {
		err = fmt.Errorf("OUTREACH_POLICY_PRESETS: %w", err)
		m.Logger.Error("policy presets not loaded; the previous ones stay in force", "error", err)
		if m.presets.Load() == nil {
			m.presets.Store(&presetSet{policies: map[string]*dedupe.Policy{}, version: "none"})
		}
		return err
	}
	m.presets.Store(set)
	if m.Config.PolicyPresets != "" {
		m.Logger.Info("policy presets loaded", "dir", m.Config.PolicyPresets, "presets", len(set.policies), "version", set.version)
	}
	return nil
}

func (m *Main) readPresets() (*presetSet, error) {
	set := &presetSet{policies: map[string]*dedupe.Policy{}, version: "none"}
	dir := m.Config.PolicyPresets
	if dir == "" {
		return set, nil
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if len(files) == 0 {
		m.Logger.Warn("OUTREACH_POLICY_PRESETS has no .yaml files", "dir", dir)
	}
	var errs []error
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		if name == "live" || redis.ValidListName(name) != nil {
			errs = append(errs, fmt.Errorf("%s: a preset name must be 1 to 64 characters of a-z, 0-9, - and _, and not live", f))
			continue
		}
		data, err := os.ReadFile(f)
		if err == nil {
			set.policies[name], err = dedupe.ParsePolicy(data)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(set.policies)) {
		fmt.Fprintf(h, "%s=%s\n", name, set.policies[name].Version())
	}
	set.version = hex.EncodeToString(h.Sum(nil)[:6])
	return set, nil
}

func (m *Main) presetPolicies() map[string]*dedupe.Policy { return m.presets.Load().policies }

// ReloadKeys reads the API keys file again. Keys can be replaced, not
// turned on or off: a server started without keys stays without them. An
// invalid file keeps the keys in force; the error is logged.
func (m *Main) ReloadKeys() error {
	if m.keys == nil {
		return nil
	}
	keys, err := m.readKeys()
	if err != nil {
		m.Logger.Error("API keys not loaded; the previous ones stay in force", "error", err)
		return err
	}
	m.keys.Replace(keys)
	m.Logger.Info("API keys loaded", "version", keys.Version())
	return nil
}

// readKeys reads the API keys file; nil keys serve every request.
func (m *Main) readKeys() (*httpapi.Keys, error) {
	switch {
	case !m.Config.Auth:
		m.Logger.Warn("authentication is off (OUTREACH_AUTH=off): every request is served as an admin's")
		return nil, nil
	case m.Config.KeysFile == "":
		m.Logger.Warn("no OUTREACH_API_KEYS_FILE: the embedded default serves every request without a key")
		return nil, nil
	}
	data, err := os.ReadFile(m.Config.KeysFile)
	if err != nil {
		return nil, fmt.Errorf("OUTREACH_API_KEYS_FILE: %w", err)
	}
	keys, err := httpapi.ParseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("OUTREACH_API_KEYS_FILE %s: %w", m.Config.KeysFile, err)
	}
	return keys, nil
}

// versions names the versions (hashes) of the configuration in force.
func (m *Main) versions() map[string]string {
	keys := "none"
	if m.keys != nil {
		keys = m.keys.Version()
	}
	return map[string]string{"policy": m.policy.Load().Version(), "presets": m.presets.Load().version, "keys": keys}
}

// registerVersions exposes the versions in /metrics.
func (m *Main) registerVersions() {
	m.info = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "outreach_config_info",
		Help: "1 for the versions (hashes) of the policy, presets and API keys in force; replicas that differ have drifted apart.",
	}, []string{"policy", "presets", "keys"})
	m.reg.MustRegister(m.info)
	m.setVersions()
}

func (m *Main) setVersions() {
	if m.info == nil {
		return
	}
	v := m.versions()
	m.info.Reset()
	m.info.WithLabelValues(v["policy"], v["presets"], v["keys"]).Set(1)
}
