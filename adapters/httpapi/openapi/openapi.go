// Package openapi holds the OpenAPI 3.1 document of whistle's HTTP API
// (openapi.json), embedded so that GET /v1/openapi.json serves the very
// document the tests check real answers against.
package openapi

import _ "embed"

// Document is the OpenAPI 3.1 document, JSON.
//
//go:embed openapi.json
var Document []byte
