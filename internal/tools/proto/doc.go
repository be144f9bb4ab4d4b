// Package proto pins the protoc plugins that `make proto` runs
// (protoc-gen-go, protoc-gen-go-grpc), in a module of their own so that
// neither the project's go.mod nor SPIRE's tools module carries them.
package proto
