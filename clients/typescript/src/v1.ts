// The generated flotilla.v1 messages and service descriptors ("@flotilla-dev/client/v1").
export * from "./gen/flotilla/v1/admin_service_pb.js";
export * from "./gen/flotilla/v1/cluster_pb.js";
export * from "./gen/flotilla/v1/cluster_service_pb.js";
export * from "./gen/flotilla/v1/common_pb.js";
export * from "./gen/flotilla/v1/credential_service_pb.js";
export * from "./gen/flotilla/v1/log_stream_pb.js";
export * from "./gen/flotilla/v1/node_service_pb.js";
export * from "./gen/flotilla/v1/operation_pb.js";
export * from "./gen/flotilla/v1/operation_service_pb.js";
export * from "./gen/flotilla/v1/registry_service_pb.js";
export * from "./gen/flotilla/v1/workload_pb.js";
export * from "./gen/flotilla/v1/workload_service_pb.js";
