// Package deployments holds the files that deploy outreach: the Dockerfile,
// compose.yaml, the Helm chart in helm/outreach, the Prometheus scrape
// configuration and alert rules, and the Grafana dashboard.
//
// It has no Go code of its own. Its tests check those files: that they
// parse, that the chart renders with helm and its manifests decode into the
// Kubernetes API types, that the dashboard and the alerts only use metrics
// that a running outreachd exposes, and that the Dockerfile's build command
// makes static binaries. docs/OPERATIONS.md says how to use the files.
package deployments
