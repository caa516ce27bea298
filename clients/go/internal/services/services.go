// Package services reads the flotilla.v1 service descriptors compiled into the generated
// package; the iterator generator and the tests that check nothing is missing share it.
package services

import (
	"sort"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/flotilla-dev/flotilla/clients/go/gen/flotilla/v1"
)

// Package is the proto package of Flotilla's API.
const Package = "flotilla.v1"

// ClientField names the field of flotilla.Client that holds each service's stub.
var ClientField = map[string]string{
	"flotilla.v1.AdminService":      "Admin",
	"flotilla.v1.AgentService":      "Agents",
	"flotilla.v1.ClusterService":    "Clusters",
	"flotilla.v1.CredentialService": "Credentials",
	"flotilla.v1.LogStream":         "Logs",
	"flotilla.v1.NodeService":       "Nodes",
	"flotilla.v1.OperationService":  "Operations",
	"flotilla.v1.RegistryService":   "Registries",
	"flotilla.v1.WorkloadService":   "Workloads",
}

// All returns every service of the flotilla.v1 package, sorted by full name.
func All() []protoreflect.ServiceDescriptor {
	var out []protoreflect.ServiceDescriptor
	protoregistry.GlobalFiles.RangeFilesByPackage(Package, func(f protoreflect.FileDescriptor) bool {
		for i := 0; i < f.Services().Len(); i++ {
			out = append(out, f.Services().Get(i))
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].FullName() < out[j].FullName() })
	return out
}

// ListMethods returns every unary List* method of every service, sorted by service then name.
func ListMethods() []protoreflect.MethodDescriptor {
	var out []protoreflect.MethodDescriptor
	for _, svc := range All() {
		var methods []protoreflect.MethodDescriptor
		for i := 0; i < svc.Methods().Len(); i++ {
			m := svc.Methods().Get(i)
			if strings.HasPrefix(string(m.Name()), "List") && !m.IsStreamingServer() && !m.IsStreamingClient() {
				methods = append(methods, m)
			}
		}
		sort.Slice(methods, func(i, j int) bool { return methods[i].Name() < methods[j].Name() })
		out = append(out, methods...)
	}
	return out
}

// IteratorName is the Client method that iterates a List method: ListClusters -> AllClusters.
func IteratorName(m protoreflect.MethodDescriptor) string {
	return "All" + strings.TrimPrefix(string(m.Name()), "List")
}

// IsPaged reports whether a List method takes page_token and answers next_page_token.
func IsPaged(m protoreflect.MethodDescriptor) bool {
	return m.Input().Fields().ByName("page_token") != nil &&
		m.Output().Fields().ByName("next_page_token") != nil
}

// ItemsField is the repeated field a List response carries its items in: the lowest-numbered
// repeated field (ListArtifactsResponse also lists unreachable clusters, after the artifacts).
func ItemsField(resp protoreflect.MessageDescriptor) protoreflect.FieldDescriptor {
	var best protoreflect.FieldDescriptor
	for i := 0; i < resp.Fields().Len(); i++ {
		f := resp.Fields().Get(i)
		if f.IsList() && (best == nil || f.Number() < best.Number()) {
			best = f
		}
	}
	return best
}
