#!/usr/bin/env bash
# Builds tests/clients/go offline from Debian's Go packages (golang-go golang-google-grpc-dev
# golang-goprotobuf-dev protoc-gen-go-grpc), with the catalog's stubs generated from its .proto
# by protoc-gen-go and protoc-gen-go-grpc, as a Go user of the service would.
# usage: build.sh OUT_BINARY PROTO_DIR GOOGLEAPIS_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1 protos=$2 googleapis=$3
gp=$(mktemp -d)
trap 'rm -rf "$gp"' EXIT
mkdir -p "$gp/src/catalogclient/hotpath_catalog_v1"
cp "$here/main.go" "$gp/src/catalogclient/"
# The proto names no go_package: map it here, and the well-known types to the packages Debian's
# APIv1 Go protobuf has (protobuf 3.21's .proto files name APIv2 ones).
m="Mhotpath/catalog/v1/catalog.proto=catalogclient/hotpath_catalog_v1"
m+=",Mgoogle/protobuf/field_mask.proto=google.golang.org/genproto/protobuf/field_mask"
m+=",Mgoogle/protobuf/timestamp.proto=github.com/golang/protobuf/ptypes/timestamp"
m+=",Mgoogle/protobuf/wrappers.proto=github.com/golang/protobuf/ptypes/wrappers"
mkdir "$gp/gen"
protoc -I"$protos" -I"$googleapis" -I/usr/include --go_out="$m,paths=source_relative:$gp/gen" \
  --go-grpc_out="$m,paths=source_relative:$gp/gen" hotpath/catalog/v1/catalog.proto
mv "$gp"/gen/hotpath/catalog/v1/*.go "$gp/src/catalogclient/hotpath_catalog_v1/"
(cd "$gp/src/catalogclient" &&
  GO111MODULE=off GOPATH="$gp:/usr/share/gocode" GOCACHE="${GOCACHE:-$gp/cache}" \
    go build -o "$out" .)
