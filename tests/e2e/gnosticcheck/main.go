// Command gnosticcheck checks k3py's protobuf OpenAPI v2 document with gnostic itself.
//
//	go run . <document.json> <document.pb> <decoded.json>
//
// It unmarshals document.pb as gnostic's openapi_v2.Document (the message kubectl reads) and
// writes it back to decoded.json as JSON, through gnostic's own YAML form (so the Any values
// are parsed from their YAML text). On stdout it prints a JSON report:
//
//   - canonical: proto.Marshal of the decoded message gives document.pb back (no unknown
//     fields, fields in number order, zero values left out);
//   - identical: document.pb is what kube-apiserver serves for document.json, i.e. what
//     kube-openapi's ToProtoBinary makes of it (openapi_v2.ParseDocument, proto.Marshal);
//   - gnostic_errors: what ParseDocument reports about document.json (it still returns the
//     document, without the members it rejects);
//   - first_difference: when not identical, where the two messages first differ (protojson).
//
// tests/e2e/test_openapi_v2_proto.py builds it in a scratch module with the module versions
// Kubernetes 1.37 uses (go.mod here).
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

type report struct {
	Canonical       bool   `json:"canonical"`
	Identical       bool   `json:"identical"`
	GnosticErrors   string `json:"gnostic_errors"`
	FirstDifference string `json:"first_difference,omitempty"`
}

func main() {
	if len(os.Args) != 4 {
		fail(fmt.Errorf("usage: gnosticcheck <document.json> <document.pb> <decoded.json>"))
	}
	source, err := os.ReadFile(os.Args[1])
	check(err)
	data, err := os.ReadFile(os.Args[2])
	check(err)

	served := &openapi_v2.Document{}
	check(proto.UnmarshalOptions{DiscardUnknown: false}.Unmarshal(data, served))
	again, err := proto.MarshalOptions{Deterministic: true}.Marshal(served)
	check(err)

	out := report{Canonical: bytes.Equal(again, data)}
	expected, parseErr := openapi_v2.ParseDocument(source)
	if parseErr != nil {
		out.GnosticErrors = parseErr.Error()
	}
	if expected != nil {
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(expected)
		check(err)
		out.Identical = bytes.Equal(want, data)
		if !out.Identical {
			out.FirstDifference = firstDifference(expected, served)
		}
	}

	var decoded any
	check(served.ToRawInfo().Decode(&decoded))
	text, err := json.Marshal(decoded)
	check(err)
	check(os.WriteFile(os.Args[3], text, 0o644))

	summary, err := json.Marshal(out)
	check(err)
	fmt.Println(string(summary))
}

// firstDifference shows the first line where the two messages' multi-line protojson differ.
func firstDifference(want, got proto.Message) string {
	options := protojson.MarshalOptions{Multiline: true, Indent: " "}
	a := strings.Split(options.Format(want), "\n")
	b := strings.Split(options.Format(got), "\n")
	for i := 0; i < len(a) || i < len(b); i++ {
		if i >= len(a) || i >= len(b) || a[i] != b[i] {
			start := max(i-3, 0)
			return fmt.Sprintf("line %d\nkube-apiserver:\n%s\nk3py:\n%s",
				i+1, strings.Join(a[start:min(i+3, len(a))], "\n"), strings.Join(b[start:min(i+3, len(b))], "\n"))
		}
	}
	return ""
}

func check(err error) {
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gnosticcheck:", err)
	os.Exit(1)
}
