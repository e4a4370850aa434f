package main

import _ "embed"

// The package schema (a subset of the real vSphere provider's: the same tokens and property names). It is written
// beside this file by the schema's owner; the plugin serves it unchanged from GetSchema.
//
//go:embed schema.json
var schemaJSON string
