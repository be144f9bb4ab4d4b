// Package jaeger pins Jaeger (github.com/jaegertracing/jaeger, cmd/jaeger:
// the v2 binary built on the OpenTelemetry collector) that `make jaeger`
// builds into bin/jaeger for the tracing tests (internal/tracetest), in a
// module of its own so that neither the project's go.mod nor SPIRE's tools
// module carries Jaeger's dependencies.
package jaeger
